/**
 * GKE metadata server stand-in on loopback
 * (https://cloud.google.com/compute/docs/metadata/querying-metadata,
 * https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity): what a
 * pod with Workload Identity sees at `http://metadata.google.internal/computeMetadata/v1/`.
 *
 * - Every request needs `Metadata-Flavor: Google`, else 403 with the real body
 *   text; 2xx answers carry `Metadata-Flavor: Google` and
 *   `Server: GKE Metadata Server` (gcp-metadata rejects answers without the former).
 * - `instance/service-accounts/default/token[?scopes=…]` returns
 *   `{"access_token":"ya29.…","expires_in":N,"token_type":"Bearer"}`, a new
 *   distinct token each time, recorded in {@link MetadataStandIn.issuedTokens}.
 * - `…/identity?audience=…` returns a Google-signed ID token as text. The query
 *   is parsed leniently because google-auth-library concatenates the audience
 *   unencoded. Without a GSA annotation GKE answers 404 with its own text.
 * - `email`, `scopes`, `aliases`, directory listings, `project/*`,
 *   `instance/attributes/cluster-*`, `instance/{hostname,id,zone}` as text.
 *
 * google-auth-library finds it through {@link metadataEnv}.
 *
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startIssuer, type IssuerStandIn } from './issuer.js';
import { listenLoopback } from './loopback.js';

export interface MetadataServerOptions {
  /** Loopback address; default `127.0.0.1`. */
  readonly host?: string;
  /** Default 0 (a free port). */
  readonly port?: number;
  /** Default `demo-project`. */
  readonly projectId?: string;
  /** Default `123456789012`. */
  readonly numericProjectId?: string;
  /**
   * The Google service account the pod's KSA is annotated with
   * (`iam.gke.io/gcp-service-account`). Default
   * `kube-vertex-proxy@{projectId}.iam.gserviceaccount.com`.
   */
  readonly email?: string;
  /**
   * False models a KSA without that annotation (a federated principal only):
   * `email` answers `{projectId}.svc.id.goog` and `identity` answers GKE's 404.
   * Default true.
   */
  readonly gsaAnnotated?: boolean;
  /** The pod's KSA, named in GKE's 404 text. Default `vertex-system/kube-vertex-proxy`. */
  readonly kubernetesServiceAccount?: { readonly namespace: string; readonly name: string };
  /** Access tokens are `{tokenPrefix}{n}.{random}`; default `ya29.stand-in-`. */
  readonly tokenPrefix?: string;
  /** `expires_in` of every token, seconds; default 3599. */
  readonly expiresIn?: number;
  /** Holds the first token answer this long: the slow first seconds of a GKE pod. */
  readonly delayFirstTokenMs?: number;
  /** Signs ID tokens (kind `google`). Default: one started and closed with this server. */
  readonly idTokenIssuer?: IssuerStandIn;
  /** Default `demo-cluster`. */
  readonly clusterName?: string;
  /** Default `us-central1`. */
  readonly clusterLocation?: string;
  /** Default `us-central1-a`. */
  readonly zone?: string;
}

export interface MetadataStandIn {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** `127.0.0.1:PORT`, the value for `GCE_METADATA_HOST`. */
  readonly hostPort: string;
  readonly projectId: string;
  readonly numericProjectId: string;
  /** What `…/service-accounts/default/email` answers. */
  readonly email: string;
  /** An empty directory (removed on close) to use as `HOME`, so no gcloud ADC file is found. */
  readonly emptyHome: string;
  /** Signs the ID tokens; undefined when the KSA has no GSA annotation and none was given. */
  readonly idTokenIssuer: IssuerStandIn | undefined;
  /** Every access token handed out, in order. */
  readonly issuedTokens: readonly string[];
  /** Token requests received with the right header (answered or failed). */
  readonly tokenRequests: number;
  /** The `scopes` asked for by each token request (empty when none were given). */
  readonly tokenScopes: ReadonlyArray<readonly string[]>;
  /** ID-token requests received with the right header. */
  readonly identityRequests: number;
  /** When false, token and identity requests answer 503 (the credential failure path). */
  setAvailable(available: boolean): void;
  close(): Promise<void>;
}

const BASE = '/computeMetadata/v1';
const FLAVOR_403 = 'Missing required header "Metadata-Flavor": "Google"';
const SCOPES = ['https://www.googleapis.com/auth/cloud-platform', 'https://www.googleapis.com/auth/userinfo.email'];

/**
 * Starts the metadata stand-in.
 *
 * @throws TypeError for a non-loopback host.
 */
