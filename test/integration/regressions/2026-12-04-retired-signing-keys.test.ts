/**
 * Security regression (attacker review, case 6, low): a token verified
 * before its signing key was removed from the issuer's JWKS kept working
 * from the verified-token cache until its own `exp` (up to
 * `maxTokenLifetime`, 48 h by default). An issuer removes a key when it may
 * be compromised; tokens that key signed must stop working with it.
 *
 * Now the next successful key-set refresh evicts every cached token whose
 * `kid` left the set: the token is verified again, its key is unknown, 401.
 * Tokens signed by keys still published keep working from the cache.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { until } from '../../helpers/poll.js';
import { PREDICT_PATH, startWorld, type World } from '../../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

let world: World;
beforeAll(async () => {
  world = await startWorld({
    config: (d) => ({ ...d, authentication: { jwks: { refreshInterval: '1s', minRefreshInterval: '1s' } } }),
  });
});
afterAll(async () => {
  await world?.close();
});

describe('tokens signed by a key the issuer withdrew', () => {
  it('are evicted at the next successful refresh and refused; tokens of the remaining key keep working', async () => {
    const oldToken = world.token('ml', 'trainer');
    const oldKid = world.issuer.currentKey.kid;
    expect((await world.call(PREDICT_PATH, { token: oldToken, body: '{}' })).status).toBe(200);

    // Rotation: both keys published. The old token is still good (it is in the cache, and its key is listed).
    await world.issuer.rotateKey();
    const newToken = world.token('ml', 'trainer');
    expect(world.issuer.currentKey.kid).not.toBe(oldKid);
    await until(
      async () => (await world.call(PREDICT_PATH, { token: newToken, body: '{}' })).status === 200,
      'the new key to be picked up',
    );
    expect((await world.call(PREDICT_PATH, { token: oldToken, body: '{}' })).status).toBe(200);

    // Retirement: the old key leaves the JWKS.
    world.issuer.retireOldKeys();
    const line = await until(
      () => world.proxy.lines.find((l) => l.message === 'issuer withdrew signing keys; tokens they signed were evicted from the cache'),
      'the refresh that sees the key gone',
    );
    expect(line).toMatchObject({ issuer: 'cluster', removedKeys: 1 });
    expect(line.evictedTokens as number).toBeGreaterThanOrEqual(1);

    const refused = await world.call(PREDICT_PATH, { token: oldToken, body: '{}' });
    expect(refused.status).toBe(401);
    const body = (await refused.json()) as { error: { details: Array<{ requestId?: string }> } };
    const requestId = body.error.details.find((d) => d.requestId !== undefined)?.requestId;
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.requestId === requestId);
    expect(entry.kubeVertexProxy).toMatchObject({ decision: 'deny', status: 401, reason: 'unknown-signing-key' });

    // The remaining key's token is unaffected.
    expect((await world.call(PREDICT_PATH, { token: newToken, body: '{}' })).status).toBe(200);
  });
});
