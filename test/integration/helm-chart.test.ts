/**
 * The helm chart, checked with the real helm (lint --strict, template) for the
 * default values and every realistic value set in `ci/*-values.yaml`: every
 * rendered object validated against the Kubernetes API schemas, the hardening
 * (security context, probes, resources, rollout vs PDB, NetworkPolicy, RBAC)
 * asserted, and the rendered config run through the real `kube-vertex-proxy
 * check`, so the chart cannot ship a config the proxy refuses.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseKubeYaml, validateKubeObjects, type KubeObject } from '../helpers/kube-validate.js';
import { REPO_ROOT, runCli } from '../helpers/proxy-process.js';
import { findHelm, runTool } from '../helpers/tools.js';

const CHART = join(REPO_ROOT, 'helm', 'kube-vertex-proxy');
const CI_VALUES = readdirSync(join(CHART, 'ci'))
  .filter((f) => f.endsWith('-values.yaml'))
  .sort();
const VALUE_SETS: Array<{ name: string; args: string[] }> = [
  { name: 'default values', args: [] },
  ...CI_VALUES.map((f) => ({ name: `ci/${f}`, args: ['-f', join(CHART, 'ci', f)] })),
];

const helm = findHelm();

function render(args: readonly string[]): KubeObject[] {
  const result = runTool(helm, ['template', 'kube-vertex-proxy', CHART, '--namespace', 'vertex-system', ...args]);
  if (result.status !== 0) throw new Error(`helm template ${args.join(' ')} failed:\n${result.stderr}`);
  return parseKubeYaml(result.stdout);
}

function renderError(args: readonly string[]): string {
  const result = runTool(helm, ['template', 'kube-vertex-proxy', CHART, '--namespace', 'vertex-system', ...args]);
  expect(result.status, 'the render should have failed').not.toBe(0);
  return result.stderr;
}

const one = (objects: KubeObject[], kind: string): KubeObject => {
  const found = objects.filter((o) => o.kind === kind);
  expect(
    found.map((o) => o.kind),
    `exactly one ${kind}`,
  ).toEqual([kind]);
  return found[0]!;
};

interface Container {
  name: string;
  image: string;
  command: string[];
  args: string[];
  ports: Array<{ name: string; containerPort: number }>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Record<string, unknown> & { capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
}
interface PodSpec {
  automountServiceAccountToken: boolean;
  serviceAccountName: string;
  terminationGracePeriodSeconds: number;
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: Array<{ name: string; configMap?: { name: string }; secret?: { secretName: string }; emptyDir?: unknown }>;
}
type Deployment = KubeObject & {
  spec: {
    replicas?: number;
    strategy: { type: string; rollingUpdate: { maxUnavailable: number; maxSurge: number } };
    template: { spec: PodSpec };
  };
};

const configOf = (objects: KubeObject[]) =>
  parse((one(objects, 'ConfigMap') as KubeObject & { data: Record<string, string> }).data['config.yaml'] as string) as Record<string, any>;

describe('helm chart helm/kube-vertex-proxy', () => {
  it('has realistic value sets to render (ci/*-values.yaml)', () => {
    expect(CI_VALUES.length).toBeGreaterThanOrEqual(3);
  });

  describe.each(VALUE_SETS)('$name', ({ args }) => {
    const objects = render(args);
    const deployment = one(objects, 'Deployment') as Deployment;
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0] as Container;
    const config = configOf(objects);

    it('passes helm lint --strict', () => {
      const result = runTool(helm, ['lint', '--strict', CHART, ...args]);
      expect(result.status, result.stdout + result.stderr).toBe(0);
    });

    it('renders only objects that are valid against the Kubernetes API schemas', async () => {
      await validateKubeObjects(objects);
      for (const kind of ['Deployment', 'Service', 'ServiceAccount', 'ConfigMap', 'NetworkPolicy']) one(objects, kind);
    });

    it('renders a config that `kube-vertex-proxy check` accepts', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kvp-chart-'));
      const file = join(dir, 'config.yaml');
      writeFileSync(file, (one(objects, 'ConfigMap') as KubeObject & { data: Record<string, string> }).data['config.yaml'] as string);
      const result = await runCli(['check', '--config', file]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('OK');
    });

    it('runs non-root with a read-only root filesystem, no privilege escalation, no capabilities, seccomp RuntimeDefault', () => {
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
      expect(container.securityContext).toMatchObject({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(container.securityContext.privileged ?? false).toBe(false);
      expect(container.securityContext.capabilities?.drop).toEqual(['ALL']);
      expect(container.securityContext.capabilities?.add ?? []).toEqual([]);
      // Writable places exist for what the proxy writes: /tmp and the audit data volume.
      const mounts = Object.fromEntries(container.volumeMounts.map((m) => [m.mountPath, m]));
      expect(mounts['/tmp']).toBeDefined();
      expect(mounts['/var/lib/kube-vertex-proxy']).toBeDefined();
      for (const sink of (config.audit?.sinks ?? []) as Array<{ type: string; path?: string }>) {
        if (sink.type === 'sqlite') expect(sink.path).toMatch(/^\/var\/lib\/kube-vertex-proxy\//);
      }
    });

    it('probes the admin port (/healthz liveness, /readyz readiness) on the ports the config names', () => {
      const ports = Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort]));
      expect(ports.admin).toBe(config.server?.adminPort ?? 9090);
      expect(ports.http).toBe(config.server?.port ?? 8080);
      expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
      expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
      const service = one(objects, 'Service') as KubeObject & { spec: { ports: Array<{ name: string; targetPort: string }> } };
      expect(service.spec.ports.find((p) => p.name === 'http')?.targetPort).toBe('http');
    });

    it('reads its config from the ConfigMap, mounted as a directory (so policy reloads see updates)', () => {
      expect(container.args).toEqual(['serve', '--config', '/etc/kube-vertex-proxy/config.yaml']);
      const mount = container.volumeMounts.find((m) => m.mountPath === '/etc/kube-vertex-proxy');
      expect(mount).toMatchObject({ name: 'config', readOnly: true });
      expect(mount).not.toHaveProperty('subPath');
      expect(pod.volumes.find((v) => v.name === 'config')?.configMap?.name).toBe(one(objects, 'ConfigMap').metadata.name);
    });

    it('sets resource requests (cpu, memory) and a memory limit', () => {
      expect(container.resources.requests?.cpu).toBeTruthy();
      expect(container.resources.requests?.memory).toBeTruthy();
      expect(container.resources.limits?.memory).toBeTruthy();
    });

    it('rolls out without ever going below the desired count, compatible with the PodDisruptionBudget', () => {
      expect(deployment.spec.strategy).toMatchObject({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0 } });
      expect(deployment.spec.strategy.rollingUpdate.maxSurge).toBeGreaterThanOrEqual(1);
      const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler') as
        (KubeObject & { spec: { minReplicas: number; scaleTargetRef: { name: string } } }) | undefined;
      const minReplicas = hpa ? hpa.spec.minReplicas : (deployment.spec.replicas as number);
      if (hpa) {
        expect(deployment.spec.replicas).toBeUndefined();
        expect(hpa.spec.scaleTargetRef.name).toBe(deployment.metadata.name);
      }
      const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget') as
        (KubeObject & { spec: { maxUnavailable: number; selector: unknown } }) | undefined;
      if (minReplicas < 2) {
        expect(pdb, 'a PDB over a single replica would block every node drain').toBeUndefined();
      } else {
        expect(pdb).toBeDefined();
        expect(pdb!.spec.maxUnavailable).toBeGreaterThanOrEqual(1);
        expect(pdb!.spec.maxUnavailable).toBeLessThan(minReplicas);
        expect(pdb!.spec.selector).toEqual((deployment.spec as unknown as { selector: unknown }).selector);
      }
      // SIGTERM drain fits in the grace period: preStop sleep + server.shutdownGrace (25s default).
      const shutdownGrace = Number(/^(\d+)s$/.exec(String(config.server?.shutdownGrace ?? '25s'))?.[1]);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan((container.lifecycle?.preStop?.sleep?.seconds ?? 0) + shutdownGrace);
    });

    it('limits the network: ingress from labelled namespaces only; egress to DNS, the metadata server and Google APIs', () => {
      const policy = one(objects, 'NetworkPolicy') as KubeObject & {
        spec: {
          podSelector: { matchLabels: Record<string, string> };
          policyTypes: string[];
          ingress: Array<{ from: Array<Record<string, unknown>>; ports: Array<{ port: string | number }> }>;
          egress: Array<{ to: Array<{ ipBlock?: { cidr: string } }>; ports: Array<{ port: number; protocol: string }> }>;
        };
      };
      expect(policy.spec.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
      expect(policy.spec.podSelector.matchLabels).toEqual(
        (deployment.spec as unknown as { selector: { matchLabels: unknown } }).selector.matchLabels,
      );
      const dataIngress = policy.spec.ingress.find((r) => r.ports.some((p) => p.port === 'http'));
      expect(dataIngress?.from[0]).toHaveProperty('namespaceSelector.matchLabels');
      for (const rule of policy.spec.ingress) expect(rule.from.length, 'no ingress rule is open to everyone').toBeGreaterThan(0);
      const egressPorts = policy.spec.egress.flatMap((r) => r.ports.map((p) => `${p.protocol}/${p.port}`));
      expect(egressPorts).toEqual(expect.arrayContaining(['UDP/53', 'TCP/53', 'TCP/443', 'TCP/80', 'TCP/988']));
      const cidrs = policy.spec.egress.flatMap((r) => r.to.map((t) => t.ipBlock?.cidr));
      expect(cidrs).toEqual(expect.arrayContaining(['169.254.169.254/32', '169.254.169.252/32']));
    });

    it('grants Kubernetes API access exactly as the config needs it (RBAC and the token mount)', () => {
      const needs =
        config.kubernetes?.namespaceLabels === 'watch' ||
        config.kubernetes?.tokenReview === true ||
        (config.kubernetes?.uidRevocation ?? 'off') !== 'off';
      expect(pod.automountServiceAccountToken).toBe(needs);
      expect(objects.some((o) => o.kind === 'ClusterRole')).toBe(needs);
      expect(objects.some((o) => o.kind === 'ClusterRoleBinding')).toBe(needs);
      expect(objects.some((o) => o.kind === 'Role' || o.kind === 'RoleBinding')).toBe(false);
    });
  });

  describe('RBAC follows the modes the config turns on', () => {
    const rulesFor = (sets: string[]) => {
      const objects = render(sets.flatMap((s) => ['--set', s]));
      const role = objects.find((o) => o.kind === 'ClusterRole') as
        (KubeObject & { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> }) | undefined;
      return role?.rules.map((r) => `${r.apiGroups.join(',') || 'core'}:${r.resources.join(',')}:${[...r.verbs].sort().join(',')}`) ?? [];
    };

    it.each([
      { modes: ['config.kubernetes.namespaceLabels=watch'], rules: ['core:namespaces:list,watch'] },
      {
        modes: ['config.kubernetes.namespaceLabels=off', 'config.kubernetes.tokenReview=true'],
        rules: ['authentication.k8s.io:tokenreviews:create'],
      },
      {
        modes: ['config.kubernetes.namespaceLabels=off', 'config.kubernetes.uidRevocation=serviceAccounts'],
        rules: ['core:serviceaccounts:list,watch'],
      },
      {
        modes: [
          'config.kubernetes.namespaceLabels=watch',
          'config.kubernetes.tokenReview=true',
          'config.kubernetes.uidRevocation=serviceAccountsAndPods',
        ],
        rules: [
          'core:namespaces:list,watch',
          'core:serviceaccounts:list,watch',
          'core:pods:list,watch',
          'authentication.k8s.io:tokenreviews:create',
        ],
      },
      { modes: ['config.kubernetes.namespaceLabels=static'], rules: [] },
    ])('$modes → $rules', ({ modes, rules }) => {
      expect(rulesFor(modes)).toEqual(rules);
    });

    it("binds the ClusterRole to the proxy's own ServiceAccount only", () => {
      const objects = render([]);
      const binding = one(objects, 'ClusterRoleBinding') as KubeObject & {
        subjects: Array<{ kind: string; name: string; namespace: string }>;
        roleRef: { name: string };
      };
      expect(binding.subjects).toEqual([
        { kind: 'ServiceAccount', name: one(objects, 'ServiceAccount').metadata.name, namespace: 'vertex-system' },
      ]);
      expect(binding.roleRef.name).toBe(one(objects, 'ClusterRole').metadata.name);
    });

    const canonical = join(REPO_ROOT, 'deploy', 'rbac', 'clusterrole.yaml');
    it('grants, with every mode on, exactly what deploy/rbac/clusterrole.yaml (the canonical role) lists', async () => {
      const file = parseKubeYaml(readFileSync(canonical, 'utf8'));
      await validateKubeObjects(file);
      const role = file.find((o) => o.kind === 'ClusterRole') as KubeObject & {
        rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
      };
      const allowed = new Set(
        role.rules.flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${r.apiGroups.join(',') || 'core'}:${res}:${v}`))),
      );
      const chart = rulesFor([
        'config.kubernetes.namespaceLabels=watch',
        'config.kubernetes.tokenReview=true',
        'config.kubernetes.uidRevocation=serviceAccountsAndPods',
      ]).flatMap((r) => {
        const [group, resources, verbs] = r.split(':') as [string, string, string];
        return resources.split(',').flatMap((res) => verbs.split(',').map((v) => `${group}:${res}:${v}`));
      });
      expect(new Set(chart)).toEqual(allowed);
    });
  });

  describe('the runtime environment', () => {
    const envOf = (objects: KubeObject[]) =>
      Object.fromEntries(
        (
          (one(objects, 'Deployment') as Deployment).spec.template.spec.containers[0] as Container & {
            env: Array<{ name: string; value: string }>;
          }
        ).env.map((e) => [e.name, e.value]),
      );

    it('sets the V8 heap and young generation from the values, and glibc malloc trim threshold unless it is 0', () => {
      expect(envOf(render([]))).toMatchObject({
        NODE_OPTIONS: '--max-old-space-size=256 --max-semi-space-size=4',
        GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=131072',
      });
      const off = envOf(render(['--set', 'mallocTrimThresholdBytes=0', '--set', 'maxSemiSpaceMiB=16']));
      expect(off.NODE_OPTIONS).toBe('--max-old-space-size=256 --max-semi-space-size=16');
      expect(off).not.toHaveProperty('GLIBC_TUNABLES');
    });

    it("puts V8's old-generation floor on node's command line (NODE_OPTIONS refuses it), the image's default, or none for 0", () => {
      const commandOf = (objects: KubeObject[]) =>
        ((one(objects, 'Deployment') as Deployment).spec.template.spec.containers[0] as Container).command;
      const command = commandOf(render([]));
      expect(command).toEqual(['node', '--initial-old-space-size=64', 'dist/cli.js']);
      // The image's ENTRYPOINT carries the same default, so `docker run` and the chart start the same process.
      expect(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8')).toContain(
        `ENTRYPOINT ${JSON.stringify(command).replace(/","/g, '", "')}`,
      );
      // Node itself accepts the flag outside NODE_OPTIONS (a typo would stop the pod at start).
      const node = runTool(process.execPath, [command[1]!, '-e', '0']);
      expect(node.stderr).toBe('');
      expect(node.status).toBe(0);
      expect(commandOf(render(['--set', 'initialHeapMiB=0']))).toEqual(['node', 'dist/cli.js']);
      expect(renderError(['--set', 'initialHeapMiB=-1'])).toMatch(/initialHeapMiB/);
    });
  });

  describe('Google identity, audit store and callbacks settings', () => {
    it('annotates the ServiceAccount for Workload Identity, or not at all for a WIF principal', () => {
      const gke = render(['-f', join(CHART, 'ci', 'gke-workload-identity-values.yaml')]);
      expect(one(gke, 'ServiceAccount').metadata.annotations).toEqual({
        'iam.gke.io/gcp-service-account': 'vertex-proxy@acme-ml-prod.iam.gserviceaccount.com',
      });
      const wif = render(['-f', join(CHART, 'ci', 'wif-principal-values.yaml')]);
      expect(one(wif, 'ServiceAccount').metadata.annotations).toBeUndefined();
      expect(one(wif, 'ServiceAccount').metadata.name).toBe('kube-vertex-proxy');
    });

    it('reads the PostgreSQL audit URL from a Secret mounted read-only, never from the ConfigMap', () => {
      const objects = render([
        '--set',
        'auditPostgres.existingSecret=kvp-audit-postgres',
        '--set',
        'networkPolicy.egressTargets[0]=10.20.0.5:5432',
      ]);
      const pod = (one(objects, 'Deployment') as Deployment).spec.template.spec;
      const volume = pod.volumes.find((v) => v.secret?.secretName === 'kvp-audit-postgres');
      expect(volume).toBeDefined();
      const mount = pod.containers[0]!.volumeMounts.find((m) => m.name === volume!.name);
      expect(mount?.readOnly).toBe(true);
      const sinks = configOf(objects).audit.sinks as Array<Record<string, string>>;
      expect(sinks.at(-1)).toEqual({ type: 'postgres', urlFile: `${mount!.mountPath}/url` });
      expect(JSON.stringify(configOf(objects))).not.toContain('postgres://');
      // The shared store replaces the per-pod SQLite file of the default values (lost with its pod, one more commit per request).
      expect(sinks.map((sink) => sink.type)).toEqual(['stdout', 'postgres']);
    });

    it('keeps the SQLite sink next to PostgreSQL only when asked (auditPostgres.keepSqlite)', () => {
      const objects = render([
        '--set',
        'auditPostgres.existingSecret=kvp-audit-postgres',
        '--set',
        'networkPolicy.egressTargets[0]=10.20.0.5:5432',
        '--set',
        'auditPostgres.keepSqlite=true',
      ]);
      expect((configOf(objects).audit.sinks as Array<{ type: string }>).map((sink) => sink.type)).toEqual(['stdout', 'sqlite', 'postgres']);
    });

    type Rule = {
      to?: Array<Record<string, any>>;
      from?: Array<Record<string, any>>;
      ports: Array<{ port: number | string; protocol: string }>;
    };
    const policyOf = (objects: KubeObject[]) =>
      (one(objects, 'NetworkPolicy') as KubeObject & { spec: { ingress: Rule[]; egress: Rule[] } }).spec;
    const nsPeer = (ns: string) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } });

    it('derives NetworkPolicy egress to the PostgreSQL audit store from networkPolicy.egressTargets (its URL is in a Secret)', () => {
      const spec = policyOf(render(['-f', join(CHART, 'ci', 'gke-workload-identity-values.yaml')]));
      expect(spec.egress).toContainEqual({ to: [{ ipBlock: { cidr: '10.20.0.5/32' } }], ports: [{ port: 5432, protocol: 'TCP' }] });
      const inCluster = policyOf(
        render(['--set', 'auditPostgres.existingSecret=s', '--set', 'networkPolicy.egressTargets[0]=postgres.db.svc.cluster.local:5432']),
      );
      expect(inCluster.egress).toContainEqual({ to: [nsPeer('db')], ports: [{ port: 5432, protocol: 'TCP' }] });
    });

    it('derives egress from an inline PostgreSQL URL, with its port (default 5432)', () => {
      const spec = policyOf(
        render([
          '--set',
          'config.audit.sinks[0].type=stdout',
          '--set',
          'config.audit.sinks[1].type=postgres',
          '--set',
          'config.audit.sinks[1].url=postgres://kvp@pg.audit.svc/kvp',
        ]),
      );
      expect(spec.egress).toContainEqual({ to: [nsPeer('audit')], ports: [{ port: 5432, protocol: 'TCP' }] });
    });

    it('derives egress to each callback backend and ingress from its namespace to the admin port (the JWKS)', () => {
      const spec = policyOf(render(['-f', join(CHART, 'ci', 'wif-principal-values.yaml')]));
      expect(spec.egress).toContainEqual({ to: [nsPeer('ml')], ports: [{ port: 8080, protocol: 'TCP' }] });
      expect(spec.ingress).toContainEqual({ from: [nsPeer('ml')], ports: [{ port: 'admin', protocol: 'TCP' }] });
      // A backend by IP, and one whose DNS name a NetworkPolicy cannot select, given its peers by hand.
      const byHand = policyOf(
        render([
          '-f',
          join(CHART, 'ci', 'wif-principal-values.yaml'),
          '--set',
          'config.callbacks.routes[0].upstream=https://10.1.2.3',
          '--set-json',
          'config.callbacks.routes[1]={"prefix":"/callbacks/eval","upstream":"http://eval.example.com:9000",' +
            '"callers":["a@p.iam.gserviceaccount.com"]}',
          '--set-json',
          'networkPolicy.peersByHost={"eval.example.com":[{"ipBlock":{"cidr":"192.168.5.0/24"}}]}',
        ]),
      );
      expect(byHand.egress).toContainEqual({ to: [{ ipBlock: { cidr: '10.1.2.3/32' } }], ports: [{ port: 443, protocol: 'TCP' }] });
      expect(byHand.egress).toContainEqual({ to: [{ ipBlock: { cidr: '192.168.5.0/24' } }], ports: [{ port: 9000, protocol: 'TCP' }] });
      expect(byHand.ingress).toContainEqual({
        from: [{ ipBlock: { cidr: '192.168.5.0/24' } }],
        ports: [{ port: 'admin', protocol: 'TCP' }],
      });
    });

    it('mounts the callback assertion key from a Secret and points the config at it', () => {
      const objects = render(['-f', join(CHART, 'ci', 'wif-principal-values.yaml')]);
      const pod = (one(objects, 'Deployment') as Deployment).spec.template.spec;
      const mount = pod.containers[0]!.volumeMounts.find((m) => m.name === 'callback-assertion-key');
      expect(mount?.readOnly).toBe(true);
      expect(configOf(objects).callbacks.assertion.keyFile).toBe(`${mount!.mountPath}/key.pem`);
    });

    it('renders teamIdentities as one vertex.identities entry per namespace', () => {
      const objects = render([
        '--set',
        'teamIdentities.web=team-web@acme-ml.iam.gserviceaccount.com',
        '--set',
        'teamIdentities.ml=team-ml@acme-ml.iam.gserviceaccount.com',
      ]);
      expect((configOf(objects) as unknown as { vertex: { identities: unknown } }).vertex.identities).toEqual([
        { subjects: { namespaces: ['ml'] }, serviceAccount: 'team-ml@acme-ml.iam.gserviceaccount.com' },
        { subjects: { namespaces: ['web'] }, serviceAccount: 'team-web@acme-ml.iam.gserviceaccount.com' },
      ]);
    });

    it('renders an optional ServiceMonitor for the admin port', () => {
      expect(render([]).some((o) => o.kind === 'ServiceMonitor')).toBe(false);
      const monitor = one(render(['--set', 'serviceMonitor.enabled=true']), 'ServiceMonitor') as KubeObject & {
        spec: { endpoints: Array<{ port: string; path: string }> };
      };
      expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'admin', path: '/metrics' })]);
    });

    it('uses the image digest when one is given, else the tag (default: appVersion)', () => {
      const image = (args: string[]) => (one(render(args), 'Deployment') as Deployment).spec.template.spec.containers[0]!.image;
      const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string };
      expect(image([])).toBe(`ghcr.io/example/kube-vertex-proxy:${chart.appVersion}`);
      expect(image(['--set', `image.digest=sha256:${'a'.repeat(64)}`])).toBe(`ghcr.io/example/kube-vertex-proxy@sha256:${'a'.repeat(64)}`);
    });
  });

  describe('refuses values that would break the service (render fails)', () => {
    it.each([
      {
        what: "an unknown config field (the schema generated from the proxy's)",
        args: ['--set', 'config.server.bogus=1'],
        message: 'bogus',
      },
      {
        what: 'a namespaceLabels mode the proxy does not know',
        args: ['--set', 'config.kubernetes.namespaceLabels=sometimes'],
        message: 'namespaceLabels',
      },
      { what: 'a symmetric JWT algorithm', args: ['--set', 'config.issuers[0].algorithms[0]=HS256'], message: 'algorithms' },
      { what: 'an unknown chart value', args: ['--set', 'replicaCout=3'], message: 'replicaCout' },
      { what: 'a PDB that allows every replica to go', args: ['--set', 'podDisruptionBudget.maxUnavailable=2'], message: 'maxUnavailable' },
      {
        what: 'a grace period shorter than the preStop pause',
        args: ['--set', 'terminationGracePeriodSeconds=5'],
        message: 'terminationGracePeriodSeconds',
      },
      {
        what: 'a grace period longer than the preStop pause but not than pause + shutdownGrace',
        args: ['--set', 'terminationGracePeriodSeconds=10'],
        message: 'plus config.server.shutdownGrace (25s)',
      },
      {
        what: 'a shutdownGrace the grace period does not cover',
        args: ['--set', 'config.server.shutdownGrace=2m'],
        message: 'config.server.shutdownGrace (120s)',
      },
      {
        what: 'a PostgreSQL URL in a Secret with no NetworkPolicy destination for it',
        args: ['--set', 'auditPostgres.existingSecret=kvp-audit-postgres'],
        message: 'networkPolicy.egressTargets',
      },
      {
        what: 'a callback backend whose DNS name a NetworkPolicy cannot select, without peersByHost',
        args: [
          '-f',
          join(CHART, 'ci', 'wif-principal-values.yaml'),
          '--set',
          'config.callbacks.routes[0].upstream=https://trainer.example.com',
        ],
        message: 'networkPolicy.peersByHost',
      },
      {
        what: 'a Google service account that is not one',
        args: ['--set', 'serviceAccount.gcpServiceAccount=me@gmail.com'],
        message: 'gcpServiceAccount',
      },
      {
        what: 'a team identity that is not a Google service account',
        args: ['--set', 'teamIdentities.ml=me@gmail.com'],
        message: 'teamIdentities',
      },
      {
        what: 'callback routes on several replicas, each with its own generated assertion key',
        args: [
          '--set',
          'config.callbacks.routes[0].prefix=/callbacks/training',
          '--set',
          'config.callbacks.routes[0].upstream=http://trainer.ml.svc.cluster.local:8080',
          '--set',
          'config.callbacks.routes[0].callers[0]=trainer@p.iam.gserviceaccount.com',
        ],
        message: 'callbackAssertionKey.existingSecret',
      },
    ])('$what', ({ args, message }) => {
      expect(renderError(args)).toContain(message);
    });
  });

  describe('the install steps (docs/install.md)', () => {
    it('give values (my-values.yaml) that render, validate, and pass `check` once the placeholders are filled in', async () => {
      const install = readFileSync(join(REPO_ROOT, 'docs', 'install.md'), 'utf8');
      const block = /```yaml\n\s*# my-values\.yaml\n([\s\S]*?)```/.exec(install)?.[1];
      expect(block, 'docs/install.md: the my-values.yaml example').toBeDefined();
      const filled = block!
        .split('\n')
        .map((l) => l.replace(/^ {3}/, ''))
        .join('\n')
        .replaceAll('REGISTRY', 'us-docker.pkg.dev/acme-ml/platform')
        .replaceAll('PROJECT', 'acme-ml')
        .replaceAll('LOCATION', 'us-central1')
        .replaceAll('CLUSTER', 'prod');
      const dir = mkdtempSync(join(tmpdir(), 'kvp-readme-'));
      writeFileSync(join(dir, 'my-values.yaml'), filled);
      const objects = render(['-f', join(dir, 'my-values.yaml')]);
      await validateKubeObjects(objects);
      expect(one(objects, 'ServiceAccount').metadata.annotations?.['iam.gke.io/gcp-service-account']).toBe(
        'vertex-proxy@acme-ml.iam.gserviceaccount.com',
      );
      // The names the README (and deploy/gcloud/setup.sh's defaults) use: release kube-vertex-proxy in vertex-system.
      expect(one(objects, 'ServiceAccount').metadata.name).toBe('kube-vertex-proxy');
      expect(one(objects, 'Deployment').metadata.name).toBe('kube-vertex-proxy');
      const service = one(objects, 'Service') as KubeObject & { spec: { ports: Array<{ name: string; port: number }> } };
      expect(service.metadata.name).toBe('kube-vertex-proxy');
      expect(service.spec.ports.find((p) => p.name === 'http')?.port).toBe(80);
      writeFileSync(
        join(dir, 'config.yaml'),
        (one(objects, 'ConfigMap') as KubeObject & { data: Record<string, string> }).data['config.yaml'] as string,
      );
      const check = await runCli(['check', '--config', join(dir, 'config.yaml')]);
      expect(check.code, check.stderr).toBe(0);
    });
  });

  describe('the install notes (NOTES.txt)', () => {
    // helm template does not print NOTES.txt; a copy of the chart with one more template that includes it does.
    const notes = (args: readonly string[]): string => {
      const copy = join(mkdtempSync(join(tmpdir(), 'kvp-notes-')), 'chart');
      cpSync(CHART, copy, { recursive: true });
      writeFileSync(
        join(copy, 'templates', 'zz-notes.yaml'),
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include ' +
          '"kube-vertex-proxy/templates/NOTES.txt" . | toJson }}\n',
      );
      const result = runTool(helm, [
        'template',
        'kube-vertex-proxy',
        copy,
        '--namespace',
        'vertex-system',
        '--show-only',
        'templates/zz-notes.yaml',
        ...args,
      ]);
      if (result.status !== 0) throw new Error(result.stderr);
      return (parse(result.stdout) as { data: { notes: string } }).data.notes;
    };

    it('say how can-i gets namespace labels under `watch`, and only then', () => {
      expect(notes([])).toContain("can-i reads the namespace's labels from the Kubernetes API");
      expect(notes(['-f', join(CHART, 'ci', 'single-replica-values.yaml')])).not.toContain('can-i reads');
    });

    it('warn about a PostgreSQL password written inline in config, and not about one without a password', () => {
      const inline = [
        '--set',
        'config.audit.sinks[0].type=postgres',
        '--set',
        'config.audit.sinks[0].url=postgres://kvp:s3cret@10.0.0.5/audit',
      ];
      expect(notes(inline)).toContain('WARNING: config.audit.sinks has a PostgreSQL URL with a password written inline');
      expect(
        notes(['--set', 'config.audit.sinks[0].type=postgres', '--set', 'config.audit.sinks[0].url=postgres://kvp@10.0.0.5/audit']),
      ).not.toContain('password written inline');
    });
  });

  describe('values.yaml', () => {
    it('documents every field (a comment above the field or above one of its parents)', () => {
      const lines = readFileSync(join(CHART, 'values.yaml'), 'utf8').split('\n');
      const undocumented: string[] = [];
      const stack: Array<{ indent: number; documented: boolean }> = [];
      lines.forEach((line, i) => {
        const match = /^(\s*)(-\s+)?([A-Za-z][\w.-]*):/.exec(line);
        if (!match || line.trim().startsWith('#')) return;
        const indent = (match[1] as string).length + (match[2]?.length ?? 0);
        while (stack.length > 0 && stack.at(-1)!.indent >= indent) stack.pop();
        const previous =
          lines
            .slice(0, i)
            .reverse()
            .find((l) => l.trim() !== '') ?? '';
        const documented = previous.trim().startsWith('#') || stack.some((s) => s.documented);
        // Leaves (a value on the line) must be documented; a parent is documented through its leaves.
        const isLeaf = line.slice(match[0].length).trim() !== '';
        if (isLeaf && !documented) undocumented.push(`${i + 1}: ${line.trim()}`);
        stack.push({ indent, documented });
      });
      expect(undocumented).toEqual([]);
    });
  });
});
