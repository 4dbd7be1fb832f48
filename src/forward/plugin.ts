/**
 * Step ⑤ forward: the authorized request goes to the Vertex AI host its
 * location picked, with the caller's credentials replaced by the proxy's own,
 * bodies streamed both ways (server-sent events reach the caller chunk by
 * chunk), and upstream failures mapped to Google error JSON.
 *
 * This is the hot path, so it talks to undici's dispatcher directly rather
 * than through @fastify/reply-from: no URL parsing or re-stringifying per
 * request, no intermediate response stream. Response bytes go from the
 * upstream socket's handler straight to the caller's socket, with
 * backpressure both ways. Responses whose bytes the audit step reads
 * (long-running operations: the operation name in the JSON answer) go through
 * `reply.send(stream)` instead, so fastify's `onSend` hooks see them.
 *
 * In: `request.kvp.upstreamBase` (an origin) and the classified operation.
 * Out: the response, `request.kvp.upstream*` timings, status and request id.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_BODY_TOO_LARGE (413), ERR_FORWARD_CREDENTIAL_UNAVAILABLE (503),
 *   ERR_FORWARD_CREDENTIAL_REJECTED (502), ERR_FORWARD_UPSTREAM_TIMEOUT (504), ERR_FORWARD_UPSTREAM_UNREACHABLE (502)
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import proxy from '@fastify/http-proxy';
import fp from 'fastify-plugin';
import type { Dispatcher } from 'undici';
import { ProxyError } from '../errors.js';
import type { UpstreamCredential } from './credentials.js';
import type { TeamIdentities } from './identities.js';
import { bodyTooLarge, limitChunkedBody, readSmallBodyThen, smallDeclaredBody } from './body-limit.js';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './header-policy.js';
import { upstreamFailure } from './upstream-errors.js';
import { watchBodyProgress } from './body-progress.js';
import { vertexSpanStart } from '../tracing/attributes.js';
import type { TraceSpan } from '../tracing/tracing.js';
import { usageFraming } from '../usage/operations.js';
import { createUsageMeter, type UsageMeter } from '../usage/usage.js';

export interface ForwardPluginOptions {
  readonly credential: UpstreamCredential;
  /** The connection pool to Vertex AI (undici Agent with timeouts set). */
  readonly dispatcher: Dispatcher;
  readonly bodyLimitBytes: number;
  /** `server.bodyIdleTimeout`; 0 turns it off. */
  readonly bodyIdleTimeoutMs?: number;
  /** `vertex.identities`: callers whose requests go upstream as their team's Google service account. */
  readonly identities?: TeamIdentities | undefined;
  /** Send `X-Goog-Request-Reason: <request id>` upstream (attribution.requestReason). */
  readonly requestReason?: boolean;
}

/** Classification already refused anything that is not a Vertex AI method. */
const FORWARDED_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS'];

/** `host` for an upstream origin; few distinct origins (one per location), so parsed once each. */
const hostByOrigin = new Map<string, string>();
function hostOf(origin: string): string {
  let host = hostByOrigin.get(origin);
  if (host === undefined) {
    host = new URL(origin).host;
    if (hostByOrigin.size < 1024) hostByOrigin.set(origin, host);
  }
  return host;
}

/**
 * One forwarded request's upstream side (undici's handler interface): the
 * response is written to the caller as it arrives; a failure before the
 * response started becomes a Google error, a failure after it ends the
 * caller's response early.
 */
class UpstreamExchange implements Dispatcher.DispatchHandler {
  readonly #request: FastifyRequest;
  readonly #reply: FastifyReply;
  readonly #res: ServerResponse;
  #controller: Dispatcher.DispatchController | undefined;
  /** Set on the slow path: the stream handed to `reply.send`. */
  #body: Readable | undefined;
  #started = false;
  #finished = false;
  /** Reads token usage from the bytes as they pass, for operations that carry it. */
  #meter: UsageMeter | undefined;

