/**
 * How the proxy reaches the Kubernetes API: an explicit kubeconfig file
 * (`kubernetes.kubeconfig`) when given; otherwise the in-cluster config when
 * running in a pod (KUBERNETES_SERVICE_HOST plus the mounted service-account
 * token and CA); otherwise $KUBECONFIG or ~/.kube/config.
 *
 * Nothing found is an error: no silent guess of `http://localhost:8080`.
 *
 * A kubeconfig's current context names a cluster (server,
 * certificate-authority[-data], insecure-skip-tls-verify, tls-server-name)
 * and a user (token, tokenFile, client-certificate[-data] and
 * client-key[-data], username/password, or an `exec` credential plugin).
 * Fields this loader does not implement (`auth-provider`, `proxy-url`) are
 * refused by name rather than ignored.
 * Format: https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/
 *
 * In: the configured path, the environment. Out: a {@link KubeClient}.
 *
 * @module
 * @throws Error when no configuration is found, the file cannot be read or uses what is not supported (at start only).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { createKubeClient, type ExecConfig, type KubeAuth, type KubeClient, type KubeConnection } from './kube-client.js';

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConfigSource {
  readonly client: KubeClient;
  /** `file:PATH` or `in-cluster`, for logs and /readyz. */
  readonly describe: string;
  readonly server: string;
}

export function loadKubeConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env, inClusterPrefix = ''): KubeConfigSource {
  let describe: string;
  let connection: KubeConnection;
  if (path !== undefined) {
    connection = fromKubeconfigFile(path);
    describe = `file:${path}`;
  } else if (env.KUBERNETES_SERVICE_HOST && existsSync(join(inClusterPrefix, SERVICE_ACCOUNT_DIR, 'token'))) {
    connection = inCluster(env, inClusterPrefix);
    describe = 'in-cluster';
  } else {
    const file = env.KUBECONFIG?.split(':').find((p) => p !== '' && existsSync(p)) ?? join(env.HOME ?? homedir(), '.kube', 'config');
    if (!existsSync(file)) {
      throw new Error('no Kubernetes API configuration: not in a pod, no kubernetes.kubeconfig, no $KUBECONFIG, no ~/.kube/config');
    }
    connection = fromKubeconfigFile(file);
    describe = `file:${file}`;
  }
  return { client: createKubeClient(connection), describe, server: connection.server };
}

/** What a pod is given: https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/#directly-accessing-the-rest-api */
function inCluster(env: NodeJS.ProcessEnv, prefix: string): KubeConnection {
  const host = env.KUBERNETES_SERVICE_HOST as string;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const dir = join(prefix, SERVICE_ACCOUNT_DIR);
  const caFile = join(dir, 'ca.crt');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ...(existsSync(caFile) ? { ca: readFileSync(caFile) } : {}),
    auth: { type: 'tokenFile', path: join(dir, 'token') },
  };
}

type Named<T> = { name?: unknown } & T;
type Fields = Record<string, unknown>;

function fromKubeconfigFile(file: string): KubeConnection {
  const doc = (parse(readFileSync(file, 'utf8')) ?? {}) as Fields;
  const where = `kubeconfig ${file}`;
  const find = (list: unknown, name: unknown, field: string): Fields => {
    const entry = Array.isArray(list) ? (list as Array<Named<Fields>>).find((e) => e.name === name) : undefined;
    const value = entry?.[field];
    if (typeof value !== 'object' || value === null)
      throw new Error(`${where} has no current cluster (${field} "${String(name)}" not found)`);
    return value as Fields;
  };
  const contextName = doc['current-context'];
  if (typeof contextName !== 'string' || contextName === '') throw new Error(`${where} has no current cluster (no current-context)`);
  const context = find(doc.contexts, contextName, 'context');
  const cluster = find(doc.clusters, context.cluster, 'cluster');
  const user = context.user === undefined ? {} : find(doc.users, context.user, 'user');
  const dir = dirname(file);
  // Relative file paths in a kubeconfig are relative to the kubeconfig itself.
  const resolvePath = (p: unknown) => (typeof p === 'string' ? (isAbsolute(p) ? p : join(dir, p)) : undefined);
  const material = (data: unknown, path: unknown): Buffer | undefined => {
    if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64');
    const resolved = resolvePath(path);
    return resolved === undefined ? undefined : readFileSync(resolved);
  };
  for (const unsupported of ['proxy-url'] as const)
    if (cluster[unsupported] !== undefined) throw new Error(`${where}: cluster field ${unsupported} is not supported`);
  if (user['auth-provider'] !== undefined)
    throw new Error(`${where}: user auth-provider is not supported (use an exec credential plugin, e.g. gke-gcloud-auth-plugin)`);
  const server = cluster.server;
  if (typeof server !== 'string' || server === '') throw new Error(`${where} has no current cluster (no server)`);
  const ca = material(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = material(user['client-certificate-data'], user['client-certificate']);
  const key = material(user['client-key-data'], user['client-key']);
  return {
    server,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { clientCertificate: cert }),
    ...(key === undefined ? {} : { clientKey: key }),
    ...(cluster['insecure-skip-tls-verify'] === true ? { insecureSkipTlsVerify: true } : {}),
    ...(typeof cluster['tls-server-name'] === 'string' ? { tlsServerName: cluster['tls-server-name'] } : {}),
    auth: authOf(user, resolvePath),
  };
}

function authOf(user: Fields, resolvePath: (p: unknown) => string | undefined): KubeAuth {
  if (typeof user.token === 'string' && user.token !== '') return { type: 'token', token: user.token };
  const tokenFile = resolvePath(user.tokenFile);
  if (tokenFile !== undefined) return { type: 'tokenFile', path: tokenFile };
  if (typeof user.username === 'string' && typeof user.password === 'string')
    return { type: 'basic', username: user.username, password: user.password };
  const exec = user.exec as Fields | null | undefined;
  if (exec !== undefined && exec !== null) {
    if (typeof exec.command !== 'string') throw new Error('kubeconfig exec credential plugin has no command');
    const config: ExecConfig = {
      apiVersion: typeof exec.apiVersion === 'string' ? exec.apiVersion : 'client.authentication.k8s.io/v1',
      command: exec.command,
      args: Array.isArray(exec.args) ? exec.args.map(String) : [],
      env: Array.isArray(exec.env) ? (exec.env as Fields[]).map((e) => ({ name: String(e.name), value: String(e.value) })) : [],
    };
    return { type: 'exec', exec: config };
  }
  return { type: 'none' };
}
