/**
 * Request headers no route family accepts, checked before any policy is
 * consulted (the classify step) and read the same way by the forwarder when
 * it strips headers. Pure.
 *
 * Headers that would swap the Google credential or the billed project are not
 * silently dropped but refused, so a caller learns its request is not what it
 * meant.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_FORBIDDEN_HEADER (400) from {@link checkRequestHeaders}
 */
import type { IncomingHttpHeaders } from 'node:http';
import { ProxyError } from '../errors.js';

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
