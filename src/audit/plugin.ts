/**
 * The first and the last step: every request gets a `RequestContext` when it
 * arrives, and exactly one AuditRecord when its response is over — finished,
 * refused, failed or abandoned by the client (the response `close` event
 * fires in every case, where fastify's onResponse does not).
 *
 * @module
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { ProxyError } from '../errors.js';
import { newRequestContext, type RequestContext } from '../request-context.js';
import {
  serverSpanAttributes,
  serverSpanFailed,
  serverSpanName,
  upstreamSpanEndAttributes,
  upstreamSpanFailed,
} from '../tracing/attributes.js';
import type { Tracing } from '../tracing/tracing.js';
import { buildAuditRecord, type AuditRecord } from './record.js';

/**
 * Answers written on a raw connection by node's clientError path (a request
 * not received within `server.requestTimeout`: 408). A request that was
 * being handled on that connection is recorded with that answer, because the
 * caller received it; without it the record would say 499, a status nobody
 * received.
 */
const connectionRefusals = new WeakMap<object, ProxyError>();

export function noteConnectionRefusal(socket: object, refusal: ProxyError): void {
  connectionRefusals.set(socket, refusal);
}

export type AuditListener = (record: AuditRecord) => void;

export interface AuditOptions {
  /** Called once per request with its record: sinks and metrics. */
  readonly listeners: readonly AuditListener[];
  readonly direction: 'outbound' | 'inbound';
  readonly onListenerError: (error: unknown) => void;
  /** When on, each request gets a server span, started here and ended with its record. */
  readonly tracing?: Tracing;
}

/**
 * Starts the audit of one request: a fresh context, and a record when the
 * response closes. Idempotent, so router-level error paths (which run no
 * hooks) can call it too.
 */
export function createAuditStarter({ listeners, direction, onListenerError, tracing }: AuditOptions) {
  const tracingOn = tracing?.enabled === true;
  function emit(request: FastifyRequest, reply: FastifyReply, socket: object, responseBytes: number, clientIp: string | undefined): void {
    const refusal = reply.raw.headersSent ? undefined : connectionRefusals.get(socket);
    if (refusal !== undefined) request.kvp.failure ??= refusal;
    const record = buildAuditRecord(request.kvp, {
      requestId: request.id,
      method: request.method,
      url: request.url,
      headers: request.headers,
      clientIp,
      status: refusal?.httpStatus ?? reply.raw.statusCode,
      responseBytes,
      aborted: refusal === undefined && !reply.raw.writableFinished,
      responseStarted: refusal !== undefined || reply.raw.headersSent,
      endedAt: process.hrtime.bigint(),
    });
    if (request.kvp.span !== undefined) endSpans(request.kvp, record);
    for (const listener of listeners) {
      try {
        listener(record);
      } catch (error) {
        onListenerError(error);
      }
    }
  }

  return function startAudit(request: FastifyRequest, reply: FastifyReply): void {
    if ((request.kvp as RequestContext | null | undefined) != null) return; // null until this hook sets it
    request.kvp = newRequestContext();
    request.kvp.direction = direction;
    if (tracingOn) request.kvp.span = tracing.startRequest(request.headers, request.method);
    const socket = request.raw.socket;
    const bytesWrittenAtStart = socket.bytesWritten;
    // Read now: once the client has gone, the socket no longer knows its peer.
    const clientIp = request.ip;
    reply.raw.once('close', () => emit(request, reply, socket, socket.bytesWritten - bytesWrittenAtStart, clientIp));
  };
}

/** The upstream span (when one was started), then the request's own, each with what the record says. */
function endSpans(ctx: RequestContext, record: AuditRecord): void {
  const span = ctx.span as NonNullable<RequestContext['span']>;
  // An unsampled trace records nothing: no attributes to compute.
  if (!span.sampled) return;
  const upstream = ctx.upstreamSpan;
  if (upstream !== undefined) {
    upstream.setAttributes(upstreamSpanEndAttributes(ctx));
    const failed = upstreamSpanFailed(ctx);
    if (failed !== undefined) upstream.fail(failed);
    upstream.end();
  }
  span.rename(serverSpanName(record));
  span.setAttributes(serverSpanAttributes(record));
  if (serverSpanFailed(record)) span.fail(record.errorCode ?? record.reason);
  span.end();
}

export interface AuditPluginOptions {
  readonly startAudit: (request: FastifyRequest, reply: FastifyReply) => void;
}

export const auditPlugin = fp<AuditPluginOptions>(
  // eslint-disable-next-line @typescript-eslint/require-await -- a fastify plugin: async tells fastify when registration is done
  async (app, { startAudit }) => {
    app.decorateRequest('kvp', null as never);
    app.addHook('onRequest', (request, reply, done) => {
      startAudit(request, reply);
      done();
    });
  },
  { name: 'kvp-audit', fastify: '5.x' },
);
