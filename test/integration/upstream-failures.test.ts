/**
 * What the caller sees when Vertex AI fails: its own errors pass through,
 * connection failures are 502, timeouts 504, a rejected proxy credential 502 —
 * always in Google's error shape, never a stack trace.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREDICT_PATH, startWorld, type World } from '../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => {
  await world?.close();
});

const body = JSON.stringify({ instances: [{}] });

describe('upstream failures', () => {
  it('a Vertex AI 500 reaches the caller as Vertex AI sent it', async () => {
    world.vertex.failNext(500);
    const response = await world.call(PREDICT_PATH, { body });
    expect(response.status).toBe(500);
    const error = ((await response.json()) as { error: { status: string } }).error;
    expect(error.status).toBe('INTERNAL');
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.upstreamStatus === 500);
    expect(entry.kubeVertexProxy).toMatchObject({ decision: 'allow', status: 500 });
  });

  it('a Vertex AI that does not answer in time is 504 DEADLINE_EXCEEDED', async () => {
    world.vertex.hangNext();
    const response = await world.call(PREDICT_PATH, { body });
    expect(response.status).toBe(504);
    const error = ((await response.json()) as { error: { status: string; message: string } }).error;
    expect(error.status).toBe('DEADLINE_EXCEEDED');
    expect(error.message).not.toMatch(/UND_ERR|at .*\.js/);
    await world.proxy.waitForAudit((e) => e.kubeVertexProxy.reason === 'upstream-timeout');
  });

  it("a proxy credential rejected by Vertex AI is 502, not the caller's 401", async () => {
    world.vertex.failNext(401);
    const response = await world.call(PREDICT_PATH, { body });
    expect(response.status).toBe(502);
    expect(response.headers.get('www-authenticate')).toBeNull();
  });
});

describe('an unreachable upstream', () => {
  let closedWorld: World;
  beforeAll(async () => {
    // A port that was free a moment ago: connections are refused.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    closedWorld = await startWorld({
      config: (d) => ({ ...d, vertex: { ...(d.vertex as object), upstream: `http://127.0.0.1:${port}` } }),
    });
  });
  afterAll(async () => {
    await closedWorld?.close();
  });

  it('is 502 UNAVAILABLE with a generic message', async () => {
    const response = await closedWorld.call(PREDICT_PATH, { body });
    expect(response.status).toBe(502);
    const error = ((await response.json()) as { error: { status: string; message: string } }).error;
    expect(error.status).toBe('UNAVAILABLE');
    expect(error.message).not.toContain('ECONNREFUSED');
    const entry = await closedWorld.proxy.waitForAudit((e) => e.kubeVertexProxy.status === 502);
    expect(entry.kubeVertexProxy.reason).toMatch(/^upstream-unreachable/);
  });
});

describe('an upstream that accepts the connection but never completes the TLS handshake', () => {
  let silentWorld: World;
  const held: import('node:net').Socket[] = [];
  let silent: import('node:net').Server;
  beforeAll(async () => {
    // TCP accepted, not a byte of TLS back: undici's connect timeout (TCP + TLS) is what fires.
    silent = createServer((socket) => held.push(socket));
    const port = await new Promise<number>((resolve) =>
      silent.listen(0, '127.0.0.1', () => resolve((silent.address() as { port: number }).port)),
    );
    silentWorld = await startWorld({
      config: (d) => ({ ...d, vertex: { ...(d.vertex as object), upstream: `https://127.0.0.1:${port}`, timeouts: { connect: '500ms' } } }),
    });
  });
  afterAll(async () => {
    await silentWorld?.close();
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => silent?.close(resolve));
  });

  it('is a timeout: 504 DEADLINE_EXCEEDED, audited as upstream-timeout (not 502 unreachable)', async () => {
    const response = await silentWorld.call(PREDICT_PATH, { body });
    expect(response.status).toBe(504);
    const error = ((await response.json()) as { error: { status: string; message: string } }).error;
    expect(error.status).toBe('DEADLINE_EXCEEDED');
    expect(error.message).not.toMatch(/UND_ERR/);
    const entry = await silentWorld.proxy.waitForAudit((e) => e.kubeVertexProxy.status === 504);
    expect(entry.kubeVertexProxy.reason).toBe('upstream-timeout');
  });
});
