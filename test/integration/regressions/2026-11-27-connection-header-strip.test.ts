/**
 * Security regression: a caller naming `authorization` (or the proxy's own
 * headers) in `Connection` must not be able to strip the proxy credential or
 * smuggle its own; hop-by-hop headers are removed before the proxy asserts.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREDICT_PATH, startWorld, type World } from '../../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => {
  await world?.close();
});

describe('Connection header abuse', () => {
  it('the upstream still receives the proxy credential and never the caller token', async () => {
    const token = world.token();
    const before = world.vertex.requests.length;
    // fetch() refuses to send Connection; use node:http directly.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${world.proxy.dataUrl}${PREDICT_PATH}`,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            connection: 'keep-alive, authorization, x-goog-api-client',
            'content-type': 'application/json',
            'x-goog-api-client': 'x',
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
    expect(status).toBe(200);
    const upstream = world.vertex.requests.slice(before)[0]!;
    expect(upstream.headers.authorization).toMatch(/^Bearer /);
    expect(upstream.headers.authorization).not.toContain(token);
    expect(world.metadata.issuedTokens).toContain((upstream.headers.authorization as string).slice('Bearer '.length));
  });
});
