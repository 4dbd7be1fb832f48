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
 * - `*@my-proj.iam.gserviceaccount.com`: `*` stands for any run of characters
 *   before the `@` only. The domain is always literal, and it may not be a
 *   domain Google shares between customers (service agents'
 *   `gcp-sa-*.iam.gserviceaccount.com`, `developer.gserviceaccount.com`,
 *   `appspot.gserviceaccount.com`, … and consumer mail): there a pattern would
 *   admit every project's account of that kind, since anyone can create a
 *   project (and so such an account) and mint its ID token for any audience.
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

/**
 * Domains whose accounts belong to every Google Cloud customer, with the
 * placeholder the exact email is written with. Sources:
 * https://cloud.google.com/iam/docs/service-agents and
 * https://cloud.google.com/compute/docs/access/service-accounts#default_service_account
 */
const SHARED_DOMAINS: ReadonlyArray<readonly [test: (domain: string) => boolean, placeholder: string]> = [
  // Service agents: service-PROJECT_NUMBER@gcp-sa-<service>.iam.gserviceaccount.com.
  [(d) => /^gcp-sa-[a-z0-9-]+\.iam\.gserviceaccount\.com$/.test(d), 'PROJECT_NUMBER'],
  // Google-owned projects holding older service agents (service-N@cloud-ml.google.com.iam…, container-engine-robot, compute-system).
  [(d) => d.endsWith('.google.com.iam.gserviceaccount.com'), 'PROJECT_NUMBER'],
  [
    (d) =>
      /^(container-engine-robot|compute-system|dataflow-service-producer-prod|serverless-robot-prod|gcf-admin-robot|cloud-tpu-robot|gae-api-prod)\.iam\.gserviceaccount\.com$/.test(
        d,
      ),
    'PROJECT_NUMBER',
  ],
  // Compute Engine default (PROJECT_NUMBER-compute@developer…), App Engine default (PROJECT_ID@appspot…), Google APIs, Cloud Build.
  [(d) => d === 'appspot.gserviceaccount.com', 'PROJECT_ID'],
  // Every other gserviceaccount.com domain outside <project>.iam.gserviceaccount.com is Google's, shared by all projects.
  [
    (d) =>
      (d === 'gserviceaccount.com' || d.endsWith('.gserviceaccount.com')) &&
      !/^[a-z][a-z0-9-]*[a-z0-9]\.iam\.gserviceaccount\.com$/.test(d),
    'PROJECT_NUMBER',
  ],
  [(d) => d === 'gmail.com' || d === 'googlemail.com', 'USER'],
];

/**
 * The problem with a wildcard over a shared domain, with the exact form to write instead; undefined when the domain is a customer's own.
 */
export function sharedDomainProblem(local: string, domain: string): string | undefined {
  const shared = SHARED_DOMAINS.find(([test]) => test(domain));
  if (shared === undefined) return undefined;
  const placeholder = shared[1];
  const exact = `${local.replace(/\*+/g, placeholder)}@${domain}`;
  const how =
    placeholder === 'PROJECT_NUMBER'
      ? ` (PROJECT_NUMBER: your project's number, \`gcloud projects describe PROJECT --format='value(projectNumber)'\`)`
      : placeholder === 'PROJECT_ID'
        ? ' (PROJECT_ID: your project id)'
        : '';
  return (
    `"*" is not allowed over ${domain}: Google shares that domain between all customers, so the pattern would admit other ` +
    `projects' accounts. Write the exact account instead: "${exact}"${how}, or its unique id`
  );
}

/** Checks one entry; returns a problem message or the compiled form. */
function compileEntry(entry: string): Compiled | string {
  if (entry.startsWith('principalSet://')) {
    return (
      'principalSet:// cannot be checked from an ID token (it does not list the sets a principal belongs to); name the ' +
      'principal (principal://…) or its email'
    );
  }
  if (entry.startsWith('principal://')) {
    return PRINCIPAL.test(entry) ? { kind: 'principal', entry } : 'a principal must look like principal://iam.googleapis.com/…';
  }
  if (UNIQUE_ID.test(entry)) return { kind: 'subject', entry };
  const lower = entry.toLowerCase();
  const at = lower.indexOf('@');
  if (at <= 0 || at !== lower.lastIndexOf('@'))
    return 'must be an email, an email pattern, an account unique id or a principal:// identifier';
  const local = lower.slice(0, at);
  const domain = lower.slice(at + 1);
  if (domain.includes('*')) return '"*" is allowed only before the "@": a wildcard domain would admit accounts of any project';
  if (!LOCAL_PART.test(local) || !DOMAIN.test(domain)) return 'is not a valid email or email pattern';
  if (!local.includes('*')) return { kind: 'email', entry, email: lower };
  const shared = sharedDomainProblem(local, domain);
  if (shared !== undefined) return shared;
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
