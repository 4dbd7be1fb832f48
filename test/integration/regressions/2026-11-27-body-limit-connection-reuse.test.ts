/**
 * Availability regression: a chunked body cut off at the body limit (413)
 * left the rest of the body unread on a keep-alive connection. The caller's
 * next request on that connection then waited forever (found when a 44 KB
 * predict after a chunked 413 hung in the outbound tests). A 413 now closes
 * the connection, for declared-length bodies too (otherwise the server reads
 * and discards whatever size the caller declared).
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkedBody, PREDICT_PATH, startWorld, type World } from '../../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => {
  await world?.close();
});

/** Everything the server sends until it closes the connection (or `ms` pass). */
function readUntilClosed(socket: Socket, ms: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, ms);
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.on('error', () => undefined);
  });
}

async function open(): Promise<Socket> {
  const socket = connect(world.proxy.dataPort, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return socket;
}

describe('a 413 does not leave the connection stuck', () => {
  it('a chunked body over the limit gets 413 with Connection: close, and the server closes the connection', async () => {
    const socket = await open();
    const done = readUntilClosed(socket, 10_000);
    socket.write(
      `POST ${PREDICT_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${world.token()}\r\nContent-Type: ` +
        `application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    const chunk = 'x'.repeat(256 * 1024);
    // 1.5 MiB against the 1 MiB limit, and the caller keeps the connection open.
    for (let i = 0; i < 6; i++) socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    const { text, closed } = await done;
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text.toLowerCase()).toContain('connection: close');
    expect(closed).toBe(true);
  });

  it('a declared Content-Length over the limit gets 413 with Connection: close before the body is read', async () => {
    const socket = await open();
    const done = readUntilClosed(socket, 10_000);
    socket.write(
      `POST ${PREDICT_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${world.token()}\r\nContent-Type: ` +
        `application/json\r\nContent-Length: ${10 * 1024 * 1024 * 1024}\r\n\r\n{`,
    );
    const { text, closed } = await done;
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text.toLowerCase()).toContain('connection: close');
    expect(closed).toBe(true);
  });

  it('a fetch client that got a chunked 413 can go on with larger requests', async () => {
    const body = chunkedBody(Array.from({ length: 6 }, () => new Uint8Array(256 * 1024)));
    expect((await world.call(PREDICT_PATH, { method: 'POST', body, duplex: 'half' })).status).toBe(413);
    const instances = Array.from({ length: 1100 }, (_, i) => ({ feature: i, text: `instance-${i}` }));
    for (let i = 0; i < 3; i++) {
      const response = await world.call(PREDICT_PATH, { body: JSON.stringify({ instances }), signal: AbortSignal.timeout(10_000) });
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
  });
});
