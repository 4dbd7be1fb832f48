/**
 * What a real API server cannot be made to do on demand, against the
 * loopback stand-in (dev/standins/kube-api.ts) and the real proxy process:
 * cut a namespace watch mid-stream while the server stays up and changes go
 * on. Everything else about namespace labels runs against a real
 * kube-apiserver: kube-apiserver-labels.test.ts and
 * kube-apiserver-outage.test.ts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubeApiStandIn, type KubeApiStandIn } from '../../dev/standins/kube-api.js';
import { PREDICT_PATH, startWorld, type World } from '../helpers/world.js';
import { until } from '../helpers/poll.js';

const predictBody = JSON.stringify({ instances: [{ feature: 1 }] });

const predictStatus = async (world: World, namespace: string, sa = 'trainer') =>
  (await world.call(PREDICT_PATH, { token: world.token(namespace, sa), body: predictBody })).status;

function watchWorld(api: KubeApiStandIn, kubernetes: Record<string, unknown> = {}) {
  const kubeconfig = api.writeKubeconfig(mkdtempSync(join(tmpdir(), 'kvp-kube-')));
  return startWorld({
    config: (defaults) => ({ ...defaults, kubernetes: { namespaceLabels: 'watch', kubeconfig, maxStaleness: '5m', ...kubernetes } }),
  });
}

describe('a namespace watch cut while the API server stays up', () => {
  let api: KubeApiStandIn;
  let world: World;
  beforeAll(async () => {
    api = await startKubeApiStandIn();
    api.setNamespace('ml', { team: 'ml' });
    world = await watchWorld(api);
  });
  afterAll(async () => {
    await world?.close();
    await api?.close();
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
});
