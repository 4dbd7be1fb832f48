/**
 * Fault: the Kubernetes API server goes away while the proxy serves, with
 * both of its uses on: namespace labels by LIST+WATCH and TokenReview.
 * Tokens already reviewed keep working from the cache; a new token cannot be
 * reviewed and is refused with 503 (fail closed, nothing forwarded); past
 * `kubernetes.maxStaleness`, decisions that namespace labels could change are
 * refused (403, labels stale) while decisions no label can change go on;
 * when the API server is back, everything recovers without a restart.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startKubeApiStandIn, type KubeApiStandIn } from '../../../dev/standins/kube-api.js';
import { until } from '../../helpers/poll.js';
import { AUDIENCE, LOCATION, PREDICT_PATH, PROJECT, startWorld, type World } from '../../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const READ_PATH = `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`;

let api: KubeApiStandIn;
let world: World;
beforeAll(async () => {
  api = await startKubeApiStandIn();
  api.setNamespace('ml', { team: 'ml' });
  for (const name of ['trainer', 'newcomer']) {
    api.addServiceAccount('ml', name);
    api.addPod('ml', `${name}-0`, name);
  }
  const kubeconfig = api.writeKubeconfig(mkdtempSync(join(tmpdir(), 'kvp-kube-')));
  world = await startWorld({
    config: (d) => ({
      ...d,
      kubernetes: { namespaceLabels: 'watch', kubeconfig, maxStaleness: '2s', apiTimeout: '1s', tokenReview: true, tokenReviewTtl: '10m' },
    }),
  });
});
afterAll(async () => {
  await world?.close();
  await api?.close();
});

function bound(serviceAccount: string): string {
  return world.issuer.mintKubernetesToken({
    namespace: 'ml',
    serviceAccount,
    audience: AUDIENCE,
    podName: `${serviceAccount}-0`,
    podUid: api.uidOf('pods', 'ml', `${serviceAccount}-0`) as string,
    saUid: api.uidOf('serviceaccounts', 'ml', serviceAccount) as string,
  });
}

async function status(path: string, token: string, method = 'POST'): Promise<number> {
  const response = await world.call(path, method === 'GET' ? { token } : { token, body: '{}' });
  return response.status;
}

describe('the Kubernetes API server is down', () => {
  it(
    'cached tokens keep working, new ones get 503, label decisions stop after maxStaleness, name decisions go on; all ' + 'recovers',
    async () => {
      const reviewed = bound('trainer');
      expect(await status(PREDICT_PATH, reviewed)).toBe(200);
      expect(await status(READ_PATH, reviewed, 'GET')).toBe(200);

      await api.stop();
      // A cached, reviewed token: still served (label view still fresh).
      expect(await status(PREDICT_PATH, reviewed)).toBe(200);
      // A new token cannot be reviewed: 503, nothing forwarded.
      const forwarded = world.vertex.requests.length;
      const fresh = await world.call(PREDICT_PATH, { token: bound('newcomer'), body: '{}' });
      expect(fresh.status).toBe(503);
      expect(((await fresh.json()) as { error: { status: string } }).error.status).toBe('UNAVAILABLE');
      expect(world.vertex.requests.length).toBe(forwarded);

      // Past maxStaleness: the label-based grant (ml-predict) is refused, the name-based one (ml-read) is not.
      await until(async () => ((await status(PREDICT_PATH, reviewed)) === 403 ? true : undefined), 'the label view to go stale');
      const entry = await world.proxy.waitForAudit(
        (e) => e.kubeVertexProxy.status === 403 && e.kubeVertexProxy.principal === 'system:serviceaccount:ml:trainer',
      );
      expect(entry.kubeVertexProxy.reason).toBe('labels-stale');
      expect(await status(READ_PATH, reviewed, 'GET')).toBe(200);

      await api.restart();
      await until(async () => ((await status(PREDICT_PATH, reviewed)) === 200 ? true : undefined), 'the label view to recover');
      await until(async () => ((await status(PREDICT_PATH, bound('newcomer'))) === 200 ? true : undefined), 'reviews to work again');
    },
  );
});
