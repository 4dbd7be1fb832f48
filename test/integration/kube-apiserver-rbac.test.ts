/**
 * The chart's RBAC, proven against a real kube-apiserver with RBAC on
 * (and cross-checked with `kubectl auth can-i` as the proxy's ServiceAccount):
 *
 * - sufficient: for each mode, the ServiceAccount, ClusterRole and
 *   ClusterRoleBinding the chart renders (real `helm template`) are applied,
 *   and the proxy runs with a token of that ServiceAccount (not the admin
 *   token): it becomes ready and does the mode's work;
 * - minimal: with every mode on, each permission of the rendered role is
 *   taken away in turn; the proxy then names exactly that permission as
 *   missing in /readyz and in its log, and the mode it serves stops working
 *   (so no granted permission is idle).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKubeYaml, type KubeObject } from '../helpers/kube-validate.js';
import { API_AUDIENCE, START_TIMEOUT_MS, startKubeApiServer, type KubeApiServer } from '../helpers/kube-apiserver.js';
import { REPO_ROOT } from '../helpers/proxy-process.js';
import { metric, until } from '../helpers/poll.js';
import { PREDICT_PATH, startWorld, type World } from '../helpers/world.js';
import { findHelm, findKubectl, runTool, runToolAsync } from '../helpers/tools.js';

const predictBody = JSON.stringify({ instances: [{ feature: 1 }] });
const RELEASE_NAMESPACE = 'vertex-system';
const CHART_DIR = join(REPO_ROOT, 'helm', 'kube-vertex-proxy');

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
type Role = KubeObject & { rules: Rule[] };

interface Mode {
  readonly name: string;
  /** `--set` values for the chart. */
  readonly chart: readonly string[];
  /** The proxy's kubernetes config section for the same modes. */
  readonly kubernetes: Record<string, unknown>;
}

const ALL: Mode = {
  name: 'every mode',
  chart: [
    'config.kubernetes.namespaceLabels=watch',
    'config.kubernetes.tokenReview=true',
    'config.kubernetes.uidRevocation=serviceAccountsAndPods',
  ],
  kubernetes: { namespaceLabels: 'watch', tokenReview: true, uidRevocation: 'serviceAccountsAndPods' },
};
const MODES: readonly Mode[] = [
  { name: 'namespaceLabels: watch', chart: ['config.kubernetes.namespaceLabels=watch'], kubernetes: { namespaceLabels: 'watch' } },
  {
    name: 'tokenReview: true',
    chart: ['config.kubernetes.namespaceLabels=static', 'config.kubernetes.tokenReview=true'],
    kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' } }, tokenReview: true },
  },
  {
    name: 'uidRevocation: serviceAccounts',
    chart: ['config.kubernetes.namespaceLabels=static', 'config.kubernetes.uidRevocation=serviceAccounts'],
    kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' } }, uidRevocation: 'serviceAccounts' },
  },
  {
    name: 'uidRevocation: serviceAccountsAndPods',
    chart: ['config.kubernetes.namespaceLabels=static', 'config.kubernetes.uidRevocation=serviceAccountsAndPods'],
    kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' } }, uidRevocation: 'serviceAccountsAndPods' },
  },
  ALL,
];

const helm = findHelm();
const kubectl = findKubectl();

/** The chart's ServiceAccount, ClusterRole and ClusterRoleBinding for these modes. */
function renderRbac(mode: Mode): { serviceAccount: KubeObject; role: Role; binding: KubeObject } {
  const result = runTool(helm, [
    'template',
    'kube-vertex-proxy',
    CHART_DIR,
    '--namespace',
    RELEASE_NAMESPACE,
    ...mode.chart.flatMap((s) => ['--set', s]),
  ]);
  if (result.status !== 0) throw new Error(`helm template failed:\n${result.stderr}`);
  const objects = parseKubeYaml(result.stdout);
  const of = (kind: string) => {
    const found = objects.filter((o) => o.kind === kind);
    if (found.length !== 1) throw new Error(`the chart rendered ${found.length} ${kind} objects for ${mode.name}`);
    return found[0] as KubeObject;
  };
  return { serviceAccount: of('ServiceAccount'), role: of('ClusterRole') as Role, binding: of('ClusterRoleBinding') };
}

