/**
 * The strict request classifier: `req.method` + `req.url` → one Vertex AI
 * {@link Operation}, or a {@link ProxyError}. Fail closed: a path is accepted
 * only if it is, byte for byte after the few harmless percent-escapes, a
 * binding of the operation table with well-formed ids. Whatever Vertex AI (or
 * any hop in between) might normalize differently from us (dot segments,
 * encoded slashes, `;` parameters, backslashes, double slashes) is refused
 * rather than interpreted, so the resource the policy sees is the resource
 * Google acts on.
 *
 * The table is compiled once at module load into one segment trie per API
 * version. A call is one character scan of the path, a walk of a few Map
 * lookups with anchored regex tests on the ids, and no allocation beyond the
 * segment strings and the result (it runs on every request).
 *
 * @module
 */

import { ProxyError } from '../errors.js';
import type { ApiVersion, Operation, OperationSpec } from './operation-types.js';
import { OPERATION_BINDINGS, methodNameOf } from './operation-table.js';

/** A 405: the path is a known method, the HTTP method is not one it answers to. */
export class MethodNotAllowedError extends ProxyError {
  constructor(message: string, allow: string) {
    super('ERR_REQUEST_METHOD_NOT_ALLOWED', message, { headers: { allow } });
    this.name = 'MethodNotAllowedError';
  }
}

// ---------------------------------------------------------------------------
// Limits and character classes
// ---------------------------------------------------------------------------

/** Far above any real Vertex AI path (~600 chars at the id limits); bounds the work per request. */
const MAX_PATH_LENGTH = 2048;
/** How much of the caller's input a message may echo. */
const MAX_ECHO = 200;

const PROJECT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const LOCATION_ID = /^[a-z][a-z0-9-]{0,62}$/;
const RESOURCE_ID = /^[A-Za-z0-9][A-Za-z0-9._@~-]{0,127}$/;

type ParamKind = 'project' | 'location' | 'id';

/** Raw path characters: unreserved, `@`, `:` (verb) and `/`. `%` is handled separately. */
const PATH_CHAR = new Uint8Array(128);
/**
 * Characters a percent-escape may stand for: the ones allowed in an id, except `.` (never needed encoded; `%2E%2E` is the classic
 * traversal).
 */
const ESCAPABLE = new Uint8Array(128);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~@') {
  PATH_CHAR[ch.charCodeAt(0)] = 1;
  ESCAPABLE[ch.charCodeAt(0)] = 1;
}
for (const ch of '.:/') PATH_CHAR[ch.charCodeAt(0)] = 1;

// ---------------------------------------------------------------------------
// The compiled table
// ---------------------------------------------------------------------------

interface Route {
  /** HTTP method → spec. */
  readonly targets: Map<
    string,
    { readonly spec: OperationSpec; readonly methodName: string; readonly scopedForm: string | null | undefined }
  >;
  /** Characters after the resource name and before the verb (`/chat/completions`), cut off for `resource`. */
  readonly suffixLength: number;
  /** The `Allow` header: the methods this path answers to. */
  allow: string;
  /** Every method here is a google.longrunning.Operations method (also served under `/ui/`). */
  operations: boolean;
}

interface TrieNode {
  /** Literal children. An array, matched by length then `startsWith` on the path: no slice, no hashing. */
  readonly literals: { readonly text: string; readonly node: TrieNode }[];
  /**
   * The same children bucketed by length (index = length): under `locations/{location}` there are
   * ~80 collections, and a walk should compare against the few of the right length only.
   */
  byLength: ({ readonly text: string; readonly node: TrieNode }[] | undefined)[];
  param: { readonly kind: ParamKind; readonly node: TrieNode } | undefined;
  /** Verb (`''` for none) → route. */
  readonly routes: Map<string, Route>;
}

function newNode(): TrieNode {
  return { literals: [], byLength: [], param: undefined, routes: new Map() };
}

function paramKind(name: string): ParamKind {
  return name === 'project' || name === 'location' ? name : 'id';
}

