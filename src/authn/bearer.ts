/**
 * Strict `Authorization: Bearer <token>` parsing (RFC 6750 §2.1): one scheme,
 * one space, a token of base64url segments. Anything else is refused rather
 * than guessed at.
 *
 * @module
 * @throws ProxyError ERR_AUTHN_MISSING_CREDENTIALS, ERR_AUTHN_MALFORMED_CREDENTIALS (401)
 */
import { unauthenticated } from '../errors.js';

const BEARER = /^[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/;

export function parseBearer(header: string | string[] | undefined): string {
  if (header === undefined || header === '') {
    throw unauthenticated(
      'ERR_AUTHN_MISSING_CREDENTIALS',
      "Request is missing an Authorization: Bearer token (the pod's projected service-account token).",
      {
        reason: 'missing-token',
      },
    );
  }
  if (Array.isArray(header)) {
    throw unauthenticated('ERR_AUTHN_MALFORMED_CREDENTIALS', 'Request has more than one Authorization header.', {
      reason: 'malformed-authorization',
    });
  }
  const match = BEARER.exec(header);
  if (!match) {
    throw unauthenticated('ERR_AUTHN_MALFORMED_CREDENTIALS', 'The Authorization header must be "Bearer <JWT>".', {
      reason: 'malformed-authorization',
    });
  }
  return match[1] as string;
}

/**
 * The token of a header that looks like `Bearer <token>`, its characters
 * unchecked: only for looking up the cache of verified tokens. Every cached
 * token was verified (signature and claims) after passing {@link parseBearer},
 * so a hit proves this exact string was checked before; a miss goes through
 * parseBearer. Skips a regular-expression pass over ~1 KiB on every cached
 * request.
 */
export function bearerCacheCandidate(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string' || header.length < 8 || header.charCodeAt(6) !== 32) return undefined;
  const scheme = header.slice(0, 6);
  return scheme === 'Bearer' || scheme.toLowerCase() === 'bearer' ? header.slice(7) : undefined;
}
