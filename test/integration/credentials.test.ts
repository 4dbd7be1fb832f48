/**
 * The proxy's own Google credential: readiness waits for the first token; no
 * token, no forwarding (503), and never the caller's token instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREDICT_PATH, startWorld, type World } from '../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld({ ready: false });
});
afterAll(async () => {
  await world?.close();
});

const body = JSON.stringify({ instances: [{}] });

describe('the proxy credential', () => {
  it('is not ready, and forwards nothing, until the metadata server hands out a token', async () => {
    world.metadata.setAvailable(false);
    // Keys load, but no Google token: readiness must say so.
    await new Promise((r) => setTimeout(r, 500));
    const readyz = await fetch(`${world.proxy.adminUrl}/readyz`);
    expect(readyz.status).toBe(503);
    const detail = (await readyz.json()) as { checks: Array<{ name: string; ready: boolean }> };
    expect(detail.checks.find((c) => c.name === 'google-credential')?.ready).toBe(false);

    const before = world.vertex.requests.length;
    const response = await world.call(PREDICT_PATH, { body });
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: { status: string } }).error.status).toBe('UNAVAILABLE');
    expect(world.vertex.requests.length).toBe(before);

    world.metadata.setAvailable(true);
    await world.proxy.waitReady(15_000);
    expect((await world.call(PREDICT_PATH, { body })).status).toBe(200);
  });
});