function compile(version: ApiVersion): TrieNode {
  const root = newNode();
  for (const binding of OPERATION_BINDINGS) {
    const { spec } = binding;
    if (!binding.versions.includes(version)) continue;
    // '' is the version root (`/v1beta1:evaluateInstances`): the route hangs on the root itself.
    const resourceSegments = binding.resource === '' ? [] : binding.resource.split('/');
    const segments = binding.suffix === undefined ? resourceSegments : [...resourceSegments, ...binding.suffix.split('/')];
    let node = root;
    for (const segment of segments) {
      const param = /^\{([a-zA-Z]+)\}$/.exec(segment)?.[1];
      if (param === undefined) {
        // Literal-vs-param ambiguity would need backtracking on the hot path; the table has none, and must not grow one.
        if (node.param !== undefined || !/^[a-zA-Z]+$/.test(segment))
          throw new Error(`operation table: bad segment "${segment}" in ${spec.id}`);
        let next = node.literals.find((literal) => literal.text === segment)?.node;
        if (next === undefined) {
          const literal = { text: segment, node: (next = newNode()) };
          node.literals.push(literal);
          (node.byLength[segment.length] ??= []).push(literal);
        }
        node = next;
      } else {
        if (node.literals.length > 0) throw new Error(`operation table: param after literal siblings in ${spec.id}`);
        const kind = paramKind(param);
        if (node.param === undefined) node.param = { kind, node: newNode() };
        else if (node.param.kind !== kind) throw new Error(`operation table: conflicting params in ${spec.id}`);
        node = node.param.node;
      }
    }
    const verb = binding.verb ?? '';
    const suffixLength = binding.suffix === undefined ? 0 : binding.suffix.length + 1;
    let route = node.routes.get(verb);
    if (route === undefined) {
      route = { targets: new Map(), suffixLength, allow: '', operations: true };
      node.routes.set(verb, route);
    } else if (route.suffixLength !== suffixLength) {
      throw new Error(`operation table: inconsistent resource for ${spec.id}`);
    }
    if (route.targets.has(spec.httpMethod)) throw new Error(`operation table: two specs for ${spec.httpMethod} at ${spec.id}`);
    route.targets.set(spec.httpMethod, { spec, methodName: methodNameOf(spec, version), scopedForm: binding.scopedForm });
    route.allow = [...route.targets.keys()].sort().join(', ');
    route.operations &&= spec.protoPackage === 'google.longrunning';
  }
  return root;
}

const TRIES: Readonly<Record<ApiVersion, TrieNode>> = { v1: compile('v1'), v1beta1: compile('v1beta1') };

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** Quotes caller input for a message: at most {@link MAX_ECHO} characters, printable ASCII only. */
function quote(input: string): string {
  const cut = input.length > MAX_ECHO ? input.slice(0, MAX_ECHO) : input;
  let out = '"';
  for (const ch of cut) {
    const code = ch.codePointAt(0) ?? 0;
    if (code >= 0x20 && code < 0x7f) out += ch === '"' || ch === '\\' ? `\\${ch}` : ch;
    else out += code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  }
  return `${out}"${input.length > MAX_ECHO ? '...' : ''}`;
}

function invalidPath(message: string, reason = 'invalid-path'): ProxyError {
  return new ProxyError('ERR_REQUEST_INVALID_PATH', message, { reason });
}

function unknownMethod(httpMethod: string, path: string, hint = ''): ProxyError {
  return new ProxyError(
    'ERR_REQUEST_UNKNOWN_METHOD',
    `Unknown Vertex AI method ${quote(`${httpMethod} ${path}`)}${hint}. The proxy forwards only the Vertex AI v1 and ` +
      `v1beta1 REST methods it knows.`,
  );
}

function segmentError(index: number, segment: string, problem: string): ProxyError {
  // Numbered from 1 with the version as segment 1, as a reader counts them in the URL.
  return invalidPath(`Path segment ${index + 2} (${quote(segment)}) ${problem}`);
}

// ---------------------------------------------------------------------------
// Path and query checks
// ---------------------------------------------------------------------------

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

function describeChar(code: number): string {
  if (code < 0x20 || code === 0x7f) return `control character \\x${code.toString(16).padStart(2, '0')}`;
  if (code > 0x7f) return `non-ASCII character \\u{${code.toString(16)}}`;
  return `character ${quote(String.fromCharCode(code))}`;
}

