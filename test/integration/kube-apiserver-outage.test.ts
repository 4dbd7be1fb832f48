/**
 * The namespace-label watch through a real kube-apiserver going away and
 * etcd compacting: the API server stopped past `maxStaleness` and started
 * again (the proxy keeps running and its watch resumes), and an etcd
 * compaction that makes the resumed watch get 410 Gone, so the informer
 * lists again.
 *
 * This server serves watches straight from etcd (`--watch-cache=false`).
 * With the watch cache (the default) a restarted API server answers any
 * resourceVersion older than its fresh cache with 410, compacted or not;
 * without it, a resumed watch is replayed from etcd's history, and only a
 * compaction past the watch's resourceVersion gives 410. That separates the
 * two paths this file proves. The other real-server files keep the cache on.
 *
 * What a real server cannot be made to do on demand (a watch that hangs with
 * no bytes, malformed answers) stays in kubernetes-labels.test.ts against
 * the stand-in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_AUDIENCE, START_TIMEOUT_MS, startKubeApiServer, type KubeApiServer } from '../helpers/kube-apiserver.js';
import { metric, until } from '../helpers/poll.js';
import { LOCATION, PREDICT_PATH, PROJECT, startWorld, type World } from '../helpers/world.js';

const predictBody = JSON.stringify({ instances: [{ feature: 1 }] });
const READ_PATH = `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`;
const LISTS = 'kube_vertex_proxy_informer_lists_total{resource="namespaces"}';

let api: KubeApiServer;
let world: World;
let token: string;

async function readyz() {
  const response = await fetch(`${world.proxy.adminUrl}/readyz`);
  return {
    status: response.status,
    body: (await response.json()) as { checks: Array<{ name: string; ready: boolean; detail: Record<string, unknown> }> },
  };
}
const predict = async () => (await world.call(PREDICT_PATH, { token, body: predictBody })).status;

beforeAll(async () => {
  api = await startKubeApiServer({ watchCache: false });
  await api.createNamespace('ml', { team: 'ml' });
  await api.createServiceAccount('ml', 'trainer');
  // Not bound to a pod: the API server is down for part of this file, and nothing here reviews tokens.
  token = await api.createToken('ml', 'trainer', { expirationSeconds: 3600 });
  world = await startWorld({
    config: (defaults) => ({
      ...defaults,
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: api.issuer, audiences: [API_AUDIENCE], caFile: api.caFile }],
      kubernetes: { namespaceLabels: 'watch', kubeconfig: api.writeKubeconfig(), maxStaleness: '2s' },
    }),
  });
}, START_TIMEOUT_MS);

afterAll(async () => {
  await world?.close();
  await api?.close();
});

describe('the API server stopped past maxStaleness and started again', () => {
  it(
    'refuses label-dependent decisions while stale, serves the others, and recovers by resuming the watch (no relist, no proxy restart)',
    async () => {
      expect(await predict()).toBe(200);
      const listsBefore = await metric(world, LISTS);
      expect(listsBefore).toBeGreaterThanOrEqual(1);
      const pid = world.proxy.child.pid;

      await api.stop();
      const refusal = await until(async () => {
        const response = await world.call(PREDICT_PATH, { token, body: predictBody });
        return response.status === 403 ? ((await response.json()) as { error: { message: string } }).error : undefined;
      }, 'label-dependent decisions to be refused as stale');
      expect(refusal.message).toContain('label view is stale');
      expect((await world.proxy.waitForAudit((e) => e.kubeVertexProxy.reason === 'labels-stale')).kubeVertexProxy.status).toBe(403);
      // ml-read grants on the service account alone: served while stale (the keys are cached, nothing asks the API server).
      expect((await world.call(READ_PATH, { token })).status).toBe(200);
      expect(await metric(world, 'kube_vertex_proxy_namespace_labels_stale')).toBe(1);
      const stale = await readyz();
      expect(stale.status).toBe(200);
      expect(stale.body.checks.find((c) => c.name === 'namespace-labels')?.detail).toMatchObject({ stale: true, watching: false });

      await api.start();
      await until(async () => (await predict()) === 200 || undefined, 'recovery once the API server is back', 60_000);
      expect(await metric(world, 'kube_vertex_proxy_namespace_labels_stale')).toBe(0);
      expect(await metric(world, 'kube_vertex_proxy_informer_restarts_total{resource="namespaces"}')).toBeGreaterThanOrEqual(1);
      // Resumed from its last resourceVersion: no new LIST.
      expect(await metric(world, LISTS)).toBe(listsBefore);
      expect(world.proxy.child.pid).toBe(pid);
      expect(world.proxy.child.exitCode).toBeNull();
    },
    START_TIMEOUT_MS,
  );

  it(
    'the resumed watch keeps following changes',
    async () => {
      await api.setNamespaceLabels('ml', { team: 'web' });
      await until(async () => (await predict()) === 403 || undefined, 'the relabel after the restart to deny');
      await api.setNamespaceLabels('ml', { team: 'ml' });
      await until(async () => (await predict()) === 200 || undefined, 'the relabel back to grant');
    },
    START_TIMEOUT_MS,
  );
});

describe('etcd compaction past the watch', () => {
  it(
    'makes the resumed watch get 410 Gone; the informer lists again and sees what changed meanwhile',
    async () => {
      const listsBefore = (await metric(world, LISTS)) ?? 0;
      const errorsBefore = (await metric(world, 'kube_vertex_proxy_informer_events_total{resource="namespaces",type="ERROR"}')) ?? 0;
      // etcd reports a watch as compacted only when the revision it resumes from (its resourceVersion + 1) is older than
      // the compaction, so it takes two writes the namespace watch does not see (another resource) past the watch's
      // resourceVersion, which is at most `before`. With one, the 410 depended on the API server writing to etcd itself
      // meanwhile (its graceful stop removes its master lease, when that runs in time): without such a write the
      // watch resumed with no 410, and this test waited for a relist that never came.
      const before = await api.revision();
      await api.createServiceAccount('ml', 'bystander');
      await api.deleteServiceAccount('ml', 'bystander');
      await api.stop();
      expect(await api.compact()).toBeGreaterThanOrEqual(before + 2);
      await api.start();
      // A namespace created after the compaction is granted once the informer has listed and watches again.
      await api.createNamespace('after-compaction', { team: 'ml' });
      // Bounded by the product: the informer's next attempt comes within its backoff ceiling (10 s) of the API server
      // answering, that WATCH answers within apiTimeout (10 s), and its 410 makes it list at once.
      await until(async () => ((await metric(world, LISTS)) ?? 0) > listsBefore || undefined, 'a relist after 410 Gone', 60_000);
      expect((await metric(world, 'kube_vertex_proxy_informer_events_total{resource="namespaces",type="ERROR"}')) ?? 0).toBeGreaterThan(
        errorsBefore,
      );
      await api.createServiceAccount('after-compaction', 'trainer');
      const fresh = await api.createToken('after-compaction', 'trainer');
      await until(
        async () => (await world.call(PREDICT_PATH, { token: fresh, body: predictBody })).status === 200 || undefined,
        'the namespace created after the compaction to be granted',
      );
      expect(await predict()).toBe(200);
    },
    START_TIMEOUT_MS,
  );
});

describe('a proxy started while the API server is down', () => {
  it(
    'is not ready (issuer keys, permissions, label view all wait on the API server), refuses meanwhile, and becomes ready ' +
      'once it is up, without a restart',
    async () => {
      await api.stop();
      const late = await startWorld({
        ready: false,
        config: (defaults) => ({
          ...defaults,
          issuers: [{ name: 'cluster', type: 'kubernetes', issuer: api.issuer, audiences: [API_AUDIENCE], caFile: api.caFile }],
          kubernetes: { namespaceLabels: 'watch', kubeconfig: api.writeKubeconfig() },
        }),
      });
      try {
        // The issuer's keys come from the API server too: that check waits with the label view.
        const state = await until(async () => {
          const response = await fetch(`${late.proxy.adminUrl}/readyz`);
          const body = (await response.json()) as { checks: Array<{ name: string; ready: boolean }> };
          const notReady = body.checks
            .filter((c) => !c.ready)
            .map((c) => c.name)
            .sort();
          return response.status === 503 &&
            ['issuer:cluster', 'kubernetes-permissions', 'namespace-labels'].every((n) => notReady.includes(n))
            ? notReady
            : undefined;
        }, 'not ready while the API server is down');
        // Only the checks that wait on the Kubernetes API (and, while it starts, the Google credential).
        expect(state.filter((n) => n !== 'google-credential')).toEqual(['issuer:cluster', 'kubernetes-permissions', 'namespace-labels']);
        expect((await late.call(PREDICT_PATH, { token, body: predictBody })).status).toBe(503);
        await api.start();
        await late.proxy.waitReady(60_000);
        expect((await late.call(PREDICT_PATH, { token, body: predictBody })).status).toBe(200);
        expect(late.proxy.lines.some((l) => l.message === 'namespace informer stopped; restarting')).toBe(true);
      } finally {
        await late.close();
      }
    },
    START_TIMEOUT_MS,
  );
});
