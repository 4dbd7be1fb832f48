/**
 * The one forwarding path: a vetted request goes to its upstream and the
 * answer streams back, for every route family (Vertex AI, callbacks). The
 * family decides where the request goes and with which headers (its own
 * header policy); everything else is here, the same for all: which body is
 * sent (the inspect step's bytes, a small body read whole, or the caller's
 * stream), timings and status in `request.kvp`, the client span, the
 * response's header policy, backpressure both ways, the usage tap, aborting
 * the upstream call when the caller goes away, and upstream failures mapped
 * to Google errors (upstream-errors.ts).
 *
 * It talks to undici's dispatcher directly: no URL parsing or re-serialising
 * per request, no intermediate response stream. Response bytes go from the
 * upstream socket's handler straight to the caller's socket. Responses whose
 * bytes a framework hook reads (`throughFramework`: long-running operations,
 * whose operation name the audit step takes from the JSON answer) go through
 * `reply.send(stream)` instead, so fastify's `onSend` hooks see them.
 *
 * Needs only {@link CallerRequest} and {@link CallerReply}, which fastify's
 * request and reply satisfy, so it is tested without fastify.
 *
 * @module
 * @throws nothing; answers ERR_FORWARD_CREDENTIAL_REJECTED (502), ERR_FORWARD_UPSTREAM_TIMEOUT (504),
 *   ERR_FORWARD_UPSTREAM_UNREACHABLE (502), ERR_REQUEST_BODY_TOO_LARGE (413), ERR_REQUEST_BODY_INCOMPLETE (499) through `reply.send`
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ProxyError } from '../errors.js';
import type { RequestContext } from '../request-context.js';
import type { UpstreamSpanStart } from '../tracing/attributes.js';
import type { TraceSpan } from '../tracing/tracing.js';
import type { UsageMeter } from '../usage/usage.js';
import { readSmallBodyThen, smallDeclaredBody } from './body-limit.js';
import { downstreamResponseHeaders } from './header-policy.js';
import { upstreamFailure } from './upstream-errors.js';

/** What the dispatcher reads of the caller's request (a fastify request has all of it). */
export interface CallerRequest {
  readonly kvp: RequestContext;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  /** The body as the content parser left it: a stream, or nothing. */
  readonly body: unknown;
  readonly raw: { readonly complete: boolean };
}

/** What the dispatcher does with the caller's reply (a fastify reply has all of it). */
export interface CallerReply {
  readonly raw: ServerResponse;
  readonly sent: boolean;
  code(statusCode: number): unknown;
  headers(values: OutgoingHttpHeaders): unknown;
  /** A ProxyError becomes a Google error answer; a stream is piped to the caller. */
  send(payload: unknown): unknown;
  /** The dispatcher writes `raw` itself from now on. */
  hijack(): unknown;
}

/** One upstream call, as the route family decided it. */
export interface UpstreamCall {
  /** `http(s)://host[:port]`. */
  readonly origin: string;
  /** Path and query, exactly as they go upstream. */
  readonly path: string;
  /** The request headers after the family's header policy; `host` and body framing are set here. */
  readonly headers: OutgoingHttpHeaders;
  /** Per-request limit on waiting for the response headers and between body chunks; absent: the pool's. */
  readonly timeoutMs?: number | undefined;
  /** Names the upstream in a failure's (log-only) message, e.g. `callback upstream for /callbacks/x`. */
  readonly upstreamName?: string | undefined;
  /**
   * The upstream authenticates the proxy's own credential (Vertex AI): its 401
   * is the proxy's failure (502), never passed on, since it would tell the
   * caller that its own token is bad.
   */
  readonly ownCredential?: boolean | undefined;
  /** Send the response through `reply.send`, so the framework's `onSend` hooks see its bytes. */
  readonly throughFramework?: boolean | undefined;
  /** The client span's name and attributes (asked only when the request's trace is sampled). */
  readonly span?: ((host: string) => UpstreamSpanStart) | undefined;
  /** The usage tap: a meter for a response that carries usage, or undefined (asked once, at the response's start). */
  readonly meter?: ((statusCode: number, headers: IncomingHttpHeaders) => UsageMeter | undefined) | undefined;
}

