/**
 * What crosses the proxy in headers. Pure functions, unit-tested without fastify.
 *
 * Requests: the caller's credentials and anything a caller could use to speak
 * for someone else are removed before the proxy adds its own credential
 * (strip first, then assert: the order kube-apiserver and reply-from use).
 * Headers that would swap the Google credential or the billed project are not
 * silently dropped but refused, so a caller learns its request is not what it
 * meant.
 *
 * @module
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { ProxyError } from '../errors.js';

/** RFC 9110 §7.6.1 hop-by-hop headers, plus the non-standard ones proxies also treat so. */
const HOP_BY_HOP = new Set([
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

/** Headers that would move the call to another credential or project: refused. */
const REFUSED_REQUEST_HEADERS: Readonly<Record<string, string>> = {
  'x-goog-user-project': "The x-goog-user-project header is not accepted: quota and billing follow the proxy's own project.",
  'x-goog-api-key': 'API keys are not accepted: the proxy calls Vertex AI with its own identity.',
  // Google front ends honour method overrides: a request authorized as a GET could run as a DELETE.
  'x-http-method-override': 'HTTP method overrides are not accepted: the method is part of what the policy authorizes.',
  'x-http-method': 'HTTP method overrides are not accepted: the method is part of what the policy authorizes.',
  'x-method-override': 'HTTP method overrides are not accepted: the method is part of what the policy authorizes.',
};

/**
 * Refuses headers that would swap the Google credential or billing project.
 * @throws ProxyError ERR_REQUEST_FORBIDDEN_HEADER (400)
 */
export function checkRequestHeaders(headers: IncomingHttpHeaders): void {
  for (const name in REFUSED_REQUEST_HEADERS) {
    if (headers[name] !== undefined) throw forbiddenHeader(name, name);
  }
  // Some servers and gateways (CGI-style environments, several WSGI and PHP
  // stacks) read `x_goog_user_project` as `x-goog-user-project`: a name that
  // normalises to a refused one is refused too.
  for (const name in headers) {
    if (!name.includes('_')) continue;
    const normalized = normalizeHeaderName(name);
    if (REFUSED_REQUEST_HEADERS[normalized] !== undefined) throw forbiddenHeader(normalized, name);
  }
}

function forbiddenHeader(refused: string, sent: string): ProxyError {
  const message = REFUSED_REQUEST_HEADERS[refused] as string;
  return new ProxyError('ERR_REQUEST_FORBIDDEN_HEADER', sent === refused ? message : `${message} (sent as ${sent})`, {
    reason: 'forbidden-header',
    metadata: { header: sent.slice(0, 64) },
  });
}

/** A header name as lenient servers read it: lower case, `_` as `-`. */
export function normalizeHeaderName(name: string): string {
  return name.toLowerCase().replaceAll('_', '-');
}

/** Header names listed in `Connection` are hop-by-hop too (RFC 9110 §7.6.1). */
function connectionListed(headers: IncomingHttpHeaders | OutgoingHttpHeaders): Set<string> | undefined {
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
