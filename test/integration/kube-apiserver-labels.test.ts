/**
 * Namespace labels and the cluster's own issuer, against a real
 * kube-apiserver (test/helpers/kube-apiserver.ts): tokens minted by the
 * TokenRequest API and bound to real Pod objects, verified with the keys the
 * API server publishes over TLS under its private CA (`issuers[].caFile`),
 * and allowed or denied by the labels the proxy's informer follows. `can-i`
 * reads the same labels from the same API server.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freeLoopbackPort } from '../../dev/standins/loopback.js';
import { API_AUDIENCE, START_TIMEOUT_MS, startKubeApiServer, type KubeApiServer } from '../helpers/kube-apiserver.js';
import { until } from '../helpers/poll.js';
import { runCli, writeConfig } from '../helpers/proxy-process.js';
import { DEFAULT_RULES, LOCATION, PREDICT_PATH, PROJECT, startWorld, type World } from '../helpers/world.js';

const predictBody = JSON.stringify({ instances: [{ feature: 1 }] });

let api: KubeApiServer;
let world: World;
/** A pod-bound token per namespace, minted by the real API server. */
const tokens = new Map<string, string>();

async function podToken(namespace: string): Promise<string> {
  const known = tokens.get(namespace);
  if (known) return known;
  await api.createServiceAccount(namespace, 'trainer');
  await api.createPod(namespace, 'trainer-0', 'trainer');
  const token = await api.createToken(namespace, 'trainer', { pod: 'trainer-0' });
  tokens.set(namespace, token);
  return token;
}

const predict = async (namespace: string) =>
  (await world.call(PREDICT_PATH, { token: await podToken(namespace), body: predictBody })).status;

function clusterIssuer(extra: Record<string, unknown> = {}) {
  return [{ name: 'cluster', type: 'kubernetes', issuer: api.issuer, audiences: [API_AUDIENCE], ...extra }];
}

beforeAll(async () => {
  api = await startKubeApiServer();
  await api.createNamespace('ml', { team: 'ml' });
  await api.createNamespace('data', { team: 'data' });
  world = await startWorld({
    config: (defaults) => ({
      ...defaults,
      issuers: clusterIssuer({ caFile: api.caFile }),
      kubernetes: { namespaceLabels: 'watch', kubeconfig: api.writeKubeconfig() },
    }),
  });
}, START_TIMEOUT_MS);

afterAll(async () => {
  await world?.close();
  await api?.close();
});

describe('tokens from the real TokenRequest API, keys from the API server under its own CA', () => {
  it('verifies a pod-bound token with the JWKS the API server serves (issuers[].caFile) and grants on the real labels', async () => {
    expect(await predict('ml')).toBe(200);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.namespace === 'ml' && e.kubeVertexProxy.decision === 'allow');
    expect(entry.kubeVertexProxy).toMatchObject({ serviceAccount: 'trainer', ruleId: 'ml-predict' });
    const ready = (await (await fetch(`${world.proxy.adminUrl}/readyz`)).json()) as {
      checks: Array<{ name: string; ready: boolean; detail?: { keyIds?: string[] } }>;
    };
    expect(ready.checks.find((c) => c.name === 'issuer:cluster')).toMatchObject({ ready: true });
    expect(ready.checks.find((c) => c.name === 'issuer:cluster')?.detail?.keyIds?.length).toBe(1);
  });

  it('denies a namespace whose labels match no rule', async () => {
    expect(await predict('data')).toBe(403);
  });

  it('refuses a token the API server minted for another audience', async () => {
    await podToken('ml');
    const other = await api.createToken('ml', 'trainer', { pod: 'trainer-0', audience: 'someone-else' });
    expect((await world.call(PREDICT_PATH, { token: other, body: predictBody })).status).toBe(401);
  });

  it(
    'without caFile the same issuer is not trusted: its keys cannot be fetched, tokens get 503, the log says why',
    async () => {
      const untrusting = await startWorld({
        ready: false,
        config: (defaults) => ({
          ...defaults,
          issuers: clusterIssuer(),
          kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' } } },
        }),
      });
      try {
        const failure = await until(
          () => untrusting.proxy.lines.find((l) => l.message === 'issuer key set fetch failed; keeping the last good keys'),
          'the failed key fetch in the log',
        );
        expect(String(failure.cause)).toMatch(/CERT|SIGNATURE|ISSUER/);
        const response = await untrusting.call(PREDICT_PATH, { token: await podToken('ml'), body: predictBody });
        expect(response.status).toBe(503);
        const ready = await fetch(`${untrusting.proxy.adminUrl}/readyz`);
        expect(ready.status).toBe(503);
      } finally {
        await untrusting.close();
      }
    },
    START_TIMEOUT_MS,
  );
});

