/**
 * A throwaway Kubernetes API server for tests: Debian's `etcd` and a real
 * `kube-apiserver` (built once by scripts/build-kube-apiserver.sh into
 * ~/.cache/kube-vertex-proxy/kube-apiserver-VERSION/), both on 127.0.0.1 and
 * free ports, in one temp directory.
 *
 * The API server is started the way a small self-managed cluster runs it:
 * TLS with a CA generated here (`caFile` is its PEM), a generated
 * service-account signing key, `--service-account-issuer
 * https://127.0.0.1:PORT` (so the API server itself serves the issuer's
 * discovery document and JWKS), `--api-audiences kube-vertex-proxy`, RBAC
 * on, and a static admin token (`system:masters`). Issuer discovery is
 * bound to unauthenticated callers, as clusters that publish their issuer do
 * (https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/#service-account-issuer-discovery).
 *
 * There is no controller manager, scheduler or kubelet: pods are API
 * objects only, service accounts are created explicitly, and a namespace is
 * finalized here after its DELETE (the namespace controller's job).
 *
 * `stop()`/`start()` take the API server down and up again on the same port
 * (etcd keeps running, so its data and resourceVersions survive);
 * `compact()` compacts etcd's history; `close()` stops both and removes the
 * directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { stringify } from 'yaml';
import { freeLoopbackPort } from '../../dev/standins/loopback.js';
import { makeServingCertificates } from './certificates.js';

export const KUBE_VERSION = 'v1.34.2';
export const API_AUDIENCE = 'kube-vertex-proxy';
/**
 * For hooks and tests that start (or restart) the API server: it is ready in about two
 * seconds on an idle machine, many times that on a loaded two-core CI machine. The
 * helper's own waits give up earlier (60 s), so a failed start still cleans up.
 */
export const START_TIMEOUT_MS = 120_000;

export interface ApiResponse<T = Record<string, unknown>> {
  readonly status: number;
  readonly body: T;
}

export interface KubeApiServer {
  /** `https://127.0.0.1:PORT`, also the service-account issuer. */
  readonly url: string;
  readonly issuer: string;
  readonly port: number;
  /** PEM of the CA that signed the serving certificate. */
  readonly caFile: string;
  readonly adminToken: string;
  readonly dir: string;
  /** Writes a kubeconfig for this server with the given bearer token (default: the admin token); returns its path. */
  writeKubeconfig(token?: string): string;
  /** One API call as the admin. */
  api<T = Record<string, unknown>>(method: string, path: string, body?: unknown, contentType?: string): Promise<ApiResponse<T>>;
  createNamespace(name: string, labels?: Record<string, string>): Promise<void>;
  /** Replaces the namespace's labels (a JSON merge patch setting removed keys to null). */
  setNamespaceLabels(name: string, labels: Record<string, string>): Promise<void>;
  /** DELETE, then finalize (no namespace controller runs here); resolves once the namespace is gone. */
  deleteNamespace(name: string): Promise<void>;
  /** Returns the service account's UID. */
  createServiceAccount(namespace: string, name: string): Promise<string>;
  deleteServiceAccount(namespace: string, name: string): Promise<void>;
  /** A pod object (never scheduled) running as the service account; returns its UID. */
  createPod(namespace: string, name: string, serviceAccount: string): Promise<string>;
  deletePod(namespace: string, name: string): Promise<void>;
  /** A token from the TokenRequest API, bound to the pod when given. */
  createToken(
    namespace: string,
    serviceAccount: string,
    options?: { pod?: string; audience?: string; expirationSeconds?: number },
  ): Promise<string>;
  /** Creates or replaces an object (PUT after a 409 on POST) at a collection path. */
  apply(collectionPath: string, object: { metadata: { name: string } } & Record<string, unknown>): Promise<void>;
  /** Stops the API server only (etcd keeps its data). */
  stop(): Promise<void>;
  /** Starts the API server again on the same port and waits for /readyz. */
  start(): Promise<void>;
  /** etcd's current revision (what the next write's resourceVersion will be greater than). */
  revision(): Promise<number>;
  /** Compacts etcd's history up to its current revision; returns that revision. */
  compact(): Promise<number>;
  /** Stops both processes and removes the directory. */
  close(): Promise<void>;
}

