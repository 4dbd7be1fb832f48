/**
 * The string patterns a policy rule is written with, compiled once at policy
 * load into matchers the hot path only calls.
 *
 * The pattern languages differ only in what `*` may cross:
 * - permission globs ({@link compileGlob}): `*` matches any run of characters
 *   (including none, including dots);
 * - name globs ({@link compileNameGlob}) for namespace names and the two parts
 *   of a `namespace/name` service-account pattern: `*` matches any run of
 *   characters other than `/`. Kubernetes names cannot contain `/` anyway;
 *   refusing it keeps a malformed identity from slipping through a `*`;
 * - resource patterns ({@link compileResourcePattern}) over `/`-separated
 *   resource names: `*` matches any run of characters within one segment,
 *   `**` (a whole segment) matches zero or more whole segments.
 *
 * @module
 */

/** A compiled pattern. */
export type StringMatcher = (value: string) => boolean;

const matchAll: StringMatcher = () => true;
const matchNone: StringMatcher = () => false;

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/** Whether `pattern` contains a wildcard, i.e. is not an exact name. */
export function isGlob(pattern: string): boolean {
  return pattern.includes('*');
}

/** Permission globs: `*` matches any run of characters; everything else is literal. */
export function compileGlob(pattern: string): StringMatcher {
  if (!isGlob(pattern)) return (value) => value === pattern;
  if (/^\*+$/.test(pattern)) return matchAll;
  // A single trailing star is by far the most common form (`aiplatform.endpoints.*`).
  if (pattern.indexOf('*') === pattern.length - 1) {
    const prefix = pattern.slice(0, -1);
    return (value) => value.startsWith(prefix);
  }
  // The `s` flag: a line break is still "any character".
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`, 's');
  return (value) => re.test(value);
}

/** Name globs: `*` matches any run of characters other than `/`. */
export function compileNameGlob(pattern: string): StringMatcher {
  if (!isGlob(pattern)) return (value) => value === pattern;
  if (/^\*+$/.test(pattern)) return (value) => !value.includes('/');
  // A single trailing star is by far the most common form (`ml-*`).
  if (pattern.indexOf('*') === pattern.length - 1) {
    const prefix = pattern.slice(0, -1);
    return (value) => value.startsWith(prefix) && !value.includes('/', prefix.length);
  }
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('[^/]*')}$`);
  return (value) => re.test(value);
}

/** A compiled `namespace/name` pattern, with its exact parts kept for indexing. */
export interface ServiceAccountMatcher {
  readonly namespace: StringMatcher;
  readonly name: StringMatcher;
  /** The namespace part when it has no wildcard. */
  readonly exactNamespace: string | undefined;
  /** The name part when it has no wildcard. */
  readonly exactName: string | undefined;
}

const NEVER_SERVICE_ACCOUNT: ServiceAccountMatcher = {
  namespace: matchNone,
  name: matchNone,
  exactNamespace: undefined,
  exactName: undefined,
};

/** Problem with a service-account pattern's shape, if any. */
export function serviceAccountPatternProblem(pattern: string): string | undefined {
  const parts = pattern.split('/');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    return `must be NAMESPACE/NAME (either part may use *), got "${pattern}"`;
  }
  return undefined;
}

/** A malformed pattern (see {@link serviceAccountPatternProblem}) matches nothing. */
export function compileServiceAccountPattern(pattern: string): ServiceAccountMatcher {
  if (serviceAccountPatternProblem(pattern) !== undefined) return NEVER_SERVICE_ACCOUNT;
  const slash = pattern.indexOf('/');
  const namespace = pattern.slice(0, slash);
  const name = pattern.slice(slash + 1);
  return {
    namespace: compileNameGlob(namespace),
    name: compileNameGlob(name),
    exactNamespace: isGlob(namespace) ? undefined : namespace,
    exactName: isGlob(name) ? undefined : name,
  };
}

/** Problem with a resource pattern's syntax, if any. */
export function resourcePatternProblem(pattern: string): string | undefined {
  const segments = pattern.split('/');
  if (segments.some((s) => s === '')) return `empty path segment in "${pattern}" (no leading, trailing or double "/")`;
  if (segments.some((s) => s !== '**' && s.includes('**'))) return `"**" must be a whole path segment in "${pattern}"`;
  return undefined;
}

/**
 * `*` matches any run of characters within one segment, `**` zero or more
 * whole segments. A malformed pattern still compiles (literally, `**` inside a
 * segment acting as `*`) so that compiling never throws; the policy loader
 * refuses it anyway.
 */
export function compileResourcePattern(pattern: string): StringMatcher {
  if (!isGlob(pattern)) return (value) => value === pattern;
  const segments = pattern.split('/');
  if (segments.every((s) => s === '**')) return matchAll;
  // The two forms most rules use get string tests instead of a RegExp: a literal
  // prefix then `/**` (`projects/p/**`), or one `*` at the very end (`…/endpoints/team-*`).
  const star = pattern.indexOf('*');
  if (pattern.endsWith('/**') && star === pattern.length - 2) {
    const base = pattern.slice(0, -3);
    const prefix = `${base}/`;
    return (value) => value === base || value.startsWith(prefix);
  }
  if (star === pattern.length - 1) {
    const prefix = pattern.slice(0, -1);
    return (value) => value.startsWith(prefix) && !value.includes('/', prefix.length);
  }
  let source = '^';
  // True until the first concrete segment is written: it decides whether a separator precedes a segment.
  let atStart = true;
  for (const segment of segments) {
    if (segment === '**') {
      // Leading `**` eats whole segments with their trailing slash, later ones with their leading slash,
      // so `a/**/b` matches `a/b` and `**/b` matches `b`.
      source += atStart ? '(?:[^/]*/)*' : '(?:/[^/]*)*';
      continue;
    }
    source += `${atStart ? '' : '/'}${segment.split('*').map(escapeRegExp).join('[^/]*')}`;
    atStart = false;
  }
  const re = new RegExp(`${source}$`, 's');
  return (value) => re.test(value);
}