describe('namespace labels followed by watch', () => {
  it('a relabel takes effect with the next watch event, without a restart', async () => {
    expect(await predict('data')).toBe(403);
    await api.setNamespaceLabels('data', { team: 'ml' });
    await until(async () => (await predict('data')) === 200 || undefined, 'the relabel to grant');
    await api.setNamespaceLabels('data', { team: 'data' });
    await until(async () => (await predict('data')) === 403 || undefined, 'the relabel back to deny');
  });

  it('a namespace created while running is granted on its labels', async () => {
    await api.createNamespace('fresh', { team: 'ml' });
    await until(async () => (await predict('fresh')) === 200 || undefined, 'the new namespace to be granted');
  });

  it('a deleted namespace loses its labels', async () => {
    await api.createNamespace('doomed', { team: 'ml' });
    await until(async () => (await predict('doomed')) === 200 || undefined, 'the namespace to be granted');
    await api.deleteNamespace('doomed');
    // The token itself stays valid (this proxy neither reviews tokens nor tracks pods): only the labels are gone.
    await until(async () => (await predict('doomed')) === 403 || undefined, 'the deletion to take effect');
  });
});

describe('can-i with namespaceLabels: watch reads the labels from the API server', () => {
  const configWith = (kubernetes: Record<string, unknown>) =>
    writeConfig({
      issuers: clusterIssuer({ caFile: api.caFile }),
      vertex: { projects: [PROJECT], locations: [LOCATION] },
      kubernetes,
      policy: { rules: DEFAULT_RULES },
    });

  it('allows where the real labels grant and denies where they do not, naming where the labels came from', async () => {
    const config = configWith({ namespaceLabels: 'watch', kubeconfig: api.writeKubeconfig() });
    const allowed = await runCli(['can-i', '--config', config, '--as', 'system:serviceaccount:ml:trainer', 'POST', PREDICT_PATH]);
    expect(allowed.code).toBe(0);
    // The real API server adds kubernetes.io/metadata.name to every namespace.
    expect(allowed.stdout).toContain(`labels {"kubernetes.io/metadata.name":"ml","team":"ml"} (from the Kubernetes API, ${api.url})`);
    expect(allowed.stdout).toContain('rule:       ml-predict');
    const denied = await runCli(['can-i', '--config', config, '--as', 'system:serviceaccount:data:trainer', 'POST', PREDICT_PATH]);
    expect(denied.code).toBe(1);
    expect(denied.stdout).toContain('"team":"data"} (from the Kubernetes API');
  });

  it('follows a relabel at once, and --namespace-labels still overrides', async () => {
    const config = configWith({ namespaceLabels: 'watch', kubeconfig: api.writeKubeconfig() });
    await api.createNamespace('relabelled', { team: 'web' });
    const before = await runCli(['can-i', '--config', config, '--as', 'system:serviceaccount:relabelled:x', 'POST', PREDICT_PATH]);
    expect(before.code).toBe(1);
    await api.setNamespaceLabels('relabelled', { team: 'ml' });
    const after = await runCli(['can-i', '--config', config, '--as', 'system:serviceaccount:relabelled:x', 'POST', PREDICT_PATH]);
    expect(after.code).toBe(0);
    const overridden = await runCli([
      'can-i',
      '--config',
      config,
      '--as',
      'system:serviceaccount:relabelled:x',
      '--namespace-labels',
      'team=web',
      'POST',
      PREDICT_PATH,
    ]);
    expect(overridden.code).toBe(1);
    expect(overridden.stdout).toContain('labels {"team":"web"} (from --namespace-labels)');
  });

  it('says a namespace the API server does not have is unknown (no label-based grant)', async () => {
    const config = configWith({ namespaceLabels: 'watch', kubeconfig: api.writeKubeconfig() });
    const result = await runCli(['can-i', '--config', config, '--as', 'system:serviceaccount:nowhere:x', 'POST', PREDICT_PATH]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`namespace not found in the Kubernetes API, ${api.url}`);
  });

  it('finds the API server through $KUBECONFIG, as serve does, when the config names no kubeconfig', async () => {
    const config = configWith({ namespaceLabels: 'watch' });
    const result = await runCli(['can-i', '--config', config, '--as', 'system:serviceaccount:ml:trainer', 'POST', PREDICT_PATH], {
      KUBECONFIG: api.writeKubeconfig(),
      HOME: api.dir,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('"team":"ml"} (from the Kubernetes API');
  });

  it(
    "with an identity that may list namespaces but not get them (the proxy's own role), asks with a narrowed LIST; with " +
      'neither, exits 2',
    async () => {
      await api.createNamespace('identities');
      await api.createServiceAccount('identities', 'lister');
      await api.createServiceAccount('identities', 'nobody');
      await api.apply('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'namespace-lister' },
        rules: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['list'] }],
      });
      await api.apply('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'namespace-lister' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'namespace-lister' },
        subjects: [{ kind: 'ServiceAccount', name: 'lister', namespace: 'identities' }],
      });
      const lister = api.writeKubeconfig(await api.createToken('identities', 'lister'));
      const allowed = await runCli([
        'can-i',
        '--config',
        configWith({ namespaceLabels: 'watch', kubeconfig: lister }),
        '--as',
        'system:serviceaccount:ml:trainer',
        'POST',
        PREDICT_PATH,
      ]);
      expect(allowed.code).toBe(0);
      expect(allowed.stdout).toContain('"team":"ml"} (from the Kubernetes API');
      const unknown = await runCli([
        'can-i',
        '--config',
        configWith({ namespaceLabels: 'watch', kubeconfig: lister }),
        '--as',
        'system:serviceaccount:nowhere:x',
        'POST',
        PREDICT_PATH,
      ]);
      expect(unknown.code).toBe(1);
      expect(unknown.stdout).toContain('namespace not found in the Kubernetes API');

      const nobody = api.writeKubeconfig(await api.createToken('identities', 'nobody'));
      const refused = await runCli([
        'can-i',
        '--config',
        configWith({ namespaceLabels: 'watch', kubeconfig: nobody }),
        '--as',
        'system:serviceaccount:ml:trainer',
        'POST',
        PREDICT_PATH,
      ]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('HTTP 403 (this identity may neither get nor list namespaces)');
    },
  );

  it('exits 2 with a clear message when the API server cannot be reached or refuses the credential', async () => {
    const port = await freeLoopbackPort();
    const unreachable = join(api.dir, 'kubeconfig-unreachable');
    writeFileSync(
      unreachable,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: `https://127.0.0.1:${port}`, 'certificate-authority': api.caFile } }],
        users: [{ name: 'u', user: { token: 'x' } }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'c',
      }),
    );
    const down = await runCli([
      'can-i',
      '--config',
      configWith({ namespaceLabels: 'watch', kubeconfig: unreachable }),
      '--as',
      'system:serviceaccount:ml:trainer',
      'POST',
      PREDICT_PATH,
    ]);
    expect(down.code).toBe(2);
    expect(down.stdout).toBe('');
    expect(down.stderr).toContain(`cannot read namespace "ml" from the Kubernetes API at https://127.0.0.1:${port}`);
    expect(down.stderr).toContain('ECONNREFUSED');
    expect(down.stderr).toContain('--namespace-labels');

    const refused = await runCli([
      'can-i',
      '--config',
      configWith({ namespaceLabels: 'watch', kubeconfig: api.writeKubeconfig('not-a-valid-token') }),
      '--as',
      'system:serviceaccount:ml:trainer',
      'POST',
      PREDICT_PATH,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('HTTP 401 (the credential was refused)');
    expect(refused.stderr).not.toContain('not-a-valid-token');
  });
});
