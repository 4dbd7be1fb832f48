/**
 * The audit step between authorize and forward (strict durability): an
 * allowed request's decision entry is committed to every audit store before
 * the request may go on. When a store cannot take it, the request ends here
 * with 503 `ERR_AUDIT_UNAVAILABLE` and nothing is forwarded.
 *
 * It also notes, without buffering any body, what the final record needs
 * from the response: Vertex AI's request id header and, for long-running
 * operations, the operation or job `name` from the first bytes of the JSON
 * answer.
 *
 * @module
 */
import type { Readable } from 'node:stream';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ProxyError } from '../errors.js';
import type { RequestContext } from '../request-context.js';
import { buildAuditRecord } from '../audit/record.js';
import type { AuditTrail } from '../audit/trail.js';

export interface AuditDurabilityOptions {
  /** Undefined when no durable store is configured: then only the response facts are noted. */
  readonly trail: AuditTrail | undefined;
}

/** The `name` of a create/operation answer is its first member in practice; more is never read. */
const NAME_PREFIX_BYTES = 8 * 1024;
const NAME = /"name"\s*:\s*"([^"\\]{1,1024})"/;

/** Passes every chunk through untouched; keeps a copy of the first few KiB to find the resource name in. */
class NameTap extends Transform {
  readonly #head: Buffer[] = [];
  #seen = 0;
  readonly #ctx: RequestContext;
  constructor(ctx: RequestContext) {
    super();
    this.#ctx = ctx;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#seen < NAME_PREFIX_BYTES) {
      const part = chunk.subarray(0, NAME_PREFIX_BYTES - this.#seen);
      this.#head.push(part);
      this.#seen += part.length;
    }
    callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    const match = NAME.exec(Buffer.concat(this.#head).toString('utf8'));
    if (match) this.#ctx.longRunningName = match[1];
    callback();
  }
}

/**
 * Commits an allowed request's decision record to every durable store. The
 * strict-mode rule for every route family: nothing is forwarded before this
 * resolves.
 *
 * @throws ProxyError ERR_AUDIT_UNAVAILABLE (503) when a store cannot take it.
 */
export function commitDecision(trail: AuditTrail, request: FastifyRequest): Promise<void> {
  const record = buildAuditRecord(request.kvp, {
    requestId: request.id,
    method: request.method,
    url: request.url,
    headers: request.headers,
    clientIp: request.ip,
    status: 0,
    responseBytes: 0,
    aborted: false,
    responseStarted: false,
    endedAt: process.hrtime.bigint(),
  });
  const span = request.kvp.span?.child('kvp.audit.commit', 'internal', { 'kvp.audit.durability': 'strict' });
  const committed = trail.recordDecision(record);
  if (span !== undefined) {
    committed.then(
      () => span.end(),
      () => {
        span.fail('ERR_AUDIT_UNAVAILABLE');
        span.end();
      },
    );
  }
  return committed.catch((error: unknown) => {
    request.log.error({ err: error, requestId: request.id }, 'audit store cannot take the decision record; request refused');
    throw new ProxyError('ERR_AUDIT_UNAVAILABLE', 'audit store unavailable', {
      cause: error,
      reason: 'audit-store-unavailable',
    });
  });
}

export const auditDurabilityPlugin = fp<AuditDurabilityOptions>(
  // eslint-disable-next-line @typescript-eslint/require-await -- a fastify plugin: async tells fastify when registration is done
  async (app, { trail }) => {
    if (trail?.durability === 'strict') {
      // preHandler, not onRequest: the body checks of the inspect step (preParsing) are part of the decision.
      app.addHook('preHandler', (request, _reply, done) => {
        if (request.kvp.decision?.allowed !== true) {
          done();
          return;
        }
        commitDecision(trail, request).then(() => done(), done);
      });
    }

    app.addHook('onSend', (request, reply, payload, done) => {
      const ctx = request.kvp;
      const upstreamId = reply.getHeader('x-goog-request-id');
      if (typeof upstreamId === 'string' && upstreamId.length <= 256) ctx.upstreamRequestId = upstreamId;
      const stream = payload as Readable | null;
      const type = reply.getHeader('content-type');
      if (
        ctx.operation?.spec.longRunning === true &&
        ctx.upstreamStatus !== undefined &&
        ctx.upstreamStatus < 300 &&
        typeof type === 'string' &&
        type.includes('json') &&
        stream !== null &&
        typeof stream === 'object' &&
        typeof stream.pipe === 'function'
      ) {
        const tap = new NameTap(ctx);
        // pipeline, not pipe: an upstream failure must end the response, not leave it hanging.
        pipeline(stream, tap, () => undefined);
        done(null, tap);
        return;
      }
      done(null, payload);
    });
  },
  { name: 'kvp-audit-durability', fastify: '5.x', dependencies: ['kvp-authorize'] },
);
