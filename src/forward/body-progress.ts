/**
 * The body-progress timeout, for every route family that forwards bodies: a
 * request body from which nothing arrives for `server.bodyIdleTimeout` is cut
 * with 408, and the upstream request it was feeding is aborted (its body
 * stream ends in error, which makes the forwarder abandon the upstream call).
 * Without it, a caller could open many uploads, send one chunk each and stall,
 * holding upstream connections for up to `server.requestTimeout`.
 *
 * Progress is what arrives on the caller's socket, not what the upstream has
 * taken: a body waiting for a slow upstream (bytes buffered on our side) is not
 * idle. Bodies already complete when the pipeline reaches this step (small
 * bodies that came with the headers) cost nothing: no stream, no timer.
 * A body read whole (`readBody` with `idleMs`, the inspect step) is watched
 * by the read itself: one timer, no pass-through stream.
 *
 * @module
 * @returns ERR_REQUEST_TIMEOUT (408) on the body stream and in `request.kvp.failure`
 */
import { PassThrough } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';

export const BODY_IDLE_REASON = 'body-idle-timeout';

export function bodyIdle(idleMs: number): ProxyError {
  return new ProxyError('ERR_REQUEST_TIMEOUT', `No part of the request body arrived for ${idleMs / 1000}s; the request was cut.`, {
    reason: BODY_IDLE_REASON,
    // The rest of the body may still come: the connection cannot carry another request.
    headers: { connection: 'close' },
  });
}

/**
 * Whether a body-progress timeout of `idleMs` has anything to watch: it is on,
 * and the request declares a body that has not arrived whole yet.
 */
export function bodyStillToCome(request: Pick<FastifyRequest, 'raw' | 'headers'>, idleMs: number): boolean {
  return (
    idleMs !== 0 &&
    !request.raw.complete &&
    (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined)
  );
}

/**
 * A `preParsing` hook's answer: hands `done` the body stream to forward
 * ({@link watchBodyProgress}), looking at a body still to come once more after
 * the HTTP parser has finished the read it is working on. Node emits a
 * request when its headers end, before the parser reaches the body bytes of
 * the same read, and the steps before this hook run in that emit (the parser
 * calls into JavaScript per event, so even the next tick comes before the
 * body). Here nearly every small body still looked unfinished, and each cost a
 * pass-through stream, an interval timer and their closures: at a modest
 * rate enough garbage to be promoted and collected by full GCs. `setImmediate`
 * runs once the event loop has handled that read.
 */
export function handOnBody(
  request: FastifyRequest,
  payload: NodeJS.ReadableStream,
  idleMs: number,
  done: (error: null, body: NodeJS.ReadableStream) => void,
): void {
  if (!bodyStillToCome(request, idleMs)) {
    done(null, payload);
    return;
  }
  setImmediate(() => {
    done(null, watchBodyProgress(request, payload, idleMs));
  });
}

/**
 * The body stream to hand on: the payload itself when nothing more is to
 * come (or the timeout is off), else the payload through a pass-through that
 * fails once the caller has sent nothing for `idleMs`.
 */
export function watchBodyProgress(request: FastifyRequest, payload: NodeJS.ReadableStream, idleMs: number): NodeJS.ReadableStream {
  if (!bodyStillToCome(request, idleMs)) return payload;
  const raw = request.raw;
  const socket = raw.socket;
  const out = new PassThrough();
  // An error raised before the forwarder listens must not be an unhandled 'error' event.
  out.on('error', () => undefined);
  let seen = socket.bytesRead;
  let lastProgressAt = Date.now();
  // Checked four times per period, so a stall is cut between 1 and 1.25 periods after the last byte.
  const timer = setInterval(
    () => {
      if (raw.complete || out.destroyed) {
        stop();
        return;
      }
      const now = socket.bytesRead;
      // Bytes buffered on our side mean the consumer is slow, not the caller.
      if (now !== seen || raw.readableLength > 0 || socket.readableLength > 0 || out.writableLength > 0) {
        seen = now;
        lastProgressAt = Date.now();
        return;
      }
      if (Date.now() - lastProgressAt < idleMs) return;
      stop();
      const error = bodyIdle(idleMs);
      request.kvp.failure ??= error;
      payload.unpipe(out);
      out.destroy(error);
    },
    Math.max(10, Math.floor(idleMs / 4)),
  );
  timer.unref();
  function stop(): void {
    clearInterval(timer);
  }
  out.once('end', stop).once('close', stop);
  raw.once('close', stop);
  // pipe() does not carry errors: a body limit refusal upstream of us must still end this stream.
  payload.once('error', (error: Error) => {
    stop();
    out.destroy(error);
  });
  return payload.pipe(out);
}