/** Response chunks of one read are joined into one write up to this size (see UpstreamExchange #flush). */
const COALESCE_MAX_BYTES = 64 * 1024;

/** `host` for an upstream origin; few distinct origins (one per location or route), so parsed once each. */
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
 * Sends one request (already vetted, headers already filtered) upstream and
 * streams the answer back to the caller. Never throws: every failure ends as
 * an answer to the caller (or, once the answer started, as its early end and
 * `request.kvp.upstreamStreamError`).
 */
export function dispatchUpstream(dispatcher: Dispatcher, request: CallerRequest, reply: CallerReply, call: UpstreamCall): void {
  const headers = call.headers;
  headers.host = hostOf(call.origin);
  const inspected = request.kvp.forwardBody;
  if (inspected !== undefined) {
    // The inspect step read the body whole (and may have rewritten it, where the config says so).
    delete headers['transfer-encoding'];
    headers['content-length'] = String(inspected.length);
    send(dispatcher, request, reply, call, inspected);
    return;
  }
  const body = request.body instanceof Readable ? request.body : null;
  // A small body goes whole (see BUFFERED_BODY_MAX_BYTES): one write upstream, no stream kept alive meanwhile.
  if (body !== null && smallDeclaredBody(request) !== undefined) {
    readSmallBodyThen(request, reply, body, (bytes) => {
      send(dispatcher, request, reply, call, bytes);
    });
    return;
  }
  send(dispatcher, request, reply, call, body);
}

function send(
  dispatcher: Dispatcher,
  request: CallerRequest,
  reply: CallerReply,
  call: UpstreamCall,
  body: Readable | Buffer | null,
): void {
  const headers = call.headers;
  // Without a body the length is undici's to set; a caller's stray Content-Length must not desynchronise it.
  if (body === null) delete headers['content-length'];
  request.kvp.upstreamStartedAt = process.hrtime.bigint();
  const parent = request.kvp.span;
  if (parent !== undefined) traceUpstream(request.kvp, parent, call);
  const options: Dispatcher.DispatchOptions = {
    origin: call.origin,
    path: call.path,
    method: request.method,
    headers: headers as Record<string, string>,
    body,
  };
  if (call.timeoutMs !== undefined) {
    options.headersTimeout = call.timeoutMs;
    options.bodyTimeout = call.timeoutMs;
  }
  dispatcher.dispatch(options, new UpstreamExchange(request, reply, call));
}

/** The client span of the upstream call (ended with the response), named as the parent in the `traceparent` sent up. */
function traceUpstream(ctx: RequestContext, parent: TraceSpan, call: UpstreamCall): void {
  let span = parent;
  if (parent.sampled && call.span !== undefined) {
    const { name, attributes } = call.span(call.headers.host as string);
    span = parent.child(name, 'client', attributes);
  }
  ctx.upstreamSpan = span;
  span.inject(call.headers);
}

/**
 * One forwarded request's upstream side (undici's handler interface): the
 * response is written to the caller as it arrives; a failure before the
 * response started becomes a Google error, a failure after it ends the
 * caller's response early.
 */
class UpstreamExchange implements Dispatcher.DispatchHandler {
  readonly #request: CallerRequest;
  readonly #reply: CallerReply;
  readonly #call: UpstreamCall;
  readonly #res: ServerResponse;
  #controller: Dispatcher.DispatchController | undefined;
  /** Set on the framework path: the stream handed to `reply.send`. */
  #body: Readable | undefined;
  #started = false;
  #finished = false;
  /** Reads token usage from the bytes as they pass, for responses that carry it. */
  #meter: UsageMeter | undefined;
  /** Response chunks of the current read, not yet written (see #flush). */
  #pending: Buffer[] | undefined;
  #pendingBytes = 0;
  /** Waiting for the caller's socket to drain. */
  #paused = false;

