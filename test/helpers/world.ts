/**
 * The world an integration test runs in: loopback stand-ins for the cluster
 * issuer, the GKE metadata server and Vertex AI, and the real proxy process
 * configured against them.
 */
import { request } from 'node:http';
import { startIssuer, type IssuerStandIn } from '../../dev/standins/issuer.js';
import { metadataEnv, startMetadataServer, type MetadataStandIn } from '../../dev/standins/metadata.js';
import { startVertexStandIn, type VertexStandIn, type VertexStandInOptions } from '../../dev/standins/vertex.js';
import { startProxyProcess, type ProxyProcess } from './proxy-process.js';

export const PROJECT = 'demo-project';
export const LOCATION = 'us-central1';
export const AUDIENCE = 'kube-vertex-proxy';
/** The stand-in's project number (Vertex AI names resources by number in its answers). */
export const PROJECT_NUMBER = '123456789012';
export const PREDICT_PATH = `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890:predict`;

export interface World {
  readonly issuer: IssuerStandIn;
  readonly metadata: MetadataStandIn;
  readonly vertex: VertexStandIn;
  readonly proxy: ProxyProcess;
  /** A token for ml/trainer (namespace labelled team=ml). */
  token(namespace?: string, serviceAccount?: string, extra?: Partial<Parameters<IssuerStandIn['mintKubernetesToken']>[0]>): string;
  call(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  /** Sends the path byte for byte (fetch() would normalize dot segments and backslashes first). */
  raw(
    method: string,
    path: string,
    options?: { token?: string | null; headers?: Record<string, string>; body?: string },
  ): Promise<RawResponse>;
  close(): Promise<void>;
}

export const DEFAULT_RULES = [
  {
    id: 'ml-predict',
    effect: 'allow',
    subjects: { namespaceSelector: { matchLabels: { team: 'ml' } } },
    permissions: ['predict', 'generate'],
    resources: [`projects/${PROJECT}/locations/${LOCATION}/**`],
  },
  {
    id: 'ml-read',
    effect: 'allow',
    subjects: { serviceAccounts: ['ml/*'] },
    permissions: ['read'],
  },
  {
    id: 'no-intern',
    effect: 'deny',
    subjects: { serviceAccounts: ['ml/intern'] },
    permissions: ['*'],
  },
];

/** A request body that fetch sends chunked (no Content-Length): these chunks, one per pull. Send it with `duplex: 'half'`. */
export function chunkedBody(chunks: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  const pending = [...chunks];
  return new ReadableStream({
    pull(controller) {
      const next = pending.shift();
      if (next === undefined) controller.close();
      else controller.enqueue(next);
    },
  });
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export function rawRequest(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface WorldOptions {
  /** Deep-merged over the default config (top-level keys replaced). */
  readonly config?: (defaults: Record<string, unknown>, world: Pick<World, 'issuer' | 'metadata' | 'vertex'>) => Record<string, unknown>;
  readonly env?: Record<string, string>;
  readonly ready?: boolean;
  /** Writes the final config where the test wants it (e.g. a ConfigMap-style symlink layout) and returns the path to start from. */
  readonly writeConfig?: (config: Record<string, unknown>) => string;
  /** Options of the Vertex AI stand-in (e.g. `recordBodies`). */
  readonly vertex?: VertexStandInOptions;
}

export async function startWorld(options: WorldOptions = {}): Promise<World> {
  const issuer = await startIssuer({ kind: 'kubernetes' });
  const metadata = await startMetadataServer({ projectId: PROJECT });
  const vertex = await startVertexStandIn(options.vertex);
  const defaults: Record<string, unknown> = {
    // readyzDetails: tests read the checks' detail (off by default; see the readyz-details regression test).
    server: {
      host: '127.0.0.1',
      port: 0,
      adminHost: '127.0.0.1',
      adminPort: 0,
      bodyLimit: '1MiB',
      shutdownGrace: '2s',
      readyzDetails: true,
    },
    logging: { level: 'info' },
    issuers: [{ name: 'cluster', type: 'kubernetes', issuer: issuer.issuer, audiences: [AUDIENCE] }],
    authentication: { jwks: { minRefreshInterval: '1s' } },
    vertex: {
      projects: [PROJECT, 'other-project'],
      projectNumbers: { [PROJECT]: PROJECT_NUMBER },
      locations: [LOCATION, 'europe-west4', 'global'],
      upstream: vertex.url,
      timeouts: { response: '2s', idle: '2s', connect: '2s' },
    },
    kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' }, web: { team: 'web' } } },
    policy: { rules: DEFAULT_RULES },
  };
  const config = options.config ? options.config(defaults, { issuer, metadata, vertex }) : defaults;
  const proxy = await startProxyProcess({
    config,
    env: { ...metadataEnv(metadata), ...options.env },
    ...(options.writeConfig === undefined ? {} : { configPath: options.writeConfig(config) }),
    ...(options.ready === undefined ? {} : { ready: options.ready }),
  });
  const token: World['token'] = (namespace = 'ml', serviceAccount = 'trainer', extra = {}) =>
    issuer.mintKubernetesToken({ namespace, serviceAccount, audience: AUDIENCE, podName: `${serviceAccount}-0`, ...extra });
  return {
    issuer,
    metadata,
    vertex,
    proxy,
    token,
    call(path, init = {}) {
      const { token: given, ...rest } = init;
      const token = given;
      const mintDefault = () =>
        issuer.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE, podName: 'trainer-0' });
      const headers = new Headers(rest.headers);
      if (token !== null) headers.set('authorization', `Bearer ${token ?? mintDefault()}`);
      if (rest.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
      return fetch(`${proxy.dataUrl}${path}`, { method: rest.body === undefined ? 'GET' : 'POST', ...rest, headers });
    },
    raw(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      if (options.token !== null) headers.authorization = `Bearer ${options.token ?? token()}`;
      if (options.body !== undefined) headers['content-type'] ??= 'application/json';
      return rawRequest(proxy.dataUrl, method, path, headers, options.body);
    },
    async close() {
      await proxy.stop();
      await Promise.all([issuer.close(), metadata.close(), vertex.close()]);
    },
  };
}
