import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { handOnBody } from './body-progress.js';

/** What the hook reads of a request: the parser's `complete`, the socket's progress, the declared body. */
function fakeRequest(complete: boolean): FastifyRequest & { raw: { complete: boolean } } {
  const raw = Object.assign(new PassThrough(), { complete, socket: { bytesRead: 0, readableLength: 0 } });
  return { raw, headers: { 'content-length': '5' }, kvp: {} } as unknown as FastifyRequest & { raw: { complete: boolean } };
}

function handedOn(request: FastifyRequest, payload: NodeJS.ReadableStream, idleMs: number): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve) => {
    handOnBody(request, payload, idleMs, (_error, body) => {
      resolve(body);
    });
  });
}

describe('handOnBody', () => {
  it('hands on a body that is already whole as it is, at once', () => {
    const payload = new PassThrough();
    let body: NodeJS.ReadableStream | undefined;
    handOnBody(fakeRequest(true), payload, 30_000, (_error, b) => (body = b));
    expect(body).toBe(payload);
  });

  it('hands on as it is a body the parser delivers right after the hook (the read of its headers): no pass-through, no timer', async () => {
    const request = fakeRequest(false);
    const payload = new PassThrough();
    const body = handedOn(request, payload, 30_000);
    // The HTTP parser reaches the body bytes of the read once the request's emit (and the hooks run in it) returned.
    request.raw.complete = true;
    expect(await body).toBe(payload);
  });

  it('watches a body still to come once the read is handled', async () => {
    const request = fakeRequest(false);
    const payload = new PassThrough();
    const body = await handedOn(request, payload, 30_000);
    expect(body).not.toBe(payload);
    // Ends the watch (its timer stops with the stream).
    (request.raw as unknown as PassThrough).destroy();
    payload.end();
  });

  it('hands on the payload when the timeout is off', async () => {
    const payload = new PassThrough();
    expect(await handedOn(fakeRequest(false), payload, 0)).toBe(payload);
  });

  // The premise of the second look, on a real socket: a small request written in one piece is not complete when its
  // request event is emitted, nor on the next tick (the parser calls into JavaScript per event), and is complete once the
  // event loop has handled the read (setImmediate).
  it("node:http delivers a small body of the headers' read after the request event, before setImmediate", async () => {
    const seen: Array<{ inEmit: boolean; nextTick: boolean; immediate: boolean }> = [];
    const server = createServer((req: IncomingMessage, res) => {
      const inEmit = req.complete;
      let nextTick: boolean | undefined;
      process.nextTick(() => (nextTick = req.complete));
      setImmediate(() => {
        seen.push({ inEmit, nextTick: nextTick ?? true, immediate: req.complete });
        req.resume();
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'content-length': '5' } }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        // One write: headers and body in the same segment.
        req.end('hello');
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(seen).toEqual([{ inEmit: false, nextTick: false, immediate: true }]);
  });
});