export async function startMetadataServer(options: MetadataServerOptions = {}): Promise<MetadataStandIn> {
  const projectId = options.projectId ?? 'demo-project';
  const numericProjectId = options.numericProjectId ?? '123456789012';
  const annotated = options.gsaAnnotated ?? true;
  const gsaEmail = options.email ?? `kube-vertex-proxy@${projectId}.iam.gserviceaccount.com`;
  const email = annotated ? gsaEmail : `${projectId}.svc.id.goog`;
  const ksa = options.kubernetesServiceAccount ?? { namespace: 'vertex-system', name: 'kube-vertex-proxy' };
  const tokenPrefix = options.tokenPrefix ?? 'ya29.stand-in-';
  const expiresIn = options.expiresIn ?? 3599;
  const clusterLocation = options.clusterLocation ?? 'us-central1';
  const zone = options.zone ?? `${clusterLocation}-a`;
  const instanceId = String(BigInt(`0x${randomBytes(8).toString('hex')}`) % 10n ** 19n);
  const hostname = `gke-${options.clusterName ?? 'demo-cluster'}-default-pool-${randomBytes(4).toString('hex')}`;

  const ownIssuer = annotated && options.idTokenIssuer === undefined ? await startIssuer({ kind: 'google' }) : undefined;
  const idTokenIssuer = options.idTokenIssuer ?? ownIssuer;
  const emptyHome = await mkdtemp(join(tmpdir(), 'kvp-metadata-home-'));

  // Text values by path under /computeMetadata/v1/. Directories end in '/'.
  const values = new Map<string, string>([
    ['', 'instance/\nproject/\n'],
    ['instance', 'attributes/\nhostname\nid\nservice-accounts/\nzone\n'],
    ['instance/', 'attributes/\nhostname\nid\nservice-accounts/\nzone\n'],
    ['instance/hostname', hostname],
    ['instance/id', instanceId],
    ['instance/zone', `projects/${numericProjectId}/zones/${zone}`],
    ['instance/attributes/', 'cluster-location\ncluster-name\ncluster-uid\n'],
    ['instance/attributes/cluster-name', options.clusterName ?? 'demo-cluster'],
    ['instance/attributes/cluster-location', clusterLocation],
    ['instance/attributes/cluster-uid', randomBytes(32).toString('hex')],
    ['instance/service-accounts/', `default/\n${email}/\n`],
    ['project/', 'numeric-project-id\nproject-id\n'],
    ['project/project-id', projectId],
    ['project/numeric-project-id', numericProjectId],
  ]);
  for (const account of ['default', email]) {
    const base = `instance/service-accounts/${account}`;
    values.set(`${base}/`, 'aliases\nemail\nidentity\nscopes\ntoken\n');
    values.set(`${base}/aliases`, 'default\n');
    values.set(`${base}/email`, email);
    values.set(`${base}/scopes`, `${SCOPES.join('\n')}\n`);
  }

  let available = true;
  let tokenRequests = 0;
  let identityRequests = 0;
  let firstTokenPending = (options.delayFirstTokenMs ?? 0) > 0;
  const issuedTokens: string[] = [];
  const tokenScopes: string[][] = [];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.headers['metadata-flavor'] !== 'Google') {
      sendText(res, 403, FLAVOR_403, 'text/plain; charset=utf-8');
      return;
    }
    const rawUrl = req.url ?? '/';
    const queryAt = rawUrl.indexOf('?');
    const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    const query = queryAt === -1 ? '' : rawUrl.slice(queryAt + 1);
    if (path !== BASE && !path.startsWith(`${BASE}/`)) {
      notFound(res);
      return;
    }
    if (req.method !== 'GET') {
      sendText(res, 405, 'Method Not Allowed\n', 'text/plain; charset=utf-8');
      return;
    }
    const key = path === BASE ? undefined : path.slice(BASE.length + 1);
    if (key === undefined || (key !== 'instance' && !key.endsWith('/') && values.has(`${key}/`))) {
      // Directories without their trailing slash redirect, as on GCE/GKE; `instance`
      // itself answers 200 because gcp-metadata's detection pings exactly that path.
      res.writeHead(301, { Location: `${path}/${queryAt === -1 ? '' : `?${query}`}` });
      res.end();
      return;
    }
    const account = /^instance\/service-accounts\/([^/]+)\/(token|identity)$/.exec(key);
    if (account && (account[1] === 'default' || account[1] === email)) {
      if (account[2] === 'token') await answerToken(res, new URLSearchParams(query));
      else answerIdentity(res, query);
      return;
    }
    const value = values.get(key);
    if (value === undefined) {
      notFound(res);
      return;
    }
    sendOk(res, value, 'application/text');
  }

  async function answerToken(res: ServerResponse, params: URLSearchParams): Promise<void> {
    tokenRequests++;
    tokenScopes.push(
      (params.get('scopes') ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    );
    if (firstTokenPending) {
      firstTokenPending = false;
      await sleep(options.delayFirstTokenMs ?? 0);
    }
    if (!available) {
      sendText(res, 503, 'Service Unavailable\n', 'text/plain; charset=utf-8');
      return;
    }
    const token = `${tokenPrefix}${issuedTokens.length + 1}.${randomBytes(24).toString('base64url')}`;
    issuedTokens.push(token);
    sendOk(res, JSON.stringify({ access_token: token, expires_in: expiresIn, token_type: 'Bearer' }), 'application/json');
  }

  function answerIdentity(res: ServerResponse, query: string): void {
    identityRequests++;
    const { audience, format } = parseIdentityQuery(query);
    if (audience === undefined || audience === '') {
      sendText(res, 400, 'non-empty audience parameter required\n', 'text/plain; charset=utf-8');
      return;
    }
    if (!available) {
      sendText(res, 503, 'Service Unavailable\n', 'text/plain; charset=utf-8');
      return;
    }
    if (!annotated || idTokenIssuer === undefined) {
      sendText(
        res,
        404,
        `Your Kubernetes service account (${ksa.namespace}/${ksa.name}) is not annotated with a target Google service ` +
          `account, which is a requirement for retrieving Identity Tokens using Workload Identity. Please add the ` +
          `iam.gke.io/gcp-service-account=[GSA_NAME]@[PROJECT_ID] annotation to your Kubernetes service account.\n`,
        'text/plain; charset=utf-8',
      );
      return;
    }
    // format=standard (the GCE default) leaves out email and email_verified:
    // https://cloud.google.com/compute/docs/instances/verifying-instance-identity#request_signature
    const full = format === 'full';
    const token = idTokenIssuer.mintGoogleIdToken({
      email: gsaEmail,
      audience,
      ...(!full && { overrideClaims: { email: undefined, email_verified: undefined } }),
    });
    sendOk(res, token, 'application/text');
  }

  const listener = await listenLoopback(handle, {
    ...(options.host !== undefined && { host: options.host }),
    ...(options.port !== undefined && { port: options.port }),
  }).catch(async (error: unknown) => {
    await Promise.all([ownIssuer?.close(), rm(emptyHome, { recursive: true, force: true })]);
    throw error;
  });

  return {
    url: listener.url,
    port: listener.port,
    hostPort: listener.url.replace(/^http:\/\//, ''),
    projectId,
    numericProjectId,
    email,
    emptyHome,
    idTokenIssuer,
    issuedTokens,
    get tokenRequests() {
      return tokenRequests;
    },
    tokenScopes,
    get identityRequests() {
      return identityRequests;
    },
    setAvailable(value) {
      available = value;
    },
    async close() {
      await Promise.all([listener.close(), ownIssuer?.close(), rm(emptyHome, { recursive: true, force: true })]);
    },
  };
}

/**
 * The environment google-auth-library needs to take `server` as its
 * Application Default Credentials on "GKE". Variables that would win over the
 * metadata server are set to the empty string, which google-auth-library 11
 * and gcp-metadata 9 treat as unset (they test them with `||` or a length
 * check): `GCE_METADATA_IP` (over `GCE_METADATA_HOST`), `GCLOUD_PROJECT` (over
 * `GOOGLE_CLOUD_PROJECT`), a credentials file, `CLOUDSDK_CONFIG` (locates the
 * gcloud ADC file, ahead of `HOME`), `GOOGLE_CLOUD_QUOTA_PROJECT`.
 * Spread it over `process.env` for a child process, or `vi.stubEnv` each entry.
 */
export function metadataEnv(server: MetadataStandIn): Record<string, string> {
  return {
    GCE_METADATA_HOST: server.hostPort,
    GCE_METADATA_IP: '',
    // No ping: the library trusts the host above (gcp-metadata `isAvailable`).
    METADATA_SERVER_DETECTION: 'assume-present',
    GOOGLE_CLOUD_PROJECT: server.projectId,
    GCLOUD_PROJECT: '',
    gcloud_project: '',
    google_cloud_project: '',
    GOOGLE_APPLICATION_CREDENTIALS: '',
    google_application_credentials: '',
    CLOUDSDK_CONFIG: '',
    GOOGLE_CLOUD_QUOTA_PROJECT: '',
    HOME: server.emptyHome,
  };
}

/**
 * Reads `audience` and `format` from an identity query. google-auth-library
 * sends `?format=full&audience=${aud}` with the audience unencoded, so an
 * audience may itself contain `&` or `?`: everything after `audience=` up to a
 * following `&format=` / `&licenses=` belongs to it.
 */
export function parseIdentityQuery(query: string): { audience: string | undefined; format: string | undefined } {
  let audience: string | undefined;
  let rest = query;
  const at = /(?:^|&)audience=/.exec(query);
  if (at) {
    const start = at.index + at[0].length;
    const tail = query.slice(start);
    const end = /&(?:format|licenses)=/.exec(tail);
    const raw = end ? tail.slice(0, end.index) : tail;
    rest = query.slice(0, at.index) + (end ? tail.slice(end.index) : '');
    try {
      audience = decodeURIComponent(raw);
    } catch {
      audience = raw;
    }
  }
  const format = new URLSearchParams(rest).get('format') ?? undefined;
  return { audience, format };
}

function sendOk(res: ServerResponse, body: string, contentType: string): void {
  res.writeHead(200, {
    'Content-Type': contentType,
    'Metadata-Flavor': 'Google',
    Server: 'GKE Metadata Server',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function sendText(res: ServerResponse, status: number, body: string, contentType: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function notFound(res: ServerResponse): void {
  sendText(res, 404, '404 page not found\n', 'text/plain; charset=utf-8');
}
