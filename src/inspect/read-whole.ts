/**
 * Reads a request body into one buffer, bounded: a body that passes `limit`
 * fails with 413 as soon as it does (not after it was read), and a body that
 * ends early fails with 499.
 *
 * @module
 */
import type { Readable } from 'node:stream';
import { ProxyError } from '../errors.js';
import { bodyTooLarge } from '../forward/body-limit.js';

export function readWhole(body: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  const stream = body as Readable;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let seen = 0;
    let settled = false;
    const settle = (error: Error | undefined, bytes?: Buffer): void => {
      if (settled) return;
      settled = true;
      // 'error' stays attached: a late error on the caller's socket must not become an unhandled 'error' event.
      stream.off('data', onData).off('end', onEnd).off('close', onClose);
      if (error !== undefined) reject(error);
      else resolve(bytes as Buffer);
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > limit) {
        // Read no further: the refusal closes the connection (bodyTooLarge says `Connection: close`).
        stream.pause();
        settle(bodyTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => settle(undefined, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, seen));
    const onError = (error: Error): void => settle(error instanceof ProxyError ? error : incomplete(error));
    const onClose = (): void => settle(incomplete(undefined));
    stream.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
    stream.resume();
  });
}

function incomplete(cause: Error | undefined): ProxyError {
  return new ProxyError('ERR_REQUEST_BODY_INCOMPLETE', 'CANCELLED', 'The request body ended before its declared length.', { cause, reason: 'body-incomplete' });
}
