/**
 * Upstream failures (undici, reply-from) → the caller-facing error: 413 when
 * our own body limit cut the request, 504 on a timeout, 502 otherwise.
 * Details stay in the cause, for the log and the audit record.
 *
 * @module
 * @throws nothing; returns ERR_REQUEST_BODY_TOO_LARGE, ERR_FORWARD_UPSTREAM_TIMEOUT or ERR_FORWARD_UPSTREAM_UNREACHABLE
 */
import type { FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';
import { BODY_IDLE_REASON } from './body-progress.js';

// A connect timeout is a timeout too (504), like waiting for headers or body; refused or unresolvable stays 502.
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'FST_REPLY_FROM_GATEWAY_TIMEOUT',
]);

/** `upstream` names the upstream in the (log-only) message, e.g. `callback upstream for /callbacks/x`. */
export function upstreamFailure(
  request: FastifyRequest,
  error: Error & { code?: string; cause?: unknown },
  upstream = 'upstream',
): ProxyError {
  if (request.kvp.failure?.code === 'ERR_REQUEST_BODY_TOO_LARGE') return request.kvp.failure;
  // The body stalled (server.bodyIdleTimeout) and its stream was cut: the caller's fault, not the upstream's.
  if (request.kvp.failure?.reason === BODY_IDLE_REASON) return request.kvp.failure;
  const cause = (error.cause ?? error) as Error & { code?: string };
  const code = cause.code ?? error.code ?? '';
  if (TIMEOUT_CODES.has(code)) {
    return new ProxyError('ERR_FORWARD_UPSTREAM_TIMEOUT', `${upstream} timed out`, {
      cause: error,
      reason: 'upstream-timeout',
    });
  }
  return new ProxyError('ERR_FORWARD_UPSTREAM_UNREACHABLE', `${upstream} unreachable`, {
    cause: error,
    reason: `upstream-unreachable${code === '' ? '' : `:${code.toLowerCase()}`}`,
  });
}
