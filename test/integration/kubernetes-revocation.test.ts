/**
 * Token revocation against the Kubernetes API stand-in, for what a real API
 * server cannot be made to do or show on demand: answer TokenReviews slowly
 * (the concurrency bound), and tell which audiences a review carried or
 * which Accept header a LIST sent (a real server answers the same whether
 * `spec.audiences` names its own audience or is left out). TokenReview on
 * and off and UID revocation with real objects run against a real
 * kube-apiserver in kube-apiserver-revocation.test.ts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubeApiStandIn, type KubeApiStandIn } from '../../dev/standins/kube-api.js';
import { AUDIENCE, PREDICT_PATH, startWorld, type World } from '../helpers/world.js';
import { metric } from '../helpers/poll.js';

const predictBody = JSON.stringify({ instances: [{ feature: 1 }] });

function worldWith(api: KubeApiStandIn, kubernetes: Record<string, unknown>) {
  const kubeconfig = api.writeKubeconfig(mkdtempSync(join(tmpdir(), 'kvp-kube-')));
  return startWorld({
    config: (defaults) => ({ ...defaults, kubernetes: { ...(defaults.kubernetes as object), kubeconfig, ...kubernetes } }),
  });
}

/** A pod-bound token whose UIDs are those of the stand-in's objects. */
function boundToken(world: World, api: KubeApiStandIn, namespace: string, serviceAccount: string, pod: string): string {
  return world.issuer.mintKubernetesToken({
    namespace,
    serviceAccount,
    audience: AUDIENCE,
    podName: pod,
    podUid: api.uidOf('pods', namespace, pod) as string,
    saUid: api.uidOf('serviceaccounts', namespace, serviceAccount) as string,
  });
}

describe('TokenReview requests', () => {
  let api: KubeApiStandIn;
  let world: World;
  beforeAll(async () => {
    api = await startKubeApiStandIn();
    api.addServiceAccount('ml', 'trainer');
    api.addPod('ml', 'trainer-0', 'trainer');
    api.addPod('ml', 'trainer-1', 'trainer');
    world = await worldWith(api, { tokenReview: true, tokenReviewTtl: '1s' });
  });
  afterAll(async () => {
    await world?.close();
    await api?.close();
  });

  it('reviews a new token once, with the audiences set, and serves it from the cache afterwards', async () => {
    const token = boundToken(world, api, 'ml', 'trainer', 'trainer-0');
    const before = api.tokenReviews.length;
    expect((await world.call(PREDICT_PATH, { token, body: predictBody })).status).toBe(200);
    expect((await world.call(PREDICT_PATH, { token, body: predictBody })).status).toBe(200);
    const reviews = api.tokenReviews.slice(before);
    expect(reviews.length).toBeGreaterThanOrEqual(1);
    expect(reviews[0]).toEqual({ audiences: [AUDIENCE], authenticated: true });
  });
});

describe('TokenReview mode under a burst of new tokens', () => {
  let api: KubeApiStandIn;
  let world: World;
  beforeAll(async () => {
    api = await startKubeApiStandIn();
    api.addServiceAccount('ml', 'trainer');
    for (let i = 0; i < 6; i++) api.addPod('ml', `trainer-${i}`, 'trainer');
    world = await worldWith(api, { tokenReview: true, tokenReviewConcurrency: 2, apiTimeout: '3s' });
  });
  afterAll(async () => {
    await world?.close();
    await api?.close();
  });

  it('keeps at most tokenReviewConcurrency reviews in flight; the rest wait their turn and pass', async () => {
    api.setTokenReviewDelay(200);
    const tokens = Array.from({ length: 6 }, (_, i) => boundToken(world, api, 'ml', 'trainer', `trainer-${i}`));
    const before = api.tokenReviews.length;
    const statuses = await Promise.all(tokens.map(async (token) => (await world.call(PREDICT_PATH, { token, body: predictBody })).status));
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    expect(api.tokenReviews.length - before).toBe(6);
    expect(api.maxConcurrentTokenReviews).toBe(2);
  });

  it('refuses with 503 (token-review-busy) a review that found no free slot within apiTimeout, and forwards nothing for it', async () => {
    // Five new tokens (each minted token has its own jti), two slots, 2 s per review: the third and fourth
    // get a slot after 2 s of waiting; the fifth's would come after 4 s, past apiTimeout (3 s).
    api.setTokenReviewDelay(2000);
    const forwardedBefore = world.vertex.requests.length;
    const tokens = [0, 1, 2, 3, 4].map((i) => boundToken(world, api, 'ml', 'trainer', `trainer-${i}`));
    const responses = await Promise.all(tokens.map((token) => world.call(PREDICT_PATH, { token, body: predictBody })));
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 503]);
    const refused = responses.find((r) => r.status === 503);
    expect(((await refused?.json()) as { error: { status: string } }).error.status).toBe('UNAVAILABLE');
    expect(world.vertex.requests.length - forwardedBefore).toBe(4);
    expect(api.maxConcurrentTokenReviews).toBe(2);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.reason === 'token-review-busy');
    expect(entry.kubeVertexProxy.status).toBe(503);
    expect(await metric(world, 'kube_vertex_proxy_token_reviews_total{result="busy"}')).toBe(1);
    api.setTokenReviewDelay(0);
  });
});

describe('UID revocation informers', () => {
  let api: KubeApiStandIn;
  let world: World;
  beforeAll(async () => {
    api = await startKubeApiStandIn();
    api.addServiceAccount('ml', 'trainer');
    api.addServiceAccount('ml', 'scorer');
    api.addPod('ml', 'trainer-0', 'trainer');
    api.addPod('ml', 'scorer-0', 'scorer');
    world = await worldWith(api, { uidRevocation: 'serviceAccountsAndPods' });
  });
  afterAll(async () => {
    await world?.close();
    await api?.close();
  });

  it('lists service accounts and pods as metadata only', () => {
    const lists = api.requests.filter((r) => !r.watch && (r.path === '/api/v1/serviceaccounts' || r.path === '/api/v1/pods'));
    expect(lists.map((r) => r.path).sort()).toEqual(['/api/v1/pods', '/api/v1/serviceaccounts']);
    for (const r of lists) expect(r.accept).toContain('as=PartialObjectMetadataList');
  });
});
