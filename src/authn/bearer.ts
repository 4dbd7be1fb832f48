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
    throw unauthenticated('ERR_AUTHN_MISSING_CREDENTIALS', 'Request is missing an Authorization: Bearer token (the pod\'s projected service-account token).', {
      reason: 'missing-token',
    });
  }
  if (Array.isArray(header)) {
    throw unauthenticated('ERR_AUTHN_MALFORMED_CREDENTIALS', 'Request has more than one Authorization header.', { reason: 'malformed-authorization' });
  }
  const match = BEARER.exec(header);
  if (!match) {
    throw unauthenticated('ERR_AUTHN_MALFORMED_CREDENTIALS', 'The Authorization header must be "Bearer <JWT>".', { reason: 'malformed-authorization' });
  }
  return match[1] as string;
}
