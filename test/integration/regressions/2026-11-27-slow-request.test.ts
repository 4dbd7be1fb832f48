/**
 * Availability regression (slowloris): fastify's default request timeout is
 * "none", so a client that declared a body and trickled it (or never sent it)
 * held its request, its connection and, since small bodies are read whole
 * before forwarding, up to 64 KiB of buffer for as long as it liked.
 * `server.requestTimeout` now bounds receiving a whole request: a slower
 * client gets 408 in Google's error shape, its connection is closed, and
 * nothing is forwarded. Protocol errors node raises before fastify sees a
 * request are answered in Google's shape too (they were fastify's own JSON).
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREDICT_PATH, startWorld, type World } from '../../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld({ config: (defaults) => ({ ...defaults, server: { ...(defaults.server as object), requestTimeout: '1s' } }) });
});
afterAll(async () => {
  await world?.close();
});

async function exchange(write: (socket: Socket) => void, ms: number): Promise<{ text: string; closed: boolean; elapsedMs: number }> {
  const socket = connect(world.proxy.dataPort, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const started = Date.now();
  return new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false, elapsedMs: Date.now() - started });
    }, ms);
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true, elapsedMs: Date.now() - started });
    });
    write(socket);
  });
}

function googleError(text: string): { code: number; status: string; details: Array<{ metadata?: Record<string, string> }> } {
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  return (JSON.parse(body) as { error: { code: number; status: string; details: Array<{ metadata?: Record<string, string> }> } }).error;
}

describe('a client too slow to send its request', () => {
  it("gets 408 in Google's error shape within the configured time, its connection closed, nothing forwarded", async () => {
    const before = world.vertex.requests.length;
    const token = world.token('ml', 'slowloris');
    const { text, closed, elapsedMs } = await exchange((socket) => {
      socket.write(
        `POST ${PREDICT_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: ` +
          `application/json\r\nContent-Length: 1000\r\n\r\n{"instances":[`,
      );
      // …and then nothing more, with the connection held open.
    }, 10_000);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toContain('Content-Type: application/json; charset=UTF-8');
    const error = googleError(text);
    expect(error).toMatchObject({ code: 408, status: 'DEADLINE_EXCEEDED' });
    expect(error.details[0]?.metadata?.['code']).toBe('ERR_REQUEST_TIMEOUT');
    expect(closed).toBe(true);
    // 1 s limit, checked every 250 ms; generous bound for a loaded machine.
    expect(elapsedMs).toBeLessThan(8_000);
    expect(world.vertex.requests.length).toBe(before);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:ml:slowloris');
    // Recorded and counted as what the caller received (408), not as 499 client-aborted.
    expect(entry.kubeVertexProxy).toMatchObject({ status: 408, reason: 'request-timeout', errorCode: 'ERR_REQUEST_TIMEOUT' });
    const metrics = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/kube_vertex_proxy_requests_total\{[^}]*code="408"[^}]*\} 1/);
  });

  it("a request that is not HTTP gets 400 in Google's error shape, not fastify's", async () => {
    const { text, closed } = await exchange((socket) => socket.write('BREW /pot HTCPCP/1.0\r\n\r\n'), 10_000);
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(googleError(text)).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
    expect(closed).toBe(true);
  });

  it("headers over node's limit get 431 in Google's error shape", async () => {
    const { text } = await exchange((socket) => socket.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 10_000);
    expect(text).toMatch(/^HTTP\/1\.1 431 /);
    expect(googleError(text).details[0]?.metadata?.['code']).toBe('ERR_REQUEST_HEADERS_TOO_LARGE');
  });
});