/**
 * Validates every character of the path and returns it with the harmless
 * escapes (those that stand for an id character, like `%40` for `@`) decoded.
 */
function checkPathChars(path: string): string {
  let escapes = false;
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code < 128 && PATH_CHAR[code] === 1) continue;
    if (code === 0x25 /* % */) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      const escape = path.slice(i, i + 3);
      if (hi < 0 || lo < 0) throw invalidPath(`Malformed percent-escape ${quote(escape)} at path offset ${i}`, 'malformed-escape');
      const decoded = hi * 16 + lo;
      if (ESCAPABLE[decoded] !== 1) {
        throw invalidPath(
          `Percent-escape ${quote(escape)} (${describeChar(decoded)}) is not allowed in the path: only escapes of letters, ` +
            `digits, "-", "_", "~" and "@" are accepted`,
          'forbidden-escape',
        );
      }
      escapes = true;
      i += 2;
      continue;
    }
    if (code === 0x5c) throw invalidPath('Backslashes are not allowed in the path');
    if (code === 0x3b) throw invalidPath('";" (path parameters) is not allowed in the path');
    if (code === 0x23) throw invalidPath('A URL fragment ("#") is not allowed in the request');
    throw invalidPath(`The path contains a ${describeChar(code)}, which is not allowed`);
  }
  if (!escapes) return path;
  let out = '';
  let from = 0;
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 3)) {
    out += path.slice(from, i) + String.fromCharCode(hexValue(path.charCodeAt(i + 1)) * 16 + hexValue(path.charCodeAt(i + 2)));
    from = i + 3;
  }
  return out + path.slice(from);
}

/**
 * Query parameters that would change who Vertex AI thinks is calling (an API
 * key or an access token instead of the proxy's credential) or which method it
 * runs (`$httpMethod`, the query form of X-HTTP-Method-Override), keyed by
 * their normalized form: names are compared after dropping everything but
 * letters and digits and lowercasing, so `$key`, `KEY`, `access-token` and
 * `k%65y` match too.
 */
const FORBIDDEN_QUERY_NAMES: readonly (readonly [normalized: string, display: string])[] = [
  ['key', 'key'],
  ['accesstoken', 'access_token'],
  ['oauthtoken', 'oauth_token'],
  ['httpmethod', '$httpMethod'],
  // Google's system parameters (https://cloud.google.com/apis/docs/system-parameters):
  // `userProject` bills another project (the query form of x-goog-user-project),
  // `quotaUser` charges another user's quota, `bearer_token` and `api_key` are
  // credentials in their other spellings.
  ['userproject', 'userProject'],
  ['quotauser', 'quotaUser'],
  ['bearertoken', 'bearer_token'],
  ['apikey', 'api_key'],
];
const FORBIDDEN_CODES = FORBIDDEN_QUERY_NAMES.map(([normalized]) => Uint8Array.from(normalized, (ch) => ch.charCodeAt(0)));
/** Longer than any forbidden name once normalized: stop accumulating. */
const MAX_NORMALIZED_NAME = 12;
// Scratch buffers for the normalized names (classify is synchronous, so one pair is enough).
const ampName = new Uint8Array(MAX_NORMALIZED_NAME);
const anyName = new Uint8Array(MAX_NORMALIZED_NAME);

/** Index in {@link FORBIDDEN_QUERY_NAMES} of the normalized name in `buffer`, or -1. */
function forbiddenIndex(buffer: Uint8Array, length: number): number {
  next: for (let f = 0; f < FORBIDDEN_CODES.length; f++) {
    const codes = FORBIDDEN_CODES[f] as Uint8Array;
    if (codes.length !== length) continue;
    for (let k = 0; k < length; k++) if (codes[k] !== buffer[k]) continue next;
    return f;
  }
  return -1;
}

/** Lowercased code of an ASCII letter or digit, else -1. */
function alnumLower(code: number): number {
  if ((code >= 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x7a)) return code;
  if (code >= 0x41 && code <= 0x5a) return code | 0x20;
  return -1;
}

