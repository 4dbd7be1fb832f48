/**
 * Token revocation, end to end against the real proxy process and the
 * Kubernetes API stand-in: TokenReview mode (the API server is asked once
 * per new token, outcome cached for tokenReviewTtl) and UID revocation
 * (metadata-only informers of ServiceAccounts and Pods).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubeApiStandIn, type KubeApiStandIn } from '../../src/standins/kube-api.js';
import { AUDIENCE, PREDICT_PATH, startWorld, type World } from '../helpers/world.js';
import { metric, until } from '../helpers/poll.js';

const predictBody = JSON.stringify({ instances: [{ feature: 1 }] });

function worldWith(api: KubeApiStandIn, kubernetes: Record<string, unknown>) {
  const kubeconfig = api.writeKubeconfig(mkdtempSync(join(tmpdir(), 'kvp-kube-')));
  return startWorld({ config: (defaults) => ({ ...defaults, kubernetes: { ...(defaults.kubernetes as object), kubeconfig, ...kubernetes } }) });
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

describe('TokenReview mode', () => {
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

  it('refuses a token whose pod is gone (401), and revokes a cached one within the TTL', async () => {
    const cached = boundToken(world, api, 'ml', 'trainer', 'trainer-1');
    expect((await world.call(PREDICT_PATH, { token: cached, body: predictBody })).status).toBe(200);
    api.deletePod('ml', 'trainer-1');

    // A new token for the deleted pod: reviewed on its first use, refused.
    const fresh = world.issuer.mintKubernetesToken({
      namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE, podName: 'trainer-1',
      podUid: cached.length > 0 ? (JSON.parse(Buffer.from(cached.split('.')[1]!, 'base64url').toString()) as { 'kubernetes.io': { pod: { uid: string } } })['kubernetes.io'].pod.uid : '',
      saUid: api.uidOf('serviceaccounts', 'ml', 'trainer') as string,
    });
    const refused = await world.call(PREDICT_PATH, { token: fresh, body: predictBody });
    expect(refused.status).toBe(401);
    const error = ((await refused.json()) as { error: { status: string; message: string } }).error;
    expect(error.status).toBe('UNAUTHENTICATED');
    expect(error.message).toContain('no longer accepts this token');
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.reason === 'token-review-rejected');
    expect(JSON.stringify(entry)).not.toContain(fresh);

    // The cached token is reviewed again once its review TTL is over, and refused then.
    await until(async () => (await world.call(PREDICT_PATH, { token: cached, body: predictBody })).status === 401 || undefined, 'the cached token to be re-reviewed');
    expect(await metric(world, 'kube_vertex_proxy_token_reviews_total{result="rejected"}')).toBeGreaterThanOrEqual(2);
  });

  it('fails closed with 503 when the API server cannot review a new token', async () => {
    api.addPod('ml', 'trainer-2', 'trainer');
    const token = boundToken(world, api, 'ml', 'trainer', 'trainer-2');
    await api.stop();
    try {
      const response = await world.call(PREDICT_PATH, { token, body: predictBody });
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: { status: string } }).error.status).toBe('UNAVAILABLE');
    } finally {
      await api.restart();
    }
    expect((await world.call(PREDICT_PATH, { token, body: predictBody })).status).toBe(200);
  });
});

describe('UID revocation', () => {
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

  it('refuses a cached token within one watch event of its service account being deleted and recreated under the same name', async () => {
    const token = boundToken(world, api, 'ml', 'trainer', 'trainer-0');
    expect((await world.call(PREDICT_PATH, { token, body: predictBody })).status).toBe(200);
    expect((await world.call(PREDICT_PATH, { token, body: predictBody })).status).toBe(200);

    api.deleteServiceAccount('ml', 'trainer');
    const newUid = api.addServiceAccount('ml', 'trainer');
    // The DELETED event alone evicts the cached token (no request needed to notice).
    await until(async () => ((await metric(world, 'kube_vertex_proxy_revocation_evictions_total')) ?? 0) >= 1 || undefined, 'the eviction');
    const refused = await world.call(PREDICT_PATH, { token, body: predictBody });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('service account no longer exists');
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.reason === 'service-account-deleted');
    expect(entry.kubeVertexProxy.status).toBe(401);

    // A token for the new service account object is fine.
    const renewed = world.issuer.mintKubernetesToken({
      namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE, podName: 'trainer-0', podUid: api.uidOf('pods', 'ml', 'trainer-0') as string, saUid: newUid,
    });
    expect((await world.call(PREDICT_PATH, { token: renewed, body: predictBody })).status).toBe(200);
  });

  it('refuses a cached token once its pod is deleted', async () => {
    const token = boundToken(world, api, 'ml', 'scorer', 'scorer-0');
    expect((await world.call(PREDICT_PATH, { token, body: predictBody })).status).toBe(200);
    api.deletePod('ml', 'scorer-0');
    await until(async () => (await world.call(PREDICT_PATH, { token, body: predictBody })).status === 401 || undefined, 'the token of the deleted pod to be refused');
    await world.proxy.waitForAudit((e) => e.kubeVertexProxy.reason === 'pod-deleted');
  });
});
