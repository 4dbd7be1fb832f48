/**
 * The string patterns a policy rule is written with, compiled once at policy
 * load into matchers the hot path only reads.
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

/**
 * A compiled pattern: plain data read by {@link matchText}, not a closure, so
 * checking a rule follows one pointer to the matcher and one to its text (the
 * evaluator's cost is dominated by memory reads, not by the comparisons).
 */
export interface TextMatcher {
  readonly kind: MatchKind;
  readonly text: string;
  readonly re: RegExp | undefined;
}

/**
 * `Subtree`: `text` itself or anything below it (`a/**`); `SegmentPrefix`: starts with `text`,
 * no `/` after it (`a/b*`, `ml-*` for names); `Prefix`: starts with `text` (`aiplatform.endpoints.*`).
 */
export const MatchKind = {
  Any: 0,
  Never: 1,
  NoSlash: 2,
  Exact: 3,
  Prefix: 4,
  SegmentPrefix: 5,
  Subtree: 6,
  RegExp: 7,
} as const;
export type MatchKind = (typeof MatchKind)[keyof typeof MatchKind];

const SLASH = 0x2f;

const matcher = (kind: MatchKind, text = '', re?: RegExp): TextMatcher => ({ kind, text, re });

/** Stands in for an empty pattern list, which matches nothing ("any of none"). */
export const MATCH_NOTHING: TextMatcher = matcher(MatchKind.Never);

export function matchText(m: TextMatcher, value: string): boolean {
  switch (m.kind) {
    case MatchKind.Any:
      return true;
    case MatchKind.Never:
      return false;
    case MatchKind.NoSlash:
      return !value.includes('/');
    case MatchKind.Exact:
      return value === m.text;
    case MatchKind.Prefix:
      return value.startsWith(m.text);
    case MatchKind.SegmentPrefix:
      return value.startsWith(m.text) && !value.includes('/', m.text.length);
    case MatchKind.Subtree:
      return value.startsWith(m.text) && (value.length === m.text.length || value.charCodeAt(m.text.length) === SLASH);
    default:
      return (m.re as RegExp).test(value);
  }
}

export function matchAnyText(matchers: readonly TextMatcher[], value: string): boolean {
  for (const m of matchers) if (matchText(m, value)) return true;
  return false;
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/** Whether `pattern` contains a wildcard, i.e. is not an exact name. */
export function isGlob(pattern: string): boolean {
  return pattern.includes('*');
}

const onlyStars = (pattern: string): boolean => /^\*+$/.test(pattern);
const singleTrailingStar = (pattern: string): boolean => pattern.indexOf('*') === pattern.length - 1;

/** Permission globs: `*` matches any run of characters; everything else is literal. */
export function compileGlob(pattern: string): TextMatcher {
  if (!isGlob(pattern)) return matcher(MatchKind.Exact, pattern);
  if (onlyStars(pattern)) return matcher(MatchKind.Any);
  if (singleTrailingStar(pattern)) return matcher(MatchKind.Prefix, pattern.slice(0, -1));
  // The `s` flag: a line break is still "any character".
  return matcher(MatchKind.RegExp, pattern, new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`, 's'));
}

/** Name globs: `*` matches any run of characters other than `/`. */
export function compileNameGlob(pattern: string): TextMatcher {
  if (!isGlob(pattern)) return matcher(MatchKind.Exact, pattern);
  if (onlyStars(pattern)) return matcher(MatchKind.NoSlash);
  if (singleTrailingStar(pattern)) return matcher(MatchKind.SegmentPrefix, pattern.slice(0, -1));
  return matcher(MatchKind.RegExp, pattern, new RegExp(`^${pattern.split('*').map(escapeRegExp).join('[^/]*')}$`));
}

/** A compiled `namespace/name` pattern, with its exact parts kept for indexing. */
export interface ServiceAccountMatcher {
  readonly namespace: TextMatcher;
  readonly name: TextMatcher;
  /** The namespace part when it has no wildcard. */
  readonly exactNamespace: string | undefined;
  /** The name part when it has no wildcard. */
  readonly exactName: string | undefined;
}

const NEVER_SERVICE_ACCOUNT: ServiceAccountMatcher = {
  namespace: MATCH_NOTHING,
  name: MATCH_NOTHING,
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
export function compileResourcePattern(pattern: string): TextMatcher {
  if (!isGlob(pattern)) return matcher(MatchKind.Exact, pattern);
  const segments = pattern.split('/');
  if (segments.every((s) => s === '**')) return matcher(MatchKind.Any);
  // The two forms most rules use get string tests instead of a RegExp: a literal
  // prefix then `/**` (`projects/p/**`), or one `*` at the very end (`…/endpoints/team-*`).
  const star = pattern.indexOf('*');
  if (pattern.endsWith('/**') && star === pattern.length - 2) return matcher(MatchKind.Subtree, pattern.slice(0, -3));
  if (star === pattern.length - 1) return matcher(MatchKind.SegmentPrefix, pattern.slice(0, -1));
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
  return matcher(MatchKind.RegExp, pattern, new RegExp(`${source}$`, 's'));
}