  constructor(request: CallerRequest, reply: CallerReply, call: UpstreamCall) {
    this.#request = request;
    this.#reply = reply;
    this.#call = call;
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
    if (statusCode === 401 && this.#call.ownCredential === true) {
      this.#finished = true;
      controller.abort(new Error('upstream rejected the proxy credential'));
      this.#reply.send(
        new ProxyError('ERR_FORWARD_CREDENTIAL_REJECTED', 'upstream rejected the proxy credential', {
          reason: 'upstream-rejected-credential',
        }),
      );
      return;
    }
    this.#started = true;
    const requestId = headers['x-goog-request-id'];
    if (typeof requestId === 'string' && requestId.length <= 256) ctx.upstreamRequestId = requestId;
    const out = downstreamResponseHeaders(headers);
    // The upstream answered before the caller's body was read to its end: the
    // rest of it is still on the connection, which cannot carry another request.
    if (!this.#request.raw.complete) out.connection = 'close';
    if (this.#call.meter !== undefined) this.#meter = this.#call.meter(statusCode, headers);
    if (this.#call.throughFramework === true) {
      this.#body = new Readable({
        read: () => {
          controller.resume();
        },
      });
      this.#body.once('error', (error: Error) => {
        ctx.upstreamStreamError = error.message;
      });
      this.#reply.code(statusCode);
      this.#reply.headers(out);
      this.#reply.send(this.#body);
      return;
    }
    this.#reply.hijack();
    this.#res.writeHead(statusCode, out as Record<string, string | string[]>);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#body !== undefined) {
      if (!this.#body.push(chunk)) controller.pause();
      this.#meter?.push(chunk);
      return;
    }
    this.#controller = controller;
    if (this.#pending === undefined) {
      this.#pending = [chunk];
      this.#pendingBytes = chunk.length;
      queueMicrotask(this.#flush);
    } else {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
    }
  }

  /**
   * Writes what arrived in one read of the upstream socket as one write to
   * the caller. undici hands over each HTTP chunk on its own, and a streamed
   * answer (server-sent events) is one small chunk per event: written one by
   * one, each would cost a write call, its own chunk framing and its own
   * pieces in the socket's writev. The flush runs as a microtask, when undici
   * is done with the read, so no byte waits longer than it did before: Node
   * would only have sent them at the next tick anyway.
   */
  readonly #flush = (): void => {
    const chunks = this.#pending;
    if (chunks === undefined) return;
    this.#pending = undefined;
    if (this.#res.destroyed) return;
    let writable = true;
    if (chunks.length === 1 || this.#pendingBytes > COALESCE_MAX_BYTES) {
      // Large pieces are written as they are: joining them would copy bytes to save little.
      for (const chunk of chunks) {
        writable = this.#res.write(chunk);
        this.#meter?.push(chunk);
      }
    } else {
      const joined = Buffer.concat(chunks, this.#pendingBytes);
      writable = this.#res.write(joined);
      // After the write: the caller's bytes never wait for the accounting.
      this.#meter?.push(joined);
    }
    if (!writable && !this.#paused) {
      this.#paused = true;
      this.#controller?.pause();
      this.#res.once('drain', this.#resume);
    }
  };

  readonly #resume = (): void => {
    this.#paused = false;
    this.#controller?.resume();
  };

  onResponseEnd(): void {
    this.#flush();
    this.#finished = true;
    this.#finishUsage();
    if (this.#body !== undefined) this.#body.push(null);
    else if (this.#started) this.#res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#finished) return;
    this.#finished = true;
    if (!this.#started) {
      this.#reply.send(upstreamFailure(this.#request, error, this.#call.upstreamName));
      return;
    }
    // The response already started: all that is left is to end it early and say why in the audit record.
    this.#flush();
    this.#request.kvp.upstreamStreamError = error.message;
    this.#finishUsage();
    if (this.#body !== undefined) this.#body.destroy(error);
    else this.#res.destroy();
  }

  #finishUsage(): void {
    if (this.#meter === undefined) return;
    this.#request.kvp.usage = this.#meter.finish();
    this.#meter = undefined;
  }
}
