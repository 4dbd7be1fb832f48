/**
 * The Kubernetes API stand-in, driven by the real @kubernetes/client-node
 * (through the proxy's own informer and TokenReview modules): lists, watch
 * streams with history and resume, 410 relists, outages.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthenticationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../src/identity/kube-config.js';
import { createWatchLabelSource, type WatchLabelSource } from '../../src/identity/namespace-watch.js';
import { createPermissionCheck, requiredPermissions } from '../../src/identity/permissions.js';
import { startKubeApiStandIn, type KubeApiStandIn } from '../../dev/standins/kube-api.js';

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Kubernetes API stand-in through client-node', () => {
  let api: KubeApiStandIn;
  let kubeconfig: string;
  beforeAll(async () => {
    api = await startKubeApiStandIn();
    kubeconfig = api.writeKubeconfig(mkdtempSync(join(tmpdir(), 'kvp-kube-')));
    api.setNamespace('ml', { team: 'ml' });
  });
  afterAll(() => api.close());

  it('serves a NamespaceList with a resourceVersion and a 404 Status for an unknown namespace', async () => {
    const { kubeConfig } = loadKubeConfig(kubeconfig, {});
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const list = await core.listNamespace();
    expect(list.metadata?.resourceVersion).toMatch(/^\d+$/);
    expect(list.items.map((n) => n.metadata?.labels)).toEqual([{ 'kubernetes.io/metadata.name': 'ml', team: 'ml' }]);
    await expect(core.readNamespace({ name: 'nope' })).rejects.toMatchObject({ code: 404 });
  });

  it('answers TokenReview with 201 and the failure shape without `authenticated`', async () => {
    const { kubeConfig } = loadKubeConfig(kubeconfig, {});
    const auth = kubeConfig.makeApiClient(AuthenticationV1Api);
    const review = await auth.createTokenReview({ body: { spec: { token: 'not-a-jwt', audiences: ['kube-vertex-proxy'] } } });
    expect(review.status?.authenticated).toBeUndefined();
    expect(review.status?.error).toMatch(/^\[invalid bearer token, /);
  });

  it('refuses a caller without the API token (401 Status)', async () => {
    const response = await fetch(`${api.url}/api/v1/namespaces`);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ kind: 'Status', code: 401, reason: 'Unauthorized' });
  });

  describe('the namespace informer', () => {
    let source: WatchLabelSource;
    beforeAll(async () => {
      const { kubeConfig } = loadKubeConfig(kubeconfig, {});
      source = createWatchLabelSource({ kubeConfig, maxStalenessMs: 60_000, apiTimeoutMs: 2000, backoffInitialMs: 50 });
      await source.start();
      await until(() => source.ready(), 'first sync');
    });
    afterAll(() => source.stop());

    it('syncs, follows relabels and deletions', async () => {
      expect(source.labelsOf('ml')).toEqual({ 'kubernetes.io/metadata.name': 'ml', team: 'ml' });
      api.setNamespace('web', { team: 'web' });
      await until(() => source.labelsOf('web')?.team === 'web', 'web added');
      api.setNamespace('web', { team: 'ml' });
      await until(() => source.labelsOf('web')?.team === 'ml', 'web relabelled');
      api.deleteNamespace('web');
      await until(() => source.labelsOf('web') === undefined, 'web deleted');
      expect(source.stale?.()).toBeUndefined();
    });

    it('resumes from the last resourceVersion after the stream is cut, replaying what it missed', async () => {
      const lists = api.requests.filter((r) => r.path === '/api/v1/namespaces' && !r.watch).length;
      api.dropWatches();
      api.setNamespace('missed', { team: 'x' });
      await until(() => source.labelsOf('missed') !== undefined, 'missed event replayed');
      const last = api.requests.filter((r) => r.watch).at(-1);
      expect(last?.resourceVersion).toMatch(/^\d+$/);
      expect(api.requests.filter((r) => r.path === '/api/v1/namespaces' && !r.watch).length).toBe(lists);
    });

    it('relists after a 410 Expired event', async () => {
      const lists = api.requests.filter((r) => r.path === '/api/v1/namespaces' && !r.watch).length;
      api.expireWatches();
      api.setNamespace('after-410', { team: 'y' });
      await until(() => source.labelsOf('after-410') !== undefined, 'namespace seen after relist');
      expect(api.requests.filter((r) => r.path === '/api/v1/namespaces' && !r.watch).length).toBeGreaterThan(lists);
    });

    it('ages while the API server is down, restarts with backoff, and is current again once it is back', async () => {
      await api.stop();
      await until(() => (source.ageMs() ?? 0) > 0, 'view ageing');
      await api.restart();
      api.setNamespace('back', { team: 'z' });
      await until(() => source.labelsOf('back') !== undefined && source.ageMs() === 0, 'view current again', 15_000);
    });
  });
});

describe('the permission check through client-node', () => {
  it('is ready once the API server allows every permission, and not ready (with the error) while it cannot ask', async () => {
    const api = await startKubeApiStandIn();
    const { kubeConfig } = loadKubeConfig(api.writeKubeconfig(mkdtempSync(join(tmpdir(), 'kvp-kube-'))), {});
    const errors: unknown[] = [];
    try {
      await api.stop();
      const check = createPermissionCheck({
        kubeConfig,
        permissions: requiredPermissions({ namespaceLabels: 'watch', tokenReview: true, uidRevocation: 'off' }),
        timeoutMs: 2000,
        backoffInitialMs: 50,
        backoffMaxMs: 100,
        onError: (error) => errors.push(error),
      });
      await check.start();
      expect(check.ready()).toBe(false);
      expect(check.describe()).toMatchObject({
        missing: null,
        required: ['list namespaces', 'watch namespaces', 'create tokenreviews.authentication.k8s.io'],
      });
      expect(check.describe().error).toEqual(expect.any(String));
      await api.restart();
      await until(() => check.ready(), 'the check to pass once the API server answers');
      expect(check.describe()).toMatchObject({ missing: [] });
      expect(check.describe().error).toBeUndefined();
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(api.requests.filter((r) => r.path === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews').length).toBeGreaterThanOrEqual(
        3,
      );
      check.stop();
    } finally {
      await api.close();
    }
  });
});