export interface KubeApiServerOptions {
  /**
   * Serve watches from the API server's watch cache (the default, as in
   * production) or straight from etcd. Without the cache a watch resumed
   * after an API server restart is replayed from etcd's history, and a
   * resourceVersion older than etcd's compaction gets 410 Gone.
   */
  readonly watchCache?: boolean;
}

/** The cached kube-apiserver binary; fails with the command that builds it. */
export function findKubeApiServer(): string {
  const bin = join(
    process.env.KVP_KUBE_APISERVER_DIR ?? join(homedir(), '.cache', 'kube-vertex-proxy', `kube-apiserver-${KUBE_VERSION}`),
    'kube-apiserver',
  );
  if (existsSync(bin)) return bin;
  throw new Error(`kube-apiserver ${KUBE_VERSION} is not built: run \`bash scripts/build-kube-apiserver.sh\` (npm test's pretest does)`);
}

function findEtcd(): string {
  const probe = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  const path = probe.stdout.trim();
  if (probe.status === 0 && path !== '') return path;
  throw new Error("etcd not found: install it with `apt-get install etcd-server` (npm test's pretest does)");
}

async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const apiserverBin = findKubeApiServer();
  const etcdBin = findEtcd();
  const dir = mkdtempSync(join(tmpdir(), 'kvp-kube-'));
  const [etcdPort, peerPort, port] = [await freeLoopbackPort(), await freeLoopbackPort(), await freeLoopbackPort()];
  const url = `https://127.0.0.1:${port}`;
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const adminToken = randomBytes(24).toString('hex');
  const certs = makeServingCertificates(dir, 'kube-apiserver');
  const saKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.key'), saKey.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'sa.pub'), saKey.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(dir, 'tokens.csv'), `${adminToken},kvp-test-admin,kvp-test-admin,system:masters\n`);
  const dispatcher = new Agent({ connect: { ca: readFileSync(certs.ca, 'utf8') } });

  let etcd: ChildProcess | undefined;
  let apiserver: ChildProcess | undefined;
  let apiserverLog = '';
  let etcdLog = '';
  const cleanup = async () => {
    await stopProcess(apiserver);
    await stopProcess(etcd);
    await dispatcher.close();
    rmSync(dir, { recursive: true, force: true });
  };

  const waitFor = async (
    what: string,
    check: () => Promise<boolean>,
    child: () => ChildProcess | undefined,
    log: () => string,
    timeoutMs = 60_000,
  ) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await check().catch(() => false)) return;
      const c = child();
      if (c && (c.exitCode !== null || c.signalCode !== null))
        throw new Error(`${what} exited (${c.exitCode ?? c.signalCode}):\n${log().slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms:\n${log().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const startEtcd = async () => {
    etcd = spawn(
      etcdBin,
      [
        '--data-dir',
        join(dir, 'etcd'),
        '--listen-client-urls',
        etcdUrl,
        '--advertise-client-urls',
        etcdUrl,
        '--listen-peer-urls',
        `http://127.0.0.1:${peerPort}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${peerPort}`,
        '--initial-cluster',
        `default=http://127.0.0.1:${peerPort}`,
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const collect = (c: Buffer) => (etcdLog = (etcdLog + c.toString()).slice(-64_000));
    etcd.stdout!.on('data', collect);
    etcd.stderr!.on('data', collect);
    await waitFor(
      'etcd',
      async () => (await fetch(`${etcdUrl}/health`)).ok,
      () => etcd,
      () => etcdLog,
    );
  };

  const args = [
    '--etcd-servers',
    etcdUrl,
    '--bind-address',
    '127.0.0.1',
    '--advertise-address',
    '127.0.0.1',
    '--secure-port',
    String(port),
    '--tls-cert-file',
    certs.cert,
    '--tls-private-key-file',
    certs.key,
    '--client-ca-file',
    certs.ca,
    '--service-account-issuer',
    url,
    '--service-account-key-file',
    join(dir, 'sa.pub'),
    '--service-account-signing-key-file',
    join(dir, 'sa.key'),
    '--api-audiences',
    API_AUDIENCE,
    '--token-auth-file',
    join(dir, 'tokens.csv'),
    '--authorization-mode',
    'RBAC',
    '--service-cluster-ip-range',
    '10.0.0.0/24',
    '--cert-dir',
    join(dir, 'certs'),
    '--profiling=false',
    ...(options.watchCache === false ? ['--watch-cache=false'] : []),
  ];

  const admin = async <T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse<T>> => {
    const response = await fetch(`${url}${path}`, {
      method,
      dispatcher,
      headers: {
        authorization: `Bearer ${adminToken}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': contentType }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: (text === '' ? {} : JSON.parse(text)) as T };
  };

  const startApiServer = async () => {
    apiserverLog = '';
    apiserver = spawn(apiserverBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (c: Buffer) => (apiserverLog = (apiserverLog + c.toString()).slice(-64_000));
    apiserver.stdout!.on('data', collect);
    apiserver.stderr!.on('data', collect);
    let lastReadyz = '';
    await waitFor(
      'kube-apiserver',
      async () => {
        const response = await fetch(`${url}/readyz?verbose`, { dispatcher, headers: { authorization: `Bearer ${adminToken}` } });
        lastReadyz = await response.text();
        return response.status === 200;
      },
      () => apiserver,
      () =>
        `${apiserverLog}\n/readyz: ${lastReadyz
          .split('\n')
          .filter((l) => l.includes('failed'))
          .join('\n')}`,
    );
  };

  const must = async <T>(what: string, response: Promise<ApiResponse<T>>, ok: number[] = [200, 201]): Promise<T> => {
    const r = await response;
    if (!ok.includes(r.status)) throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
    return r.body;
  };

  const apply: KubeApiServer['apply'] = async (collectionPath, object) => {
    const created = await admin('POST', collectionPath, object);
    if (created.status === 201) return;
    if (created.status !== 409)
      throw new Error(
        `create ${collectionPath}/${object.metadata.name}: HTTP ${created.status} ${JSON.stringify(created.body).slice(0, 500)}`,
      );
    const current = await must<{ metadata: { resourceVersion: string } }>('get', admin('GET', `${collectionPath}/${object.metadata.name}`));
    await must(
      'replace',
      admin('PUT', `${collectionPath}/${object.metadata.name}`, {
        ...object,
        metadata: { ...object.metadata, resourceVersion: current.metadata.resourceVersion },
      }),
    );
  };

  try {
    await startEtcd();
    await startApiServer();
    // Issuer discovery for anyone, as clusters that publish their issuer bind it.
    await apply('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'kvp-test-issuer-discovery' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:service-account-issuer-discovery' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' }],
    });
  } catch (error) {
    await cleanup();
    throw error;
  }

  const etcdRevision = async () => {
    const range = (await (
      await fetch(`${etcdUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('/').toString('base64') }) })
    ).json()) as { header: { revision: string } };
    return Number(range.header.revision);
  };

  let kubeconfigs = 0;
  const server: KubeApiServer = {
    url,
    issuer: url,
    port,
    caFile: certs.ca,
    adminToken,
    dir,
    writeKubeconfig(token = adminToken) {
      const path = join(dir, `kubeconfig-${++kubeconfigs}`);
      writeFileSync(
        path,
        stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'test', cluster: { server: url, 'certificate-authority': certs.ca } }],
          users: [{ name: 'test', user: { token } }],
          contexts: [{ name: 'test', context: { cluster: 'test', user: 'test' } }],
          'current-context': 'test',
        }),
      );
      return path;
    },
    api: admin,
    async createNamespace(name, labels = {}) {
      await must(
        `create namespace ${name}`,
        admin('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }),
      );
    },
    async setNamespaceLabels(name, labels) {
      const current = await must<{ metadata: { labels?: Record<string, string> } }>(
        `get namespace ${name}`,
        admin('GET', `/api/v1/namespaces/${name}`),
      );
      const patch: Record<string, string | null> = Object.fromEntries(Object.keys(current.metadata.labels ?? {}).map((k) => [k, null]));
      Object.assign(patch, labels);
      await must(
        `label namespace ${name}`,
        admin('PATCH', `/api/v1/namespaces/${name}`, { metadata: { labels: patch } }, 'application/merge-patch+json'),
      );
    },
    async deleteNamespace(name) {
      await must(`delete namespace ${name}`, admin('DELETE', `/api/v1/namespaces/${name}`), [200, 202]);
      const ns = await admin<{ metadata: Record<string, unknown>; spec?: unknown }>('GET', `/api/v1/namespaces/${name}`);
      if (ns.status === 200) {
        await must(
          `finalize namespace ${name}`,
          admin('PUT', `/api/v1/namespaces/${name}/finalize`, {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: ns.body.metadata,
            spec: { finalizers: [] },
          }),
        );
      }
      const deadline = Date.now() + 10_000;
      while ((await admin('GET', `/api/v1/namespaces/${name}`)).status !== 404) {
        if (Date.now() > deadline) throw new Error(`namespace ${name} still exists`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async createServiceAccount(namespace, name) {
      const sa = await must<{ metadata: { uid: string } }>(
        `create serviceaccount ${namespace}/${name}`,
        admin('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } }),
      );
      return sa.metadata.uid;
    },
    async deleteServiceAccount(namespace, name) {
      await must(`delete serviceaccount ${namespace}/${name}`, admin('DELETE', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}`));
    },
    async createPod(namespace, name, serviceAccount) {
      const pod = await must<{ metadata: { uid: string } }>(
        `create pod ${namespace}/${name}`,
        admin('POST', `/api/v1/namespaces/${namespace}/pods`, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name },
          // Never scheduled (no scheduler or kubelet here): the pod is an API object a token can be bound to.
          spec: {
            serviceAccountName: serviceAccount,
            automountServiceAccountToken: false,
            containers: [{ name: 'main', image: 'example.invalid/none:1' }],
          },
        }),
      );
      return pod.metadata.uid;
    },
    async deletePod(namespace, name) {
      // An unscheduled pod is deleted at once (no kubelet has to confirm it).
      await must(`delete pod ${namespace}/${name}`, admin('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`));
    },
    async createToken(namespace, serviceAccount, options = {}) {
      const spec: Record<string, unknown> = {
        audiences: [options.audience ?? API_AUDIENCE],
        expirationSeconds: options.expirationSeconds ?? 3600,
      };
      if (options.pod !== undefined) {
        const pod = await must<{ metadata: { uid: string } }>(
          `get pod ${options.pod}`,
          admin('GET', `/api/v1/namespaces/${namespace}/pods/${options.pod}`),
        );
        spec.boundObjectRef = { kind: 'Pod', apiVersion: 'v1', name: options.pod, uid: pod.metadata.uid };
      }
      const request = await must<{ status: { token: string } }>(
        `token for ${namespace}/${serviceAccount}`,
        admin('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec,
        }),
      );
      return request.status.token;
    },
    apply,
    async stop() {
      await stopProcess(apiserver);
    },
    async start() {
      await startApiServer();
    },
    revision: etcdRevision,
    async compact() {
      const revision = await etcdRevision();
      const response = await fetch(`${etcdUrl}/v3/kv/compaction`, {
        method: 'POST',
        body: JSON.stringify({ revision: String(revision), physical: true }),
      });
      if (!response.ok) throw new Error(`etcd compaction: HTTP ${response.status} ${await response.text()}`);
      return revision;
    },
    close: cleanup,
  };
  return server;
}