/** `list namespaces`, `create tokenreviews.authentication.k8s.io`: every permission a role grants, one per verb. */
function permissionsOf(role: Role): string[] {
  return role.rules
    .flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${res}${r.apiGroups[0] ? `.${r.apiGroups[0]}` : ''}`)))
    .sort();
}

/** The role without one permission (a rule left with no verb is dropped). */
function without(role: Role, permission: string): Role {
  const rules = role.rules
    .map((r) => ({
      ...r,
      verbs: r.verbs.filter((v) => !r.resources.some((res) => `${v} ${res}${r.apiGroups[0] ? `.${r.apiGroups[0]}` : ''}` === permission)),
    }))
    .filter((r) => r.verbs.length > 0);
  return { ...role, rules };
}

let api: KubeApiServer;
let trainerToken: string;
let adminKubeconfig: string;

beforeAll(async () => {
  api = await startKubeApiServer();
  await api.createNamespace(RELEASE_NAMESPACE);
  await api.createNamespace('ml', { team: 'ml' });
  await api.createServiceAccount('ml', 'trainer');
  await api.createPod('ml', 'trainer-0', 'trainer');
  trainerToken = await api.createToken('ml', 'trainer', { pod: 'trainer-0' });
  adminKubeconfig = api.writeKubeconfig();
}, START_TIMEOUT_MS);

afterAll(async () => {
  await api?.close();
});

async function applyRbac(serviceAccount: KubeObject, role: Role, binding: KubeObject): Promise<void> {
  await api.apply(`/api/v1/namespaces/${RELEASE_NAMESPACE}/serviceaccounts`, serviceAccount);
  await api.apply('/apis/rbac.authorization.k8s.io/v1/clusterroles', role);
  await api.apply('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', binding);
}

/** The proxy with a kubeconfig holding a token of the chart's ServiceAccount. */
async function proxyAs(serviceAccount: KubeObject, mode: Mode, ready: boolean): Promise<World> {
  const token = await api.createToken(RELEASE_NAMESPACE, serviceAccount.metadata.name);
  return startWorld({
    ready,
    config: (defaults) => ({
      ...defaults,
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: api.issuer, audiences: [API_AUDIENCE], caFile: api.caFile }],
      kubernetes: { kubeconfig: api.writeKubeconfig(token), apiTimeout: '3s', ...mode.kubernetes },
    }),
  });
}

interface Readyz {
  http: number;
  checks: Array<{ name: string; ready: boolean; detail: { required?: string[]; missing?: string[] | null } & Record<string, unknown> }>;
}
async function readyz(world: World): Promise<Readyz> {
  const response = await fetch(`${world.proxy.adminUrl}/readyz`);
  return { http: response.status, checks: ((await response.json()) as { checks: Readyz['checks'] }).checks };
}

describe("the chart's ClusterRole is sufficient: the proxy runs on its own ServiceAccount", () => {
  it.each(MODES)(
    '$name',
    async (mode) => {
      const { serviceAccount, role, binding } = renderRbac(mode);
      expect(serviceAccount.metadata.namespace ?? RELEASE_NAMESPACE).toBe(RELEASE_NAMESPACE);
      await applyRbac(serviceAccount, role, binding);
      const world = await proxyAs(serviceAccount, mode, true);
      try {
        const ready = await readyz(world);
        expect(ready.http).toBe(200);
        const permissions = ready.checks.find((c) => c.name === 'kubernetes-permissions');
        // What the proxy asks for is exactly what the chart grants for this mode.
        expect(permissions).toMatchObject({ ready: true, detail: { missing: [] } });
        expect([...(permissions?.detail.required ?? [])].sort()).toEqual(permissionsOf(role));
        // And it works: a pod-bound token of ml/trainer is allowed, through whatever the mode asks of the API server.
        expect((await world.call(PREDICT_PATH, { token: trainerToken, body: predictBody })).status).toBe(200);
        if (mode.kubernetes.tokenReview === true)
          expect(await metric(world, 'kube_vertex_proxy_token_reviews_total{result="accepted"}')).toBeGreaterThanOrEqual(1);
        expect(world.proxy.lines.some((l) => l.message === 'Kubernetes API permissions granted')).toBe(true);
        for (const permission of permissionsOf(role)) {
          const [verb, what] = permission.split(' ') as [string, string];
          const asProxy = [
            '--kubeconfig',
            adminKubeconfig,
            'auth',
            'can-i',
            verb,
            what,
            '--as',
            `system:serviceaccount:${RELEASE_NAMESPACE}:${serviceAccount.metadata.name}`,
          ];
          expect((await runToolAsync(kubectl, asProxy)).stdout.trim(), `kubectl auth can-i ${permission}`).toBe('yes');
        }
      } finally {
        await world.close();
      }
    },
    START_TIMEOUT_MS,
  );
});

describe("the chart's ClusterRole is minimal: each permission taken away is named, and missed", () => {
  const full = renderRbac(ALL);
  const everyPermission = permissionsOf(full.role);

  it('grants, with every mode on, these seven permissions', () => {
    expect(everyPermission).toEqual([
      'create tokenreviews.authentication.k8s.io',
      'list namespaces',
      'list pods',
      'list serviceaccounts',
      'watch namespaces',
      'watch pods',
      'watch serviceaccounts',
    ]);
  });

  it.each(everyPermission)(
    'without "%s"',
    async (permission) => {
      await applyRbac(full.serviceAccount, without(full.role, permission), full.binding);
      const world = await proxyAs(full.serviceAccount, ALL, false);
      try {
        const report = await until(async () => {
          const r = await readyz(world);
          const check = r.checks.find((c) => c.name === 'kubernetes-permissions');
          return check?.detail.missing ? { r, check } : undefined;
        }, 'the permission check');
        expect(report.r.http).toBe(503);
        expect(report.check).toMatchObject({ ready: false, detail: { missing: [permission] } });
        const logged = await until(() => world.proxy.lines.find((l) => l.message === 'Kubernetes API permission missing'), 'the log line');
        expect(logged).toMatchObject({ severity: 'ERROR', missing: [permission] });

        // kubectl, asked as the admin about the proxy's ServiceAccount, agrees on what is missing.
        const [verb, what] = permission.split(' ') as [string, string];
        const asProxy = [
          '--kubeconfig',
          adminKubeconfig,
          'auth',
          'can-i',
          verb,
          what,
          '--as',
          `system:serviceaccount:${RELEASE_NAMESPACE}:${full.serviceAccount.metadata.name}`,
        ];
        expect((await runToolAsync(kubectl, asProxy)).stdout.trim()).toBe('no');

        // The permission is really needed: what depends on it does not work without it.
        const resource = permission.split(' ')[1] as string;
        if (resource === 'namespaces') {
          expect(report.r.checks.find((c) => c.name === 'namespace-labels')?.ready).toBe(false);
        } else if (resource === 'serviceaccounts' || resource === 'pods') {
          expect(report.r.checks.find((c) => c.name === 'uid-revocation')?.ready).toBe(false);
        } else {
          const other = await api.createToken('ml', 'trainer', { pod: 'trainer-0' });
          const refused = await world.call(PREDICT_PATH, { token: other, body: predictBody });
          expect(refused.status).toBe(503);
        }
      } finally {
        await world.close();
      }
    },
    START_TIMEOUT_MS,
  );

  it(
    'a permission taken away while the proxy runs is named once the API server refuses it',
    async () => {
      await applyRbac(full.serviceAccount, full.role, full.binding);
      const world = await proxyAs(full.serviceAccount, ALL, true);
      try {
        await applyRbac(full.serviceAccount, without(full.role, 'create tokenreviews.authentication.k8s.io'), full.binding);
        // A new token needs a review; the API server refuses it with 403, which makes the proxy check its permissions again.
        await until(async () => {
          const token = await api.createToken('ml', 'trainer', { pod: 'trainer-0' });
          return (await world.call(PREDICT_PATH, { token, body: predictBody })).status === 503 || undefined;
        }, 'a review refused');
        const check = await until(async () => {
          const c = (await readyz(world)).checks.find((x) => x.name === 'kubernetes-permissions');
          return c?.ready === false ? c : undefined;
        }, 'the permission check to name it');
        expect(check.detail.missing).toEqual(['create tokenreviews.authentication.k8s.io']);
      } finally {
        await world.close();
      }
    },
    START_TIMEOUT_MS,
  );
});
