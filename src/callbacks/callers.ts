/**
 * Who may use a callback route: the `callers` list of a route, compiled once
 * at load. Pure.
 *
 * In: caller entries from the config; at request time a verified Google
 * identity `{email, subject}`. Out: the entry that admits the caller, or
 * undefined.
 *
 * Entry forms:
 * - `trainer@my-proj.iam.gserviceaccount.com`: one account (case-insensitive).
 * - `service-*@gcp-sa-aiplatform.iam.gserviceaccount.com`, `*@my-proj.iam.gserviceaccount.com`:
 *   `*` stands for any run of characters before the `@` only. The domain is
 *   always literal, so a pattern can never reach into another project's or
 *   organisation's accounts.
 * - `105271527809661757734`: an account's unique id (`sub`), which survives
 *   an account being deleted and re-created under the same email.
 * - `principal://iam.googleapis.com/…`: a Workload Identity Federation
 *   principal, matched exactly against the token's `email` or `sub`.
 *
 * `principalSet://` is refused: an ID token does not say which sets its
 * principal belongs to.
 *
 * @module
 */

export interface CallerIdentity {
  readonly email: string;
  readonly subject: string;
}

export interface CallerMatcher {
  /** The configured entry that admits this caller, or undefined. */
  match(identity: CallerIdentity): string | undefined;
}

export interface CallerProblem {
  readonly index: number;
  readonly message: string;
}

const UNIQUE_ID = /^[0-9]{1,32}$/;
const PRINCIPAL = /^principal:\/\/iam\.googleapis\.com\/[!-~]+$/;
const LOCAL_PART = /^[a-z0-9*._+-]+$/;
const DOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;

type Compiled =
  | { readonly kind: 'email'; readonly entry: string; readonly email: string }
  | { readonly kind: 'pattern'; readonly entry: string; readonly regex: RegExp }
  | { readonly kind: 'subject'; readonly entry: string }
  | { readonly kind: 'principal'; readonly entry: string };

/** Checks one entry; returns a problem message or the compiled form. */
function compileEntry(entry: string): Compiled | string {
  if (entry.startsWith('principalSet://')) {
    return 'principalSet:// cannot be checked from an ID token (it does not list the sets a principal belongs to); name the principal (principal://…) or its email';
  }
  if (entry.startsWith('principal://')) {
    return PRINCIPAL.test(entry) ? { kind: 'principal', entry } : 'a principal must look like principal://iam.googleapis.com/…';
  }
  if (UNIQUE_ID.test(entry)) return { kind: 'subject', entry };
  const lower = entry.toLowerCase();
  const at = lower.indexOf('@');
  if (at <= 0 || at !== lower.lastIndexOf('@')) return 'must be an email, an email pattern, an account unique id or a principal:// identifier';
  const local = lower.slice(0, at);
  const domain = lower.slice(at + 1);
  if (domain.includes('*')) return '"*" is allowed only before the "@": a wildcard domain would admit accounts of any project';
  if (!LOCAL_PART.test(local) || !DOMAIN.test(domain)) return 'is not a valid email or email pattern';
  if (!local.includes('*')) return { kind: 'email', entry, email: lower };
  const source = local
    .split('*')
    .map((part) => part.replace(/[.+]/g, (c) => `\\${c}`))
    .join('[^@]*');
  return { kind: 'pattern', entry, regex: new RegExp(`^${source}@${domain.replaceAll('.', '\\.')}$`) };
}

/** Compiles a route's callers. Problems are reported, not thrown, so a config check lists them all. */
export function compileCallers(entries: readonly string[]): { matcher: CallerMatcher; problems: CallerProblem[] } {
  const compiled: Compiled[] = [];
  const problems: CallerProblem[] = [];
  entries.forEach((entry, index) => {
    const result = compileEntry(entry);
    if (typeof result === 'string') problems.push({ index, message: result });
    else compiled.push(result);
  });
  const emails = new Map<string, string>();
  const subjects = new Map<string, string>();
  const patterns: Array<{ entry: string; regex: RegExp }> = [];
  for (const c of compiled) {
    if (c.kind === 'email') emails.set(c.email, c.entry);
    else if (c.kind === 'pattern') patterns.push(c);
    // A principal:// may appear in either claim, depending on the federation setup.
    else {
      subjects.set(c.entry, c.entry);
      if (c.kind === 'principal') emails.set(c.entry, c.entry);
    }
  }
  return {
    problems,
    matcher: {
      match({ email, subject }) {
        const lower = email.toLowerCase();
        const exact = emails.get(lower) ?? emails.get(email) ?? subjects.get(subject);
        if (exact !== undefined) return exact;
        for (const p of patterns) if (p.regex.test(lower)) return p.entry;
        return undefined;
      },
    },
  };
}
