/**
 * Fault: the cluster issuer's discovery and JWKS endpoints fail (503).
 * Tokens signed by keys already known keep working — new tokens too, not
 * only cached ones — because the last good key set is kept; a token signed
 * by a key the proxy has not seen yet cannot be checked and is refused with
 * 503 (the issuer is down: not the caller's fault, never a pass); when the
 * issuer is back, the new key is picked up and its tokens work.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { until } from '../../helpers/poll.js';
import { PREDICT_PATH, startWorld, type World } from '../../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

let world: World;
beforeAll(async () => {
  world = await startWorld({ config: (d) => ({ ...d, authentication: { jwks: { refreshInterval: '1s', minRefreshInterval: '1s' } } }) });
});
afterAll(async () => {
  await world?.close();
});

describe('the issuer JWKS is down', () => {
  it('known keys keep working, unknown keys are 503, and new keys are picked up when it returns', async () => {
    expect((await world.call(PREDICT_PATH, { body: '{}' })).status).toBe(200);
    world.issuer.setJwksAvailable(false);
    await until(
      () => world.proxy.lines.some((l) => l.message === 'issuer key set fetch failed; keeping the last good keys') || undefined,
      'a failed refresh',
    );

    // Fresh tokens (never cached) signed by the known key still verify.
    for (let i = 0; i < 3; i++)
      expect((await world.call(PREDICT_PATH, { token: world.token('ml', `fresh-${i}`), body: '{}' })).status).toBe(200);

    // A key rotated in while the issuer is unreachable cannot be fetched: 503, nothing forwarded.
    await world.issuer.rotateKey();
    const forwarded = world.vertex.requests.length;
    const unknown = await until(async () => {
      const response = await world.call(PREDICT_PATH, { token: world.token('ml', 'rotated'), body: '{}' });
      return response.status === 503 ? response : undefined;
    }, 'a 503 for the unknown key');
    expect(((await unknown.json()) as { error: { status: string } }).error.status).toBe('UNAVAILABLE');
    expect(world.vertex.requests.length).toBe(forwarded);
    const readyz = (await (await fetch(`${world.proxy.adminUrl}/readyz`)).json()) as { checks: Array<{ name: string; ready: boolean }> };
    // The last good keys still count as loaded.
    expect(readyz.checks.find((c) => c.name === 'issuer:cluster')?.ready).toBe(true);

    world.issuer.setJwksAvailable(true);
    await until(
      async () => ((await world.call(PREDICT_PATH, { token: world.token('ml', 'rotated'), body: '{}' })).status === 200 ? true : undefined),
      'the new key to be picked up',
    );
  });
});
