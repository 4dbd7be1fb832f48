/**
 * What crosses the proxy in headers. Pure functions, unit-tested without fastify.
 *
 * Requests: the caller's credentials and anything a caller could use to speak
 * for someone else are removed before the proxy adds its own credential
 * (strip first, then assert: the order kube-apiserver and reply-from use).
 * Headers that would swap the Google credential or the billed project never
 * get here: the classify step refuses them (lib/request-guard.ts).
 *
 * @module
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { normalizeHeaderName } from '../lib/request-guard.js';

/** RFC 9110 §7.6.1 hop-by-hop headers, plus the non-standard ones proxies also treat so. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Caller credentials and identity assertions that must never reach Vertex AI or be trusted from a caller. */
const STRIPPED_REQUEST_HEADERS = new Set([
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
  'expect',
]);
const STRIPPED_REQUEST_PREFIXES = ['x-forwarded-', 'x-kvp-', 'x-envoy-', 'x-goog-iam-', 'x-goog-authenticated-', 'x-goog-iap-'];

/** x-goog-* headers a caller may send: SDK telemetry and request routing. Every other x-goog-* is dropped. */
const ALLOWED_GOOG_HEADERS = new Set(['x-goog-api-client', 'x-goog-request-params']);

/** Header names listed in `Connection` are hop-by-hop too (RFC 9110 §7.6.1). */
export function connectionListed(headers: IncomingHttpHeaders | OutgoingHttpHeaders): Set<string> | undefined {
  const value = headers.connection;
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  // The usual values name only headers that are hop-by-hop anyway: no set to build on every request.
  const lower = text.toLowerCase();
  if (lower === 'keep-alive' || lower === 'close') return undefined;
  return new Set(
    lower
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== ''),
  );
}

/**
 * The headers sent to Vertex AI: the caller's minus everything above, plus
 * the proxy's own `Authorization`. `host` is set by the forwarder.
 */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, authorization: string): OutgoingHttpHeaders {
  const listed = connectionListed(incoming);
  const out: OutgoingHttpHeaders = {};
  for (const raw in incoming) {
    // Judged by the name a lenient server would read (`x_forwarded_for` as `x-forwarded-for`), forwarded as sent.
    const name = raw.includes('_') ? normalizeHeaderName(raw) : raw;
    if (HOP_BY_HOP.has(name) || STRIPPED_REQUEST_HEADERS.has(name) || listed?.has(name)) continue;
    if (STRIPPED_REQUEST_PREFIXES.some((p) => name.startsWith(p))) continue;
    if (name.startsWith('x-goog-') && !ALLOWED_GOOG_HEADERS.has(name)) continue;
    out[raw] = incoming[raw];
  }
  out.authorization = authorization;
  return out;
}

/** Response headers that must not travel back to the caller. */
const STRIPPED_RESPONSE_HEADERS = new Set(['alt-svc', 'set-cookie', 'www-authenticate']);

/** The headers returned to the caller: upstream's minus hop-by-hop and ones meaningful only for Google's own hosts. */
export function downstreamResponseHeaders(upstream: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = connectionListed(upstream);
  const out: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    if (HOP_BY_HOP.has(name) || STRIPPED_RESPONSE_HEADERS.has(name) || listed?.has(name)) continue;
    out[name] = upstream[name];
  }
  return out;
}