function forbiddenParameter(raw: string, forbidden: number): ProxyError {
  const display = FORBIDDEN_QUERY_NAMES[forbidden]?.[1] ?? 'key';
  return new ProxyError(
    'ERR_REQUEST_FORBIDDEN_PARAMETER',
    `Query parameter ${quote(raw)} (read as ${quote(display)}) is not allowed: the proxy calls Vertex AI with its own ` +
      `credential, method and billing project, and API keys, access tokens, method or billing overrides in the URL would ` +
      `replace them`,
  );
}

/**
 * Throws for the first query parameter name that normalizes to a forbidden
 * one, in two readings at once: `&`-separated pairs, the way URLSearchParams
 * (and Google's front end) reads them, and `&`- or `;`-separated pairs, the
 * way a lenient parser might (the Google client itself sends
 * `$alt=json;enum-encoding=int`). A `%XX` inside a name is decoded once, as
 * URLSearchParams does, and a decoded `=`, `&` or `;` is part of the name, not
 * a separator. One pass, no regex, no split, no string building.
 */
function rejectForbiddenNames(text: string): void {
  let ampStart = 0;
  let ampInName = true;
  let ampLength = 0;
  let anyStart = 0;
  let anyInName = true;
  let anyLength = 0;
  let forbidden = -1;
  for (let i = 0; i <= text.length; i++) {
    let code = i === text.length ? 0x26 : text.charCodeAt(i);
    if (code === 0x26 /* & */ || code === 0x3d /* = */) {
      if (ampInName && (forbidden = forbiddenIndex(ampName, ampLength)) !== -1)
        throw forbiddenParameter(text.slice(ampStart, i), forbidden);
      if (anyInName && (forbidden = forbiddenIndex(anyName, anyLength)) !== -1)
        throw forbiddenParameter(text.slice(anyStart, i), forbidden);
      const separator = code === 0x26;
      ampInName = anyInName = separator;
      if (separator) {
        ampLength = anyLength = 0;
        ampStart = anyStart = i + 1;
      }
      continue;
    }
    if (code === 0x3b /* ; */) {
      if (anyInName && (forbidden = forbiddenIndex(anyName, anyLength)) !== -1)
        throw forbiddenParameter(text.slice(anyStart, i), forbidden);
      anyInName = true;
      anyLength = 0;
      anyStart = i + 1;
      continue;
    }
    if (!ampInName && !anyInName) continue;
    if (code === 0x25 /* % */) {
      const hi = hexValue(text.charCodeAt(i + 1));
      const lo = hexValue(text.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        code = hi * 16 + lo;
        i += 2;
      }
    }
    const lower = alnumLower(code);
    if (lower === -1) continue;
    if (ampInName && ampLength < MAX_NORMALIZED_NAME) ampName[ampLength++] = lower;
    if (anyInName && anyLength < MAX_NORMALIZED_NAME) anyName[anyLength++] = lower;
  }
}

/** Decodes the valid `%XX` escapes byte-wise and leaves anything malformed as it is. */
function lenientDecode(text: string): string {
  let out = '';
  let from = 0;
  for (let i = text.indexOf('%'); i !== -1; i = text.indexOf('%', i + 1)) {
    const hi = hexValue(text.charCodeAt(i + 1));
    const lo = hexValue(text.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) continue;
    out += text.slice(from, i) + String.fromCharCode(hi * 16 + lo);
    from = i + 3;
    i += 2;
  }
  return from === 0 ? text : out + text.slice(from);
}

/** Most layers of percent-encoding peeled off a query to look for hidden names. */
const MAX_DECODE_LAYERS = 3;

/**
 * Every forbidden name has a "k", an "h" or a "u", so a text without any of
 * them (in any case) and without a '%' (which could encode one) cannot hide
 * one: the common `alt=sse` skips the scan.
 */
const MAY_HIDE_FORBIDDEN_NAME = /[kKhHuU%]/;
for (const [normalized] of FORBIDDEN_QUERY_NAMES) {
  if (!MAY_HIDE_FORBIDDEN_NAME.test(normalized)) throw new Error(`classify: the query pre-filter would miss "${normalized}"`);
}

