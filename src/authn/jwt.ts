/**
 * A compact JWT taken apart once (header, claims, signing input, signature)
 * and its registered claims checked the way jose's `jwtVerify` checks them
 * (RFC 7519 §4.1; the same order, the same clock tolerance rule), on the
 * claims already parsed. jose would decode and parse the claims a second time
 * for its check: on a token-cache miss the two parses and jose's validation
 * cost more than the check below (measured: `npm run bench`'s micro-benchmarks).
 *
 * @module
 * @throws ProxyError ERR_AUTHN_INVALID_TOKEN (401) with the reasons
 *   malformed-token, untrusted-issuer, wrong-audience, invalid-claim,
 *   token-not-yet-valid, token-expired
 */
import { ProxyError, unauthenticated } from '../errors.js';

export interface CompactJwt {
  readonly header: Readonly<Record<string, unknown>>;
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface ClaimsExpectation {
  readonly issuer: string;
  /** At least one must be in `aud`. */
  readonly audiences: readonly string[];
  readonly clockSkewSec: number;
  readonly nowSec: number;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** A claims set that is not UTF-8 is malformed, not decoded with replacement characters. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** jwtVerify's required claims in jose's check order (requiredClaims ['exp','iat','sub','aud'] plus `iss`, reversed, de-duplicated). */
const REQUIRED_CLAIMS = ['iss', 'aud', 'sub', 'iat', 'exp'] as const;

/** Header and claims of a compact JWS. @throws ProxyError malformed-token */
export function parseCompactJwt(token: string): CompactJwt {
  const first = token.indexOf('.');
  const last = token.lastIndexOf('.');
  if (first <= 0 || first === last || token.indexOf('.', first + 1) !== last) throw malformed('The token is not a well-formed JWT.');
  const header = decodeObject(token.slice(0, first));
  const claims = decodeObject(token.slice(first + 1, last));
  if (header === undefined || claims === undefined) throw malformed('The token is not a well-formed JWT.');
  return { header, claims };
}

function decodeObject(segment: string): Record<string, unknown> | undefined {
  if (!BASE64URL.test(segment)) return undefined;
  try {
    const value: unknown = JSON.parse(UTF8.decode(Buffer.from(segment, 'base64url')));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks iss, aud, sub, iat, exp (required) and nbf (if present) as jose's
 * `jwtVerify` does with `issuer`, `audience`, `requiredClaims` and
 * `clockTolerance`.
 *
 * @throws ProxyError ERR_AUTHN_INVALID_TOKEN
 */
export function checkRegisteredClaims(claims: Readonly<Record<string, unknown>>, expected: ClaimsExpectation): void {
  for (const claim of REQUIRED_CLAIMS) if (!Object.hasOwn(claims, claim)) throw claimRefusal(claim);
  if (claims.iss !== expected.issuer) throw claimRefusal('iss');
  const { aud } = claims;
  const audienceMatches =
    typeof aud === 'string' ? expected.audiences.includes(aud) : Array.isArray(aud) && expected.audiences.some((a) => aud.includes(a));
  if (!audienceMatches) throw claimRefusal('aud');
  if (typeof claims.iat !== 'number') throw claimRefusal('iat');
  const { nbf, exp } = claims;
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > expected.nowSec + expected.clockSkewSec)) throw claimRefusal('nbf');
  if (typeof exp !== 'number') throw claimRefusal('exp');
  if (exp <= expected.nowSec - expected.clockSkewSec) throw invalid('The token has expired.', 'token-expired');
}

function claimRefusal(claim: string): ProxyError {
  switch (claim) {
    case 'aud':
      return invalid('The token audience is not accepted by this proxy.', 'wrong-audience');
    case 'iss':
      return invalid('The token issuer is not trusted by this proxy.', 'untrusted-issuer');
    case 'nbf':
      return invalid('The token is not valid yet.', 'token-not-yet-valid');
    default:
      return invalid(`The token claim "${claim}" is missing or invalid.`, 'invalid-claim');
  }
}

function invalid(message: string, reason: string): ProxyError {
  return unauthenticated('ERR_AUTHN_INVALID_TOKEN', message, { reason });
}

function malformed(message: string): ProxyError {
  return unauthenticated('ERR_AUTHN_INVALID_TOKEN', message, { reason: 'malformed-token' });
}
