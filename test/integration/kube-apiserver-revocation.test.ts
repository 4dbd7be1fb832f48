/**
 * Token revocation against a real kube-apiserver: TokenReview on and off,
 * and UID revocation with a service account deleted and recreated under the
 * same name and with a pod deleted. Tokens come from the TokenRequest API,
 * bound to real Pod objects; the API server itself decides TokenReviews.
 *
 * What a real server cannot be made to do on demand (answer TokenReviews
 * slowly, show which Accept header a LIST carried) stays in
 * kubernetes-revocation.test.ts against the stand-in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_AUDIENCE, START_TIMEOUT_MS, startKubeApiServer, type KubeApiServer } from '../helpers/kube-apiserver.js';
import { metric, until } from '../helpers/poll.js';
import { PREDICT_PATH, startWorld, type World } from '../helpers/world.js';

const predictBody = JSON.stringify({ instances: [{ feature: 1 }] });

let api: KubeApiServer;
beforeAll(async () => {
  api = await startKubeApiServer();
  await api.createNamespace('ml', { team: 'ml' });
}, START_TIMEOUT_MS);
afterAll(async () => {
  await api?.close();
});

function worldWith(kubernetes: Record<string, unknown>): Promise<World> {
  return startWorld({
    config: (defaults) => ({
      ...defaults,
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: api.issuer, audiences: [API_AUDIENCE], caFile: api.caFile }],
      kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' } }, kubeconfig: api.writeKubeconfig(), ...kubernetes },
    }),
  });
}

const predict = async (world: World, token: string) => (await world.call(PREDICT_PATH, { token, body: predictBody })).status;

describe('TokenReview on', () => {
  let world: World;
  beforeAll(async () => {
    await api.createServiceAccount('ml', 'reviewed');
    world = await worldWith({ tokenReview: true, tokenReviewTtl: '1s' });
  });
  afterAll(async () => {
    await world?.close();
  });

  it('accepts a live pod-bound token after the API server reviewed it', async () => {
    await api.createPod('ml', 'reviewed-0', 'reviewed');
    const token = await api.createToken('ml', 'reviewed', { pod: 'reviewed-0' });
    expect(await predict(world, token)).toBe(200);
    expect(await metric(world, 'kube_vertex_proxy_token_reviews_total{result="accepted"}')).toBeGreaterThanOrEqual(1);
  });

  it('refuses a token whose pod was deleted, a new one and a cached one (once its review TTL is over)', async () => {
    await api.createPod('ml', 'reviewed-1', 'reviewed');
    const cached = await api.createToken('ml', 'reviewed', { pod: 'reviewed-1' });
    const unused = await api.createToken('ml', 'reviewed', { pod: 'reviewed-1' });
    expect(await predict(world, cached)).toBe(200);
    await api.deletePod('ml', 'reviewed-1');

    // The API server checks the pod in its own informer cache first, so the deletion reaches its answer within moments.
    const refused = await until(async () => {
      const response = await world.call(PREDICT_PATH, { token: unused, body: predictBody });
      return response.status === 401 ? response : undefined;
    }, 'a new token of the deleted pod to be refused');
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('no longer accepts this token');
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.reason === 'token-review-rejected');
    expect(JSON.stringify(entry)).not.toContain(unused);

    await until(async () => (await predict(world, cached)) === 401 || undefined, 'the cached token to be reviewed again and refused');
  });
});

describe('TokenReview on, the API server down', () => {
  let world: World;
  beforeAll(async () => {
    await api.createServiceAccount('ml', 'outage');
    world = await worldWith({ tokenReview: true, tokenReviewTtl: '1m', apiTimeout: '2s' });
  });
  afterAll(async () => {
    await world?.close();
  });

  it(
    'fails closed with 503 for a new token, keeps serving a reviewed one from the cache, and reviews again once it is back',
    async () => {
      await api.createPod('ml', 'outage-0', 'outage');
      const reviewed = await api.createToken('ml', 'outage', { pod: 'outage-0' });
      const fresh = await api.createToken('ml', 'outage', { pod: 'outage-0' });
      expect(await predict(world, reviewed)).toBe(200);
      await api.stop();
      try {
        const refused = await world.call(PREDICT_PATH, { token: fresh, body: predictBody });
        expect(refused.status).toBe(503);
        expect(((await refused.json()) as { error: { status: string } }).error.status).toBe('UNAVAILABLE');
        expect(
          (await world.proxy.waitForAudit((e) => e.kubeVertexProxy.reason === 'token-review-unavailable')).kubeVertexProxy.status,
        ).toBe(503);
        expect(await predict(world, reviewed)).toBe(200);
      } finally {
        await api.start();
      }
      expect(await predict(world, fresh)).toBe(200);
    },
    START_TIMEOUT_MS,
  );
});

describe('TokenReview off', () => {
  let world: World;
  beforeAll(async () => {
    await api.createServiceAccount('ml', 'unreviewed');
    world = await worldWith({ tokenReview: false });
  });
  afterAll(async () => {
    await world?.close();
  });

  it('keeps accepting a token whose pod was deleted until it expires (what TokenReview or uidRevocation buys)', async () => {
    await api.createPod('ml', 'unreviewed-0', 'unreviewed');
    const token = await api.createToken('ml', 'unreviewed', { pod: 'unreviewed-0' });
    const fresh = await api.createToken('ml', 'unreviewed', { pod: 'unreviewed-0' });
    expect(await predict(world, token)).toBe(200);
    await api.deletePod('ml', 'unreviewed-0');
    expect(await predict(world, token)).toBe(200);
    expect(await predict(world, fresh)).toBe(200);
    expect(await metric(world, 'kube_vertex_proxy_token_reviews_total{result="accepted"}')).toBeUndefined();
  });
});

describe('UID revocation', () => {
  let world: World;
  beforeAll(async () => {
    await api.createServiceAccount('ml', 'trainer');
    await api.createServiceAccount('ml', 'scorer');
    world = await worldWith({ uidRevocation: 'serviceAccountsAndPods' });
  });
  afterAll(async () => {
    await world?.close();
  });

  it(
    'refuses a cached token once its service account is deleted and recreated under the same name; a token of the new one ' + 'passes',
    async () => {
      await api.createPod('ml', 'trainer-0', 'trainer');
      const token = await api.createToken('ml', 'trainer', { pod: 'trainer-0' });
      expect(await predict(world, token)).toBe(200);
      expect(await predict(world, token)).toBe(200);

      const ADDED = 'kube_vertex_proxy_informer_events_total{resource="serviceaccounts",type="ADDED"}';
      const addedBefore = (await metric(world, ADDED)) ?? 0;
      await api.deleteServiceAccount('ml', 'trainer');
      await api.createServiceAccount('ml', 'trainer');
      await until(
        async () => ((await metric(world, 'kube_vertex_proxy_revocation_evictions_total')) ?? 0) >= 1 || undefined,
        'the DELETED event to evict the cached token',
      );
      const refused = await world.call(PREDICT_PATH, { token, body: predictBody });
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('service account no longer exists');
      expect((await world.proxy.waitForAudit((e) => e.kubeVertexProxy.reason === 'service-account-deleted')).kubeVertexProxy.status).toBe(
        401,
      );

      // The pod names its service account by name, so a token for the recreated one binds to it again. It is sent
      // once the view holds the new object (a refusal before that would be remembered as a bad token for negativeTtl).
      await until(async () => ((await metric(world, ADDED)) ?? 0) > addedBefore || undefined, 'the recreated service account in the view');
      const renewed = await api.createToken('ml', 'trainer', { pod: 'trainer-0' });
      expect(await predict(world, renewed)).toBe(200);
    },
  );

  it('refuses a cached token once its pod is deleted', async () => {
    await api.createPod('ml', 'scorer-0', 'scorer');
    const token = await api.createToken('ml', 'scorer', { pod: 'scorer-0' });
    expect(await predict(world, token)).toBe(200);
    await api.deletePod('ml', 'scorer-0');
    await until(async () => (await predict(world, token)) === 401 || undefined, 'the token of the deleted pod to be refused');
    await world.proxy.waitForAudit((e) => e.kubeVertexProxy.reason === 'pod-deleted');
  });

  it('refuses a token of a pod deleted and recreated under the same name (a new UID)', async () => {
    await api.createPod('ml', 'scorer-1', 'scorer');
    const token = await api.createToken('ml', 'scorer', { pod: 'scorer-1' });
    expect(await predict(world, token)).toBe(200);
    await api.deletePod('ml', 'scorer-1');
    await api.createPod('ml', 'scorer-1', 'scorer');
    await until(async () => (await predict(world, token)) === 401 || undefined, 'the token of the replaced pod to be refused');
  });
});
