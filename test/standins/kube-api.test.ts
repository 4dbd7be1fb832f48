/**
 * The Kubernetes API stand-in, driven by the proxy's own Kubernetes client
 * (src/identity/kube-client.ts, through its informer and permission check):
 * lists, watch streams with history and resume, 410 relists, outages. The
 * same client runs against a real kube-apiserver in
 * test/integration/kube-apiserver*.test.ts.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiError, type KubeList, type KubeObject } from '../../src/identity/kube-client.js';
import { loadKubeConfig } from '../../src/identity/kube-config.js';
import { createWatchLabelSource, type WatchLabelSource } from '../../src/identity/namespace-watch.js';
import { createPermissionCheck, requiredPermissions } from '../../src/identity/permissions.js';
import { makeServingCertificates } from '../helpers/certificates.js';
import { ruleAllows, startKubeApiStandIn, type KubeApiStandIn } from '../../dev/standins/kube-api.js';

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("Kubernetes API stand-in through the proxy's client", () => {
  let api: KubeApiStandIn;
  let kubeconfig: string;
  beforeAll(async () => {
    api = await startKubeApiStandIn();
    kubeconfig = api.writeKubeconfig(mkdtempSync(join(tmpdir(), 'kvp-kube-')));
    api.setNamespace('ml', { team: 'ml' });
  });
  afterAll(() => api.close());

  it('serves a NamespaceList with a resourceVersion and a 404 Status for an unknown namespace', async () => {
    const { client } = loadKubeConfig(kubeconfig, {});
    const list = await client.get<KubeList<KubeObject>>('/api/v1/namespaces', 2000);
    expect(list.metadata?.resourceVersion).toMatch(/^\d+$/);
    expect(list.items.map((n) => n.metadata?.labels)).toEqual([{ 'kubernetes.io/metadata.name': 'ml', team: 'ml' }]);
    const missing = client.get('/api/v1/namespaces/nope', 2000);
    await expect(missing).rejects.toBeInstanceOf(KubeApiError);
    await expect(missing).rejects.toMatchObject({ statusCode: 404, reason: 'NotFound' });
    await client.close();
  });

  it('answers TokenReview with 201 and the failure shape without `authenticated`', async () => {
    const { client } = loadKubeConfig(kubeconfig, {});
    const review = await client.post<{ status?: { authenticated?: boolean; error?: string } }>(
      '/apis/authentication.k8s.io/v1/tokenreviews',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 'not-a-jwt', audiences: ['kube-vertex-proxy'] } },
      2000,
    );
    expect(review.status?.authenticated).toBeUndefined();
    expect(review.status?.error).toMatch(/^\[invalid bearer token, /);
    await client.close();
  });

  it('refuses a caller without the API token (401 Status)', async () => {
    const response = await fetch(`${api.url}/api/v1/namespaces`);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ kind: 'Status', code: 401, reason: 'Unauthorized' });
  });

  describe('the namespace informer', () => {
    let source: WatchLabelSource;
    beforeAll(async () => {
      const { client } = loadKubeConfig(kubeconfig, {});
      source = createWatchLabelSource({ client, maxStalenessMs: 60_000, apiTimeoutMs: 2000, backoffInitialMs: 50 });
      await source.start();
      await until(() => source.ready(), 'first sync');
    });
    afterAll(() => {
      source.stop();
    });

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

describe("the permission check through the proxy's client", () => {
  it('is ready once the API server allows every permission, and not ready (with the error) while it cannot ask', async () => {
    const api = await startKubeApiStandIn();
    const { client } = loadKubeConfig(api.writeKubeconfig(mkdtempSync(join(tmpdir(), 'kvp-kube-'))), {});
    const errors: unknown[] = [];
    try {
      await api.stop();
      const check = createPermissionCheck({
        client,
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

describe('SubjectAccessReview (what kube-rbac-proxy asks, in the benchmark)', () => {
  const user = 'system:serviceaccount:ml:trainer';
  const groups = ['system:serviceaccounts', 'system:serviceaccounts:ml', 'system:authenticated'];

  it("matches RBAC's rules: subject by user or group, verb, non-resource URL prefix, resource in a namespace", () => {
    const predict = { user, groups, nonResourceAttributes: { path: '/v1/projects/p/models:predict', verb: 'create' } };
    expect(ruleAllows({ user, verbs: ['create'], nonResourceURLs: ['/v1/*'] }, predict)).toBe(true);
    expect(ruleAllows({ group: 'system:serviceaccounts:ml', verbs: ['*'], nonResourceURLs: ['*'] }, predict)).toBe(true);
    expect(ruleAllows({ user, verbs: ['get'], nonResourceURLs: ['/v1/*'] }, predict)).toBe(false);
    expect(ruleAllows({ user, verbs: ['create'], nonResourceURLs: ['/v1'] }, predict)).toBe(false);
    expect(ruleAllows({ user: 'system:serviceaccount:ml:other', verbs: ['*'], nonResourceURLs: ['*'] }, predict)).toBe(false);
    const list = { user, groups, resourceAttributes: { namespace: 'ml', verb: 'list', group: '', resource: 'pods' } };
    expect(ruleAllows({ user, verbs: ['list'], apiGroups: [''], resources: ['pods'], namespaces: ['ml'] }, list)).toBe(true);
    expect(ruleAllows({ user, verbs: ['list'], apiGroups: [''], resources: ['pods'], namespaces: ['other'] }, list)).toBe(false);
    expect(ruleAllows({ user, verbs: ['list'], apiGroups: ['apps'], resources: ['pods'] }, list)).toBe(false);
  });

  it('answers allowed / not allowed in the API shape, records each review, and refuses an invalid spec with 422', async () => {
    const api = await startKubeApiStandIn();
    try {
      api.grant({ user, verbs: ['create'], nonResourceURLs: ['/v1/*'] });
      const review = async (spec: Record<string, unknown>, token = api.apiToken) =>
        fetch(`${api.url}/apis/authorization.k8s.io/v1/subjectaccessreviews`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec }),
        });
      const allowed = await review({ user, groups, nonResourceAttributes: { path: '/v1/x:predict', verb: 'create' } });
      expect(allowed.status).toBe(201);
      expect(await allowed.json()).toMatchObject({
        kind: 'SubjectAccessReview',
        apiVersion: 'authorization.k8s.io/v1',
        spec: { user, nonResourceAttributes: { path: '/v1/x:predict', verb: 'create' } },
        status: { allowed: true },
      });
      const denied = await review({ user, groups, nonResourceAttributes: { path: '/metrics', verb: 'get' } });
      expect(((await denied.json()) as { status: unknown }).status).toEqual({ allowed: false });
      const invalid = await review({ user, groups });
      expect(invalid.status).toBe(422);
      expect(await invalid.json()).toMatchObject({ kind: 'Status', reason: 'Invalid', code: 422 });
      expect((await review({ user, groups, nonResourceAttributes: { path: '/', verb: 'get' } }, 'wrong')).status).toBe(401);
      expect(api.subjectAccessReviews).toEqual([
        { user, verb: 'create', path: '/v1/x:predict', allowed: true },
        { user, verb: 'get', path: '/metrics', allowed: false },
      ]);
    } finally {
      await api.close();
    }
  });
});

describe('Kubernetes API stand-in over HTTPS', () => {
  it('serves TLS with a certificate its kubeconfig names the CA of, and the client verifies it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvp-kube-tls-'));
    const certs = makeServingCertificates(dir, 'kube-api-stand-in');
    const read = (path: string) => readFileSync(path, 'utf8');
    const api = await startKubeApiStandIn({ tls: { key: read(certs.key), cert: read(certs.cert), ca: read(certs.ca) } });
    try {
      api.setNamespace('ml', { team: 'ml' });
      expect(api.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const kubeconfig = api.writeKubeconfig(dir);
      expect(readFileSync(kubeconfig, 'utf8')).not.toContain('insecure-skip-tls-verify');
      const { client } = loadKubeConfig(kubeconfig, {});
      const list = await client.get<KubeList<KubeObject>>('/api/v1/namespaces', 2000);
      expect(list.items.map((n) => n.metadata?.name)).toEqual(['ml']);
      // Without the CA the certificate is not trusted: the connection fails, no answer is read.
      await expect(fetch(`${api.url}/api/v1/namespaces`, { headers: { authorization: `Bearer ${api.apiToken}` } })).rejects.toThrow();
    } finally {
      await api.close();
    }
  });
});