function checkQuery(query: string): void {
  if (query.includes('#')) throw invalidPath('A URL fragment ("#") is not allowed in the request');
  // Scanning the decoded text again finds names behind more than one layer of
  // encoding (`k%2565y`) and separators hidden in a value (`$alt=json%3Bkey%3D…`).
  let text = query;
  for (let layer = 0; ; layer++) {
    if (!MAY_HIDE_FORBIDDEN_NAME.test(text)) return;
    rejectForbiddenNames(text);
    if (layer === MAX_DECODE_LAYERS || !text.includes('%')) return;
    const next = lenientDecode(text);
    if (next === text) return;
    text = next;
  }
}

/** Whether `value` is well-formed for its kind; ids never contain `..` (no dot segments in disguise). */
function validParam(kind: ParamKind, value: string): boolean {
  if (kind === 'project') return PROJECT_ID.test(value);
  if (kind === 'location') return LOCATION_ID.test(value);
  return RESOURCE_ID.test(value) && !value.includes('..');
}

const PARAM_PROBLEM: Readonly<Record<ParamKind, string>> = {
  project: 'is not a valid project id or number (lowercase letters, digits and "-", at most 63)',
  location: 'is not a valid location (lowercase letters, digits and "-", starting with a letter)',
  id: 'is not a valid resource id (letters, digits, ".", "_", "@", "~" and "-", starting with a letter or digit, at most 128)',
};

/** Segment number (version = 1) of the character at `offset`, for messages only. */
function segmentIndexAt(path: string, prefixLength: number, offset: number): number {
  let index = 0;
  for (let i = path.indexOf('/', prefixLength); i !== -1 && i < offset; i = path.indexOf('/', i + 1)) index++;
  return index;
}

function segmentAt(path: string, offset: number): string {
  const start = path.lastIndexOf('/', offset) + 1;
  const end = path.indexOf('/', offset);
  return path.slice(start, end === -1 ? path.length : end);
}

// ---------------------------------------------------------------------------
// The classifier
// ---------------------------------------------------------------------------

/**
 * Classifies one request. `rawUrl` is `req.url` as Node gives it: the path and
 * an optional query, not decoded. Throws a {@link ProxyError} for every
 * refusal: 404 `ERR_REQUEST_UNKNOWN_METHOD` (not a known Vertex AI method),
 * 400 `ERR_REQUEST_INVALID_PATH` (a path or id that is not well-formed),
 * 400 `ERR_REQUEST_FORBIDDEN_PARAMETER` (`key`, `access_token`… in the query),
 * 405 `ERR_REQUEST_METHOD_NOT_ALLOWED` (with an `allow` header).
 */