  constructor(request: FastifyRequest, reply: FastifyReply) {
    this.#request = request;
    this.#reply = reply;
    this.#res = reply.raw;
    // The caller went away: stop the upstream call too (a stream would otherwise run on).
    this.#res.once('close', () => {
      if (!this.#finished) this.#controller?.abort(new Error('client closed the connection'));
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#res.destroyed) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    const ctx = this.#request.kvp;
    ctx.upstreamHeadersAt = process.hrtime.bigint();
    ctx.upstreamStatus = statusCode;
    if (statusCode === 401) {
      // Vertex AI refused the proxy's own token. Passing the 401 on would tell
      // the caller its Kubernetes token is bad; this is the proxy's failure.
      this.#finished = true;
      controller.abort(new Error('upstream rejected the proxy credential'));
      this.#reply.send(
        new ProxyError('ERR_FORWARD_CREDENTIAL_REJECTED', 'UNAVAILABLE', 'upstream rejected the proxy credential', {
          httpStatus: 502,
          reason: 'upstream-rejected-credential',
        }),
      );
      return;
    }
    this.#started = true;
    const requestId = headers['x-goog-request-id'];
    if (typeof requestId === 'string' && requestId.length <= 256) ctx.upstreamRequestId = requestId;
    const out = downstreamResponseHeaders(headers);
    if (statusCode >= 200 && statusCode < 300) {
      const contentType = headers['content-type'];
      const framing = usageFraming(ctx.operation, typeof contentType === 'string' ? contentType : undefined);
      if (framing !== undefined) {
        ctx.usage = { tokens: undefined, modelVersion: undefined };
        this.#meter = createUsageMeter(framing, (usage) => (ctx.usage = usage));
      }
    }
    if (ctx.operation?.spec.longRunning === true) {
      this.#body = new Readable({ read: () => controller.resume() });
      this.#body.once('error', (error: Error) => {
        ctx.upstreamStreamError = error.message;
      });
      this.#reply.code(statusCode).headers(out).send(this.#body);
      return;
    }
    this.#reply.hijack();
    this.#res.writeHead(statusCode, out as Record<string, string | string[]>);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#body !== undefined) {
      if (!this.#body.push(chunk)) controller.pause();
      return;
    }
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', () => controller.resume());
    }
    // After the write: the caller's bytes never wait for the accounting.
    this.#meter?.push(chunk);
  }

  onResponseEnd(): void {
    this.#finished = true;
    this.#finishUsage();
    if (this.#body !== undefined) this.#body.push(null);
    else if (this.#started) this.#res.end();
  }

  #finishUsage(): void {
    if (this.#meter === undefined) return;
    this.#request.kvp.usage = this.#meter.finish();
    this.#meter = undefined;
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#finished) return;
    this.#finished = true;
    if (!this.#started) {
      this.#reply.send(upstreamFailure(this.#request, error));
      return;
    }
    // The response already started: all that is left is to end it early and say why in the audit record.
    this.#request.kvp.upstreamStreamError = error.message;
    this.#finishUsage();
    if (this.#body !== undefined) this.#body.destroy(error);
    else this.#res.destroy();
  }
}

/**
 * Sends one request (already vetted, headers already filtered) to `origin`
 * and streams the answer back. Needs `request.kvp` and a body parser that
 * leaves the body a stream. Exported for the benchmark's tuned passthrough,
 * which must run exactly this code.
 */
export function dispatchUpstream(
  dispatcher: Dispatcher,
  request: FastifyRequest,
  reply: FastifyReply,
  origin: string,
  headers: OutgoingHttpHeaders,
): void {
  headers.host = hostOf(origin);
  const inspected = request.kvp.forwardBody;
  if (inspected !== undefined) {
    // The inspect step read the body whole (and may have rewritten it, where the config says so).
    delete headers['transfer-encoding'];
    headers['content-length'] = String(inspected.length);
    send(dispatcher, request, reply, origin, headers, inspected);
    return;
  }
  const body = request.body instanceof Readable ? request.body : null;
  if (body !== null && smallDeclaredBody(request) !== undefined) {
    readSmallBodyThen(request, reply, body, (bytes) => send(dispatcher, request, reply, origin, headers, bytes));
    return;
  }
  send(dispatcher, request, reply, origin, headers, body);
}

function send(
  dispatcher: Dispatcher,
  request: FastifyRequest,
  reply: FastifyReply,
  origin: string,
  headers: OutgoingHttpHeaders,
  body: Readable | Buffer | null,
): void {
  // Without a body the length is undici's to set; a caller's stray Content-Length must not desynchronise it.
  if (body === null) delete headers['content-length'];
  request.kvp.upstreamStartedAt = process.hrtime.bigint();
  if (request.kvp.span !== undefined) traceUpstream(request, origin, headers);
  dispatcher.dispatch(
    { origin, path: request.url, method: request.method, headers: headers as Record<string, string>, body },
    new UpstreamExchange(request, reply),
  );
}

/** The client span of the Vertex AI call (ended with the response), named as the parent in the `traceparent` sent up. */
function traceUpstream(request: FastifyRequest, origin: string, headers: OutgoingHttpHeaders): void {
  const parent = request.kvp.span as TraceSpan;
  let span = parent;
  if (parent.sampled) {
    const { name, attributes } = vertexSpanStart(request.kvp.operation, request.method, origin, headers.host as string);
    span = parent.child(name, 'client', attributes);
  }
  request.kvp.upstreamSpan = span;
  span.inject(headers);
}

function identityUnavailable(): ProxyError {
  return new ProxyError('ERR_FORWARD_IDENTITY_UNAVAILABLE', 'UNAVAILABLE', 'upstream identity unavailable', {
    reason: 'identity-unavailable',
  });
}

export const forwardPlugin = fp<ForwardPluginOptions>(
  async (app, { credential, dispatcher, bodyLimitBytes, bodyIdleTimeoutMs = 0, identities, requestReason = false }) => {
    const upstreamAuthorization = new WeakMap<FastifyRequest, string>();

    app.addHook('onRequest', (request, _reply, done) => {
      const length = request.headers['content-length'];
      if (length !== undefined) {
        const bytes = Number(length);
        request.kvp.requestBytes = bytes;
        if (bytes > bodyLimitBytes) {
          done(bodyTooLarge(bodyLimitBytes));
          return;
        }
      }
      const subject = request.kvp.subject;
      const team = identities === undefined || subject === undefined ? undefined : identities.serviceAccountFor(subject);
      if (identities !== undefined && team !== undefined) {
        // The team's identity or nothing: never the proxy's own instead (fail closed).
        request.kvp.upstreamIdentity = team;
        const teamAuthorization = identities.authorization(team);
        const use = (value: string | undefined): void => {
          if (value === undefined) {
            done(identityUnavailable());
            return;
          }
          upstreamAuthorization.set(request, value);
          done();
        };
        if (typeof teamAuthorization === 'object') teamAuthorization.then(use, () => done(identityUnavailable()));
        else use(teamAuthorization);
        return;
      }
      const authorization = credential.authorization();
      if (authorization === undefined) {
        // Fail closed: without the proxy's own credential nothing is forwarded (and never the caller's).
        done(
          new ProxyError('ERR_FORWARD_CREDENTIAL_UNAVAILABLE', 'UNAVAILABLE', 'upstream credential unavailable', {
            reason: 'credential-unavailable',
          }),
        );
        return;
      }
      upstreamAuthorization.set(request, authorization);
      done();
    });

    // A Content-Length body is bounded by the check above; only chunked bodies need counting.
    app.addHook('preParsing', (request, _reply, payload, done) => {
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- a stream typed by its interface
      done(null, watchBodyProgress(request, limitChunkedBody(request, payload, bodyLimitBytes), bodyIdleTimeoutMs) as typeof payload);
    });

    const forward = (request: FastifyRequest, reply: FastifyReply): void => {
      const origin = request.kvp.upstreamBase as string;
      const headers = upstreamRequestHeaders(request.headers, upstreamAuthorization.get(request) as string);
      upstreamAuthorization.delete(request);
      // Google's records then name the request the audit record is keyed by (the caller's own x-goog-* headers were dropped).
      if (requestReason) headers['x-goog-request-reason'] = request.id;
      // The path and query go up exactly as the caller sent them: classification
      // already refused every path that is not a canonical Vertex AI method.
      dispatchUpstream(dispatcher, request, reply, origin, headers);
    };

    // @fastify/http-proxy owns the routes and leaves request bodies as streams
    // (its pass-through content-type parser). Its `handler` hook replaces
    // reply-from with the undici dispatch above: reply-from re-parses and
    // re-serializes every URL and buffers nothing we need, and its built-in
    // undici options would turn upstream TLS verification off.
    await app.register(proxy, {
      upstream: '',
      httpMethods: FORWARDED_METHODS,
      replyOptions: { getUpstream: (request: FastifyRequest) => request.kvp.upstreamBase as string },
      handler: forward,
    } as never);
  },
  { name: 'kvp-forward', fastify: '5.x', dependencies: ['kvp-authorize'] },
);
