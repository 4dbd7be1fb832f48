/**
 * Namespace labels from the Kubernetes API (`namespaceLabels: watch`),
 * end to end: the real proxy process, its informer driven through the real
 * @kubernetes/client-node against the loopback API server stand-in.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubeApiStandIn, type KubeApiStandIn } from '../../src/standins/kube-api.js';
import { LOCATION, PREDICT_PATH, PROJECT, startWorld, type World } from '../helpers/world.js';
import { metric, until } from '../helpers/poll.js';

const predictBody = JSON.stringify({ instances: [{ feature: 1 }] });
const READ_PATH = `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`;

const predictStatus = async (world: World, namespace: string, sa = 'trainer') =>
  (await world.call(PREDICT_PATH, { token: world.token(namespace, sa), body: predictBody })).status;

async function readyz(world: World) {
  const response = await fetch(`${world.proxy.adminUrl}/readyz`);
  return { status: response.status, body: (await response.json()) as { checks: Array<{ name: string; ready: boolean; detail: Record<string, unknown> }> } };
}

function watchWorld(api: KubeApiStandIn, kubernetes: Record<string, unknown> = {}) {
  const kubeconfig = api.writeKubeconfig(mkdtempSync(join(tmpdir(), 'kvp-kube-')));
  return startWorld({
    config: (defaults) => ({ ...defaults, kubernetes: { namespaceLabels: 'watch', kubeconfig, maxStaleness: '5m', ...kubernetes } }),
  });
}

describe('namespace labels from the API server', () => {
  let api: KubeApiStandIn;
  let world: World;
  beforeAll(async () => {
    api = await startKubeApiStandIn();
    api.setNamespace('ml', { team: 'ml' });
    api.setNamespace('data', { team: 'data' });
    api.setNamespace('gone', { team: 'ml' });
    world = await watchWorld(api);
  });
  afterAll(async () => {
    await world?.close();
    await api?.close();
  });

  it('grants on the labels of the first LIST', async () => {
    expect(await predictStatus(world, 'ml')).toBe(200);
    expect(await predictStatus(world, 'data')).toBe(403);
    const ready = await readyz(world);
    expect(ready.body.checks.find((c) => c.name === 'namespace-labels')).toMatchObject({ ready: true, detail: { source: 'watch', synced: true, stale: false } });
  });

  it('a label added mid-run grants access with the next watch event, without a restart', async () => {
    api.setNamespace('data', { team: 'ml' });
    await until(async () => (await predictStatus(world, 'data')) === 200 || undefined, 'the relabel to take effect');
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.namespace === 'data' && e.kubeVertexProxy.decision === 'allow');
    expect(entry.kubeVertexProxy.ruleId).toBe('ml-predict');
  });

  it('a deleted namespace loses its labels at once', async () => {
    expect(await predictStatus(world, 'gone')).toBe(200);
    api.deleteNamespace('gone');
    await until(async () => (await predictStatus(world, 'gone')) === 403 || undefined, 'the deletion to take effect');
    expect(await predictStatus(world, 'gone')).toBe(403);
  });

  it('a namespace unknown to the view gets no label-based grant', async () => {
    expect(await predictStatus(world, 'never-created')).toBe(403);
  });

  it('resumes a dropped watch from its last resourceVersion and replays what it missed', async () => {
    const listsBefore = api.requests.filter((r) => r.path === '/api/v1/namespaces' && !r.watch).length;
    const watchesBefore = api.requests.filter((r) => r.path === '/api/v1/namespaces' && r.watch).length;
    api.dropWatches();
    api.setNamespace('late', { team: 'ml' });
    await until(async () => (await predictStatus(world, 'late')) === 200 || undefined, 'the missed event to be replayed');
    const resumed = api.requests.filter((r) => r.path === '/api/v1/namespaces' && r.watch).slice(watchesBefore);
    expect(resumed.length).toBeGreaterThan(0);
    expect(resumed[0]?.resourceVersion).toMatch(/^\d+$/);
    expect(api.requests.filter((r) => r.path === '/api/v1/namespaces' && !r.watch).length).toBe(listsBefore);
  });

  it('relists after 410 Gone and keeps following changes', async () => {
    const listsBefore = api.requests.filter((r) => r.path === '/api/v1/namespaces' && !r.watch).length;
    api.expireWatches();
    api.setNamespace('after-gone', { team: 'ml' });
    await until(async () => (await predictStatus(world, 'after-gone')) === 200 || undefined, 'the namespace created after the 410');
    expect(api.requests.filter((r) => r.path === '/api/v1/namespaces' && !r.watch).length).toBeGreaterThan(listsBefore);
    expect(await metric(world, 'kube_vertex_proxy_informer_events_total{resource="namespaces",type="ERROR"}')).toBeGreaterThanOrEqual(1);
  });
});

describe('readiness waits for the first LIST', () => {
  it('is not ready while the API server is unreachable, and becomes ready once the view has synced', async () => {
    const api = await startKubeApiStandIn();
    api.setNamespace('ml', { team: 'ml' });
    await api.stop();
    const kubeconfig = api.writeKubeconfig(mkdtempSync(join(tmpdir(), 'kvp-kube-')));
    const world = await startWorld({
      ready: false,
      config: (defaults) => ({ ...defaults, kubernetes: { namespaceLabels: 'watch', kubeconfig } }),
    });
    try {
      await until(async () => {
        const r = await readyz(world);
        const labels = r.body.checks.find((c) => c.name === 'namespace-labels');
        // Everything else ready, the label view not: that is the state under test.
        return r.status === 503 && labels?.ready === false && r.body.checks.filter((c) => c.name !== 'namespace-labels').every((c) => c.ready) ? true : undefined;
      }, 'not ready on the label view alone');
      // Not ready, and no label-based grant meanwhile.
      expect(await predictStatus(world, 'ml')).toBe(403);
      await api.restart();
      await world.proxy.waitReady(30_000);
      expect(await predictStatus(world, 'ml')).toBe(200);
      expect(world.proxy.lines.some((l) => l.message === 'namespace informer stopped; restarting')).toBe(true);
    } finally {
      await world.close();
      await api.close();
    }
  });
});

describe('the API server down past the staleness bound', () => {
  let api: KubeApiStandIn;
  let world: World;
  beforeAll(async () => {
    api = await startKubeApiStandIn();
    api.setNamespace('ml', { team: 'ml' });
    world = await watchWorld(api, { maxStaleness: '1s' });
  });
  afterAll(async () => {
    await world?.close();
    await api?.close();
  });

  it('refuses label-dependent decisions with a "stale" 403, keeps label-independent ones, and recovers', async () => {
    expect(await predictStatus(world, 'ml')).toBe(200);
    await api.stop();
    const refusal = await until(async () => {
      const response = await world.call(PREDICT_PATH, { token: world.token('ml', 'trainer'), body: predictBody });
      return response.status === 403 ? ((await response.json()) as { error: { message: string; status: string } }).error : undefined;
    }, 'label decisions to be refused as stale');
    expect(refusal.status).toBe('PERMISSION_DENIED');
    expect(refusal.message).toContain('label view is stale');
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.reason === 'labels-stale');
    expect(entry.kubeVertexProxy).toMatchObject({ decision: 'deny', status: 403, namespace: 'ml' });

    // ml-read grants on the service account alone: no label can change it.
    expect((await world.call(READ_PATH, { token: world.token('ml', 'trainer') })).status).toBe(200);
    // The deny rule on ml/intern still wins.
    expect((await world.call(READ_PATH, { token: world.token('ml', 'intern') })).status).toBe(403);

    expect(await metric(world, 'kube_vertex_proxy_namespace_labels_stale')).toBe(1);
    expect(world.proxy.lines.some((l) => l.message === 'namespace label view is stale; label-dependent decisions are refused')).toBe(true);
    const ready = await readyz(world);
    expect(ready.status).toBe(200);
    expect(ready.body.checks.find((c) => c.name === 'namespace-labels')?.detail).toMatchObject({ stale: true, watching: false });

    await api.restart();
    await until(async () => (await predictStatus(world, 'ml')) === 200 || undefined, 'recovery once the API server is back', 40_000);
    expect(await metric(world, 'kube_vertex_proxy_namespace_labels_stale')).toBe(0);
    expect(await metric(world, 'kube_vertex_proxy_informer_restarts_total{resource="namespaces"}')).toBeGreaterThanOrEqual(1);
  });
});
