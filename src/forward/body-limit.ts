/**
 * Request body limits, for every route family that streams bodies through.
 * A body with Content-Length is refused before it is read; a chunked body is
 * counted as it streams and fails once it passes the limit.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_BODY_TOO_LARGE (413)
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';

export function bodyTooLarge(limit: number, where = ''): ProxyError {
  return new ProxyError('ERR_REQUEST_BODY_TOO_LARGE', 'INVALID_ARGUMENT', `Request body exceeds the limit of ${limit} bytes${where}.`, {
    httpStatus: 413,
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
export function limitChunkedBody(request: FastifyRequest, payload: NodeJS.ReadableStream, limit: number, where = ''): NodeJS.ReadableStream {
  if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] === undefined) return payload;
  const limiter = new BodyLimiter(limit, where, request);
  // The refusal is on request.kvp and the forwarder sees the stream end in error;
  // without a listener of our own, an error raised before the forwarder attaches
  // one would be an unhandled 'error' event and take the process down.
  limiter.on('error', () => undefined);
  return payload.pipe(limiter);
}
