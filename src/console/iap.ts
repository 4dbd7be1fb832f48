/**
 * Identity-Aware Proxy's signed header → the Google account of the auditor.
 *
 * Behind IAP (the usual way to put an internal page on GKE), every request
 * that reaches the backend carries `x-goog-iap-jwt-assertion`: an ES256 JWT
 * signed by IAP, `iss` `https://cloud.google.com/iap`, `aud` the backend
 * service (`/projects/NUMBER/global/backendServices/ID`), `email` and `sub`
 * the signed-in account. The header alone proves nothing (anyone who reaches
 * the pod directly can send one), so it is verified against IAP's published
 * keys: https://cloud.google.com/iap/docs/signed-headers-howto
 *
 * In: the header value. Out: a {@link GooglePrincipal}.
 * Throws `ERR_AUTHN_INVALID_TOKEN` (401: bad signature, wrong audience or
 * issuer, expired, not ES256, no email) and `ERR_AUTHN_VERIFIER_UNAVAILABLE`
 * (503: IAP's key set cannot be fetched; fail closed).
 *
 * @module
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { GooglePrincipal } from '../authn/principal.js';
import { ProxyError, unauthenticated } from '../errors.js';

export const IAP_ISSUER = 'https://cloud.google.com/iap';
export const IAP_ASSERTION_HEADER = 'x-goog-iap-jwt-assertion';
/** IAP signs with ES256 only. */
const ALGORITHMS = ['ES256'];
/** Larger than any real assertion (about 1 KB); a bigger header is refused unread. */
const MAX_ASSERTION_LENGTH = 8192;

export interface IapVerifierOptions {
  /** The backend service's audience, from `audit.console.iapAudience`. */
  readonly audience: string;
  /** IAP's JWK set (`audit.console.iapJwksUri`). */
  readonly jwksUri: string;
  readonly clockSkewSec: number;
  readonly fetchTimeoutMs: number;
  /** For tests: a key set instead of fetching `jwksUri`. */
  readonly keys?: JWTVerifyGetKey;
  readonly now?: () => number;
}

export interface IapVerifier {
  verify(assertion: string): Promise<GooglePrincipal>;
}

export function createIapVerifier(options: IapVerifierOptions): IapVerifier {
  // jose caches the set, refetches on an unknown kid at most every 30 s (cooldown), and keeps it 10 min.
  const keys =
    options.keys ??
    createRemoteJWKSet(new URL(options.jwksUri), {
      timeoutDuration: options.fetchTimeoutMs,
      cooldownDuration: 30_000,
      cacheMaxAge: 600_000,
    });
  const now = options.now ?? Date.now;
  return {
    async verify(assertion) {
      if (assertion.length > MAX_ASSERTION_LENGTH) throw invalid('The IAP assertion is too large.', 'malformed-token');
      let payload;
      try {
        ({ payload } = await jwtVerify(assertion, keys, {
          issuer: IAP_ISSUER,
          audience: options.audience,
          algorithms: ALGORITHMS,
          clockTolerance: options.clockSkewSec,
          requiredClaims: ['exp', 'iat', 'sub', 'email'],
          currentDate: new Date(now()),
        }));
      } catch (error) {
        throw toRefusal(error);
      }
      const email = payload.email;
      if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(email) || email.length > 320)
        throw invalid('The IAP assertion names no valid email.', 'invalid-claim');
      return {
        kind: 'google',
        issuer: 'iap',
        subject: String(payload.sub),
        email: email.toLowerCase(),
        audiences: [options.audience],
        expiresAt: (payload.exp as number) * 1000,
      };
    },
  };
}

function invalid(message: string, reason: string, cause?: unknown): ProxyError {
  return unauthenticated('ERR_AUTHN_INVALID_TOKEN', message, { reason, ...(cause === undefined ? {} : { cause }) });
}

function toRefusal(error: unknown): ProxyError {
  if (error instanceof ProxyError) return error;
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid || !(error instanceof joseErrors.JOSEError)) {
    return new ProxyError('ERR_AUTHN_VERIFIER_UNAVAILABLE', 'IAP key set unavailable', {
      cause: error,
      reason: 'verifier-unavailable',
    });
  }
  if (error instanceof joseErrors.JWTExpired) return invalid('The IAP assertion has expired.', 'token-expired', error);
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return invalid('The IAP assertion is for another backend service.', 'wrong-audience', error);
    if (error.claim === 'iss') return invalid('The assertion was not issued by IAP.', 'untrusted-issuer', error);
    return invalid(`The IAP assertion claim "${error.claim}" is missing or invalid.`, 'invalid-claim', error);
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed)
    return invalid('The IAP assertion algorithm is not accepted.', 'algorithm-not-allowed', error);
  if (error instanceof joseErrors.JWSSignatureVerificationFailed)
    return invalid('The IAP assertion signature is invalid.', 'bad-signature', error);
  if (error instanceof joseErrors.JWKSNoMatchingKey)
    return invalid('The IAP assertion was signed with an unknown key.', 'unknown-signing-key', error);
  return invalid('The IAP assertion is not a valid JWT.', 'malformed-token', error);
}
