/**
 * Request bodies, for every route family that forwards them: limits (a body
 * with Content-Length is refused before it is read; a chunked body is
 * counted as it streams and fails once it passes the limit), and small
 * bodies read whole before they are forwarded.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_BODY_TOO_LARGE (413); returns ERR_REQUEST_BODY_INCOMPLETE (499)
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';
import { bodyIdle } from './body-progress.js';

export function bodyTooLarge(limit: number, where = ''): ProxyError {
  return new ProxyError('ERR_REQUEST_BODY_TOO_LARGE', `Request body exceeds the limit of ${limit} bytes${where}.`, {
    reason: 'body-too-large',
    // The rest of the body is still on the connection, unread: keeping it
    // alive would make the next request wait behind it forever (a chunked
    // body) or make us read and discard whatever size was declared.
    headers: { connection: 'close' },
  });
}

/** Counts a chunked request body and fails it once it passes the limit. */
class BodyLimiter extends Transform {
  #seen = 0;
  readonly #limit: number;
  readonly #where: string;
  readonly #request: FastifyRequest;
  constructor(limit: number, where: string, request: FastifyRequest) {
    super();
    this.#limit = limit;
    this.#where = where;
    this.#request = request;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    this.#request.kvp.requestBytes = this.#seen;
    if (this.#seen > this.#limit) {
      const error = bodyTooLarge(this.#limit, this.#where);
      this.#request.kvp.failure = error;
      callback(error);
      return;
    }
    callback(null, chunk);
  }
}

/**
 * The body stream to forward: the payload itself when its length is declared
 * (the caller checked it), else the payload through a counting limiter.
 */
export function limitChunkedBody(
  request: FastifyRequest,
  payload: NodeJS.ReadableStream,
  limit: number,
  where = '',
): NodeJS.ReadableStream {
  if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] === undefined) return payload;
  const limiter = new BodyLimiter(limit, where, request);
  // The refusal is on request.kvp and the forwarder sees the stream end in error;
  // without a listener of our own, an error raised before the forwarder attaches
  // one would be an unhandled 'error' event and take the process down.
  limiter.on('error', () => undefined);
  return payload.pipe(limiter);
}

/**
 * Bodies that declare at most this many bytes are read whole and sent as one
 * buffer; larger and chunked ones stream. Measured (bench `*-rate`
 * scenarios, `--trace-gc`): handing undici the caller's body *stream* makes
 * each request's objects survive young-generation collections, so V8 grows
 * the young generation to ~40 MB and every scavenge copies ~10 MB, a 10–30 ms
 * pause at 1,000 req/s; with buffers scavenges stay under 1 ms. Vertex AI
 * requests are small JSON; the memory this holds is bounded by this size
 * times the requests in flight.
 */
export const BUFFERED_BODY_MAX_BYTES = 64 * 1024;

/** The declared length of a body small enough to read whole (0 … {@link BUFFERED_BODY_MAX_BYTES} bytes); undefined: stream it. */
export function smallDeclaredBody(request: Pick<FastifyRequest, 'headers'>): number | undefined {
  if (request.headers['transfer-encoding'] !== undefined) return undefined;
  const declared = Number(request.headers['content-length'] ?? Number.NaN);
  return declared >= 0 && declared <= BUFFERED_BODY_MAX_BYTES ? declared : undefined;
}

const bodyIncomplete = (cause: Error | undefined): ProxyError =>
  new ProxyError('ERR_REQUEST_BODY_INCOMPLETE', 'The request body ended before its declared length.', {
    cause,
    reason: 'body-incomplete',
  });

/**
 * Reads a body of known, small length, then hands the bytes to `forward`.
 * When the caller's body fails or stops short (a client that went away),
 * nothing is forwarded: the caller, if still there, gets the error, and the
 * audit record names it.
 */
export function readSmallBodyThen(
  request: Pick<FastifyRequest, 'kvp'>,
  reply: { readonly sent: boolean; readonly raw: { readonly destroyed: boolean }; send(payload: unknown): unknown },
  body: Readable,
  forward: (bytes: Buffer) => void,
): void {
  readBody(body, Number.POSITIVE_INFINITY, (error, bytes) => {
    if (error === undefined && bytes !== undefined) {
      forward(bytes);
      return;
    }
    const failure = request.kvp.failure ?? error ?? bodyIncomplete(undefined);
    if (!reply.sent && !reply.raw.destroyed) reply.send(failure);
    else request.kvp.failure = failure;
  });
}

/**
 * Reads a body whole into one buffer, for every step that needs it whole (the
 * forwarder's small bodies, the inspect step's bodies). `done` runs once:
 * with the bytes, or with the refusal that ended the body — 413 as soon as it
 * passes `limit` (no further byte is read), 499 when it broke off early, 408
 * (`bodyIdle`) when `idleMs` is set and nothing arrived for that long (the
 * body-progress timeout of body-progress.ts, without its pass-through stream:
 * this read takes every byte as it arrives, so a byte read is progress).
 */
export function readBody(
  body: NodeJS.ReadableStream,
  limit: number,
  done: (error: ProxyError | undefined, bytes?: Buffer) => void,
  idleMs = 0,
): void {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- the request's Readable, typed by its interface
  const stream = body as Readable;
  const chunks: Buffer[] = [];
  let seen = 0;
  let settled = false;
  let idle: NodeJS.Timeout | undefined;
  const settle = (error: ProxyError | undefined, bytes?: Buffer) => {
    if (settled) return;
    settled = true;
    if (idle !== undefined) clearTimeout(idle);
    // 'error' stays attached: a late error on the caller's socket must not become an unhandled 'error' event.
    stream.off('data', onData).off('end', onEnd).off('close', onClose);
    done(error, bytes);
  };
  const onData = (chunk: Buffer) => {
    idle?.refresh();
    seen += chunk.length;
    if (seen > limit) {
      // Read no further: the refusal closes the connection (bodyTooLarge says `Connection: close`).
      stream.pause();
      settle(bodyTooLarge(limit));
      return;
    }
    chunks.push(chunk);
  };
  const onEnd = () => settle(undefined, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, seen));
  const onError = (error: Error) => settle(error instanceof ProxyError ? error : bodyIncomplete(error));
  const onClose = () => settle(bodyIncomplete(new Error('request body closed before its end')));
  stream.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  if (idleMs > 0) {
    idle = setTimeout(() => {
      // Read no further: the 408 closes the connection (bodyIdle says `Connection: close`).
      stream.pause();
      settle(bodyIdle(idleMs));
    }, idleMs);
    idle.unref();
  }
  // The body may have been paused explicitly (backpressure upstream of us); a 'data' listener alone would not resume it.
  stream.resume();
}
