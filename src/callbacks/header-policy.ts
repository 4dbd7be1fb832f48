/**
 * What a callback backend receives in headers. Pure.
 *
 * Strip first, then assert: the caller's credentials (its Google ID token,
 * cookies), hop-by-hop headers and every identity header a caller could
 * forge (`x-kvp-*`, the configured assertion header, `x-forwarded-*`,
 * `Forwarded`, IAP/ESP identity headers) are removed; then the proxy adds
 * what it vouches for: the signed assertion, the verified caller's email and
 * the request id.
 *
 * @module
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
// One hop-by-hop rule for both route families (RFC 9110 §7.6.1).
import { connectionListed, HOP_BY_HOP } from '../forward/header-policy.js';

const STRIPPED = new Set([
  'authorization',
  'cookie',
  'cookie2',
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'x-original-url',
  'x-rewrite-url',
  'x-serverless-authorization',
  'x-endpoint-api-userinfo',
  'x-apigateway-api-userinfo',
  'expect',
  // Method overrides would let a backend run another method than the route allowed.
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
]);
const STRIPPED_PREFIXES = ['x-forwarded-', 'x-kvp-', 'x-envoy-', 'x-goog-iap-', 'x-goog-authenticated-', 'x-goog-iam-'];

export const CALLER_EMAIL_HEADER = 'x-kvp-caller-email';
export const REQUEST_ID_HEADER = 'x-kvp-request-id';

export interface Vouched {
  /** The configured assertion header name (lower case). */
  readonly assertionHeader: string;
  readonly assertion: string;
  readonly callerEmail: string;
  readonly requestId: string;
}

/** The headers forwarded to the backend. `host` is set by the forwarder. */
export function callbackRequestHeaders(incoming: IncomingHttpHeaders, vouched: Vouched): OutgoingHttpHeaders {
  const listed = connectionListed(incoming);
  const out: OutgoingHttpHeaders = {};
  for (const raw in incoming) {
    // A backend that reads `_` as `-` (CGI-style servers) must not receive an identity or override header under that spelling.
    const name = raw.includes('_') ? raw.toLowerCase().replaceAll('_', '-') : raw;
    if (HOP_BY_HOP.has(name) || STRIPPED.has(name) || listed?.has(name) || name === vouched.assertionHeader) continue;
    if (STRIPPED_PREFIXES.some((p) => name.startsWith(p))) continue;
    out[raw] = incoming[raw];
  }
  out[vouched.assertionHeader] = vouched.assertion;
  out[CALLER_EMAIL_HEADER] = vouched.callerEmail;
  out[REQUEST_ID_HEADER] = vouched.requestId;
  return out;
}