export function classify(httpMethod: string, rawUrl: string): Operation {
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);

  let version: ApiVersion;
  let prefixLength: number;
  // The official Node client polls long-running operations through the `/ui/`
  // bindings of aiplatform_v1.yaml (google.longrunning.Operations); they are
  // served for operations only, with v1 semantics.
  let operationsOnly = false;
  let rootVerb = false;
  if (path.startsWith('/v1/')) {
    version = 'v1';
    prefixLength = 4;
  } else if (path.startsWith('/ui/')) {
    version = 'v1';
    prefixLength = 4;
    operationsOnly = true;
  } else if (path.startsWith('/v1beta1/')) {
    version = 'v1beta1';
    prefixLength = 9;
  } else if (path.startsWith('/v1:') || path.startsWith('/v1beta1:')) {
    // A custom verb on the version root (express mode's `/v1beta1:evaluateInstances`): no segments at all.
    version = path.startsWith('/v1:') ? 'v1' : 'v1beta1';
    prefixLength = version.length + 1;
    rootVerb = true;
  } else {
    throw unknownMethod(httpMethod, path, path.startsWith('/v') ? ' (only /v1/ and /v1beta1/ are served)' : '');
  }

  if (path.length > MAX_PATH_LENGTH)
    throw invalidPath(`The path is ${path.length} characters long; at most ${MAX_PATH_LENGTH} are accepted`, 'path-too-long');
  const decoded = checkPathChars(path);
  if (q !== -1) checkQuery(rawUrl.slice(q + 1));

  // The custom verb is what follows the ':' of the last segment. A ':' anywhere
  // else, or a second one, would be split differently by different parsers.
  let end = decoded.length;
  let verb = '';
  const colon = decoded.indexOf(':', prefixLength);
  if (colon !== -1) {
    if (colon < decoded.lastIndexOf('/')) {
      throw segmentError(
        segmentIndexAt(decoded, prefixLength, colon),
        segmentAt(decoded, colon),
        'contains ":"; a custom verb is only allowed at the end of the path',
      );
    }
    if (decoded.indexOf(':', colon + 1) !== -1)
      throw segmentError(segmentIndexAt(decoded, prefixLength, colon), segmentAt(decoded, colon), 'contains more than one ":"');
    verb = decoded.slice(colon + 1);
    if (verb === '')
      throw segmentError(segmentIndexAt(decoded, prefixLength, colon), segmentAt(decoded, colon), 'ends in ":" without a custom verb');
    end = colon;
  }

  let node = TRIES[version];
  let project: string | null = null;
  let location: string | null = null;
  // Ids are checked as they are walked, but a bad one is reported only once the
  // route is known, so that an unknown method is a 404 whatever its ids look like.
  let badIndex = -1;
  let badKind: ParamKind = 'id';
  let badValue = '';
  let index = 0;
  for (let start = prefixLength; !rootVerb; index++) {
    let slash = decoded.indexOf('/', start);
    if (slash === -1 || slash > end) slash = end;
    const length = slash - start;
    if (length === 0) {
      throw invalidPath(
        slash === decoded.length
          ? 'A trailing "/" is not allowed in the path'
          : `Path segment ${index + 2} is empty (a double "/" or a missing id)`,
        'empty-segment',
      );
    }
    if (length <= 2 && decoded.charCodeAt(start) === 0x2e && (length === 1 || decoded.charCodeAt(start + 1) === 0x2e)) {
      throw segmentError(index, decoded.slice(start, slash), 'is not allowed (dot segments are refused)');
    }
    const param = node.param;
    if (param === undefined) {
      // The table never gives a node both literal and param children (checked at load), so there is nothing to fall back to.
      let next: TrieNode | undefined;
      const candidates = node.byLength[length];
      if (candidates !== undefined) {
        for (let l = 0; l < candidates.length; l++) {
          const literal = candidates[l] as TrieNode['literals'][number];
          if (decoded.startsWith(literal.text, start)) {
            next = literal.node;
            break;
          }
        }
      }
      if (next === undefined) {
        const hint =
          index === 4 && decoded.startsWith('projects/', prefixLength) ? ` (unknown collection ${quote(decoded.slice(start, slash))})` : '';
        throw unknownMethod(httpMethod, path, hint);
      }
      node = next;
    } else {
      const segment = decoded.slice(start, slash);
      if (param.kind === 'project') project = segment;
      else if (param.kind === 'location') location = segment;
      if (badIndex === -1 && !validParam(param.kind, segment)) {
        badIndex = index;
        badKind = param.kind;
        badValue = segment;
      }
      node = param.node;
    }
    if (slash === end) break;
    start = slash + 1;
  }

  const route = node.routes.get(verb);
  if (route === undefined) {
    throw unknownMethod(httpMethod, path, verb === '' ? '' : ` (unknown custom verb ${quote(verb)})`);
  }
  if (badIndex !== -1) throw segmentError(badIndex, badValue, PARAM_PROBLEM[badKind]);

  if (operationsOnly && !route.operations) throw unknownMethod(httpMethod, path, ' (/ui/ serves long-running operations only)');
  const target = route.targets.get(httpMethod);
  if (target === undefined) {
    throw new MethodNotAllowedError(
      `HTTP method ${quote(httpMethod)} is not allowed on ${quote(path)}; it answers to ${route.allow}`,
      route.allow,
    );
  }

  const operation: Operation = {
    spec: target.spec,
    version,
    project,
    location,
    resource: decoded.slice(prefixLength, end - route.suffixLength),
    methodName: target.methodName,
  };
  return target.scopedForm === undefined ? operation : { ...operation, scopedForm: target.scopedForm };
}
