/**
 * Strict checks on a callback request's raw path (before any decoding), so
 * the path the route table matches is the path the in-cluster backend sees:
 * a request can never leave its route's prefix, whatever the backend (or a
 * hop in between) does with dot segments, encoded slashes, backslashes or
 * double encoding. Pure.
 *
 * In: the raw request path (no query). Out: nothing, or a refusal.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_INVALID_PATH (400)
 */
import { ProxyError } from '../errors.js';

/**
 * RFC 3986 `pchar` plus `/`: unreserved, sub-delims, `:` and `@`. Everything
 * else (space, `\`, `"`, `<`, `>`, `{`, `}`, `|`, `^`, backtick, raw non-ASCII)
 * has no business in a path a client encoded correctly.
 */
const PATH_CHAR = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/") PATH_CHAR[c.charCodeAt(0)] = 1;

/** RFC 3986 §2.3 unreserved characters: ALPHA / DIGIT / "-" / "." / "_" / "~". */
const UNRESERVED = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[c.charCodeAt(0)] = 1;

/**
 * Escapes that would hide a path structure from the matcher: `/` and `\`
 * (a second path separator for some backends), `.` (a dot segment in
 * disguise), `%` (double encoding: `%252e%252e`), and control characters.
 */
function refusedEscape(byte: number): string | undefined {
  if (byte === 0x2f || byte === 0x5c) return 'an encoded slash or backslash';
  if (byte === 0x2e) return 'an encoded dot';
  if (byte === 0x25) return 'an encoded "%" (double encoding)';
  if (byte < 0x20 || byte === 0x7f) return 'an encoded control character';
  // RFC 3986 §2.3: an escaped unreserved character is the same URI as the
  // character itself, so a backend decodes `%61dmin` to `admin` while a
  // matcher on the raw text sees another segment. Correct clients never send it.
  if (byte < 128 && UNRESERVED[byte] === 1) return `an encoded unreserved character ("${String.fromCharCode(byte)}"; send it unencoded)`;
  if (byte === 0x3b) return 'an encoded ";" (a path parameter in disguise)';
  return undefined;
}

function invalid(message: string, reason: string): ProxyError {
  return new ProxyError('ERR_REQUEST_INVALID_PATH', message, { reason });
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Refuses a path that is not a plain sequence of segments.
 *
 * @throws ProxyError ERR_REQUEST_INVALID_PATH (400)
 */
export function checkCallbackPath(path: string): void {
  if (path.charCodeAt(0) !== 0x2f) throw invalid('The request path must start with "/".', 'invalid-path');
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code === 0x25) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) throw invalid('The request path has a malformed percent-escape.', 'invalid-path');
      const why = refusedEscape(hi * 16 + lo);
      if (why !== undefined) throw invalid(`The request path contains ${why}, which is not accepted on callback routes.`, 'path-escape');
      i += 2;
      continue;
    }
    if (code === 0x3b) {
      // Path parameters (`/admin;/reset`, `/..;/`) are stripped by servlet
      // containers and some routers before matching, by others not: no single
      // reading exists that both the proxy and every backend would agree on.
      throw invalid('The request path contains ";" (a path parameter), which is not accepted on callback routes.', 'path-escape');
    }
    if (code >= 128 || PATH_CHAR[code] !== 1) {
      throw invalid(
        code === 0x5c
          ? 'The request path contains a backslash, which is not accepted on callback routes.'
          : 'The request path contains a character that must be percent-encoded.',
        code === 0x5c ? 'path-escape' : 'invalid-path',
      );
    }
  }
  // Escapes of UTF-8 bytes must form valid UTF-8: the forwarder decodes to check the path again.
  try {
    decodeURIComponent(path);
  } catch {
    throw invalid('The request path has percent-escapes that are not valid UTF-8.', 'invalid-path');
  }
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    if (segment === '') {
      // Only a trailing "/" may leave an empty segment; "//" is a path some backends collapse.
      if (i === segments.length - 1) continue;
      throw invalid('The request path contains an empty segment ("//").', 'path-escape');
    }
    if (segment === '.' || segment === '..')
      throw invalid('The request path contains a dot segment ("." or ".."), which is not accepted on callback routes.', 'path-escape');
  }
}
