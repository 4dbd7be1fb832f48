/**
 * A Kubernetes API server stand-in on loopback: the subset the proxy uses,
 * in the real JSON (https://kubernetes.io/docs/reference/using-api/api-concepts/,
 * https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-review-v1/), driven in tests through the real
 * `@kubernetes/client-node`.
 *
 * - `GET /api/v1/namespaces[/NAME]`, `GET /api/v1/serviceaccounts`,
 *   `GET /api/v1/pods`: lists with `metadata.resourceVersion` (and
 *   `PartialObjectMetadataList` when the Accept header asks for it), objects,
 *   404 `Status`.
 * - `?watch=true&resourceVersion=N`: status line and headers flushed at once,
 *   then NDJSON events (ADDED/MODIFIED/DELETED) replayed from the history
 *   after N, then live ones. An RV older than the retained history gets HTTP
 *   200, an ERROR event with a 410 `Expired` Status, and the stream closes.
 * - `POST /apis/authentication.k8s.io/v1/tokenreviews`: 201 with the success
 *   shape, or the failure shape (no `authenticated`, `user: {}`, bracketed
 *   `error`): audiences intersected, expiry checked, the bound service
 *   account and pod must still exist with the token's UIDs. The JWT's
 *   signature is not checked here (the proxy has already checked it).
 * - `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`: always
 *   allowed (the stand-in's one identity may do everything).
 * - `POST /apis/authorization.k8s.io/v1/subjectaccessreviews`
 *   (https://kubernetes.io/docs/reference/kubernetes-api/authorization-resources/subject-access-review-v1/):
 *   allowed when a rule given with `grant()` matches the spec's user or one
 *   of its groups, its verb, and its `nonResourceAttributes.path` or
 *   `resourceAttributes` (RBAC's matching: `*` for any, a trailing `*` on a
 *   non-resource URL for a prefix); otherwise `allowed: false`, as RBAC
 *   answers when no role grants it. A spec the API server's validation
 *   refuses (both or neither kind of attributes, no user and no group) is
 *   422 `Invalid` with its message.
 * - Every request needs `Authorization: Bearer <apiToken>` (401 Status otherwise).
 *
 * Test controls: create/relabel/delete namespaces, service accounts and
 * pods; `compact()` + `expireWatches()` (410 on open and resumed watches);
 * `dropWatches()` (connections cut mid-stream); `stop()` / `restart()` on the
 * same port (API server down and back).
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { listenLoopback, readBody, type LoopbackServer } from './loopback.js';

type Resource = 'namespaces' | 'serviceaccounts' | 'pods';

interface StoredObject {
  kind: string;
  apiVersion: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

interface WatchEvent {
  readonly rv: number;
  readonly resource: Resource;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: StoredObject;
}

interface OpenWatch {
  readonly resource: Resource;
  readonly res: ServerResponse;
  readonly req: IncomingMessage;
}

export interface KubeApiStandIn {
  readonly url: string;
  readonly port: number;
  /** The bearer token the proxy must present. */
  readonly apiToken: string;
  /** Every request: method, path, watch flag, Accept header. */
  readonly requests: Array<{ method: string; path: string; watch: boolean; resourceVersion: string | null; accept: string | undefined }>;
  /** Every SubjectAccessReview received: who, which attributes, the answer. */
  readonly subjectAccessReviews: Array<{ user: string; verb: string; path?: string; resource?: string; allowed: boolean }>;
  /** Grants a subject a verb on non-resource URLs or resources (an RBAC role and its binding, in one). */
  grant(rule: AccessRule): void;
  /** Audiences of every TokenReview received (the token itself is not kept). */
  readonly tokenReviews: Array<{ audiences: readonly string[]; authenticated: boolean }>;
  /** A slow API server: each TokenReview is answered this much later (default 0). */
  setTokenReviewDelay(ms: number): void;
  /** The most TokenReviews that were being answered at the same time. */
  readonly maxConcurrentTokenReviews: number;
  /** Writes a kubeconfig pointing at this stand-in; returns its path. */
  writeKubeconfig(dir: string): string;
  setNamespace(name: string, labels?: Record<string, string>): StoredObject;
  deleteNamespace(name: string): void;
  /** Returns the object's UID (`uid` to match one a token already carries). */
  addServiceAccount(namespace: string, name: string, uid?: string): string;
  deleteServiceAccount(namespace: string, name: string): void;
  addPod(namespace: string, name: string, serviceAccount?: string, uid?: string): string;
  deletePod(namespace: string, name: string): void;
  uidOf(resource: Resource, namespace: string, name: string): string | undefined;
  /** Forgets the event history: any watch resumed from an older RV gets 410. */
  compact(): void;
  /** Sends every open watch an ERROR 410 event and closes it (what an apiserver does when the RV expired). */
  expireWatches(): void;
  /** Cuts every open watch connection without a word. */
  dropWatches(): void;
  openWatches(resource?: Resource): number;
  /** API server down: listener closed, every connection cut. */
  stop(): Promise<void>;
  /** Back up on the same port, same state. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** One grant: an RBAC rule bound to a user or a group. `*` in a list matches anything. */
export interface AccessRule {
  readonly user?: string;
  readonly group?: string;
  readonly verbs: readonly string[];
  /** Paths, a trailing `*` for a prefix (RBAC's `nonResourceURLs`). */
  readonly nonResourceURLs?: readonly string[];
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  /** Namespaces the rule applies in (a RoleBinding's); absent: every namespace (a ClusterRoleBinding's). */
  readonly namespaces?: readonly string[];
}

interface AccessSpec {
  user?: string;
  groups?: string[];
  nonResourceAttributes?: { path?: string; verb?: string };
  resourceAttributes?: { namespace?: string; verb?: string; group?: string; resource?: string };
}

const anyOf = (list: readonly string[] | undefined, value: string) => list !== undefined && (list.includes('*') || list.includes(value));

/** The API server's validation of a review's spec (k8s.io/kubernetes/pkg/apis/authorization/validation), as its message says it. */
function invalidAccessSpec(spec: AccessSpec): string | undefined {
  if (spec.resourceAttributes !== undefined && spec.nonResourceAttributes !== undefined)
    return 'spec.nonResourceAttributes: Invalid value: "object": cannot be specified in combination with resourceAttributes';
  if (spec.resourceAttributes === undefined && spec.nonResourceAttributes === undefined)
    return 'spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified';
  if ((spec.user ?? '') === '' && (spec.groups ?? []).length === 0)
    return 'spec.user: Invalid value: "": at least one of user or group must be specified';
  return undefined;
}

/** RBAC's matching of one rule against one review (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac: RuleAllows). */
export function ruleAllows(rule: AccessRule, spec: AccessSpec): boolean {
  const subject =
    (rule.user !== undefined && rule.user === spec.user) || (rule.group !== undefined && (spec.groups ?? []).includes(rule.group));
  if (!subject) return false;
  const nonResource = spec.nonResourceAttributes;
  if (nonResource !== undefined) {
    const path = nonResource.path ?? '';
    return (
      anyOf(rule.verbs, nonResource.verb ?? '') &&
      (rule.nonResourceURLs ?? []).some((u) => u === '*' || u === path || (u.endsWith('*') && path.startsWith(u.slice(0, -1))))
    );
  }
  const r = spec.resourceAttributes;
  if (r === undefined) return false;
  const inNamespace = rule.namespaces === undefined || (r.namespace !== undefined && rule.namespaces.includes(r.namespace));
  return inNamespace && anyOf(rule.verbs, r.verb ?? '') && anyOf(rule.apiGroups, r.group ?? '') && anyOf(rule.resources, r.resource ?? '');
}

export interface KubeApiStandInOptions {
  readonly apiToken?: string;
  /**
   * Serve HTTPS (PEM key and certificate; `ca` signs it and goes into the kubeconfig). Needed by client-go callers such as
   * kube-rbac-proxy: loading a kubeconfig, client-go sends the user's token only to an `https://` server.
   */
  readonly tls?: { readonly key: string; readonly cert: string; readonly ca: string };
}

export async function startKubeApiStandIn(options: KubeApiStandInOptions = {}): Promise<KubeApiStandIn> {
  const apiToken = options.apiToken ?? `kube-api-token-${randomUUID()}`;
  let rv = 1000;
  /** Oldest RV a watch may resume from. */
  let minRv = rv;
  const stores: Record<Resource, Map<string, StoredObject>> = { namespaces: new Map(), serviceaccounts: new Map(), pods: new Map() };
  const history: WatchEvent[] = [];
  const watches = new Set<OpenWatch>();
  const requests: KubeApiStandIn['requests'] = [];
  const tokenReviews: KubeApiStandIn['tokenReviews'] = [];
  const subjectAccessReviews: KubeApiStandIn['subjectAccessReviews'] = [];
  const rules: AccessRule[] = [];
  let tokenReviewDelayMs = 0;
  let reviewing = 0;
  let maxReviewing = 0;
  const keyOf = (namespace: string | undefined, name: string) => (namespace ? `${namespace}/${name}` : name);

  const emit = (resource: Resource, type: WatchEvent['type'], object: StoredObject) => {
    const event: WatchEvent = { rv: Number(object.metadata.resourceVersion), resource, type, object: structuredClone(object) };
    history.push(event);
    for (const w of watches) if (w.resource === resource) w.res.write(`${JSON.stringify({ type, object: event.object })}\n`);
  };
  const put = (resource: Resource, object: StoredObject) => {
    const key = keyOf(object.metadata.namespace, object.metadata.name);
    const existed = stores[resource].has(key);
    object.metadata.resourceVersion = String(++rv);
    stores[resource].set(key, object);
    emit(resource, existed ? 'MODIFIED' : 'ADDED', object);
    return object;
  };
  const remove = (resource: Resource, namespace: string | undefined, name: string) => {
    const key = keyOf(namespace, name);
    const object = stores[resource].get(key);
    if (!object) return;
    stores[resource].delete(key);
    // A DELETED event carries the object's last state with the deletion's RV.
    object.metadata.resourceVersion = String(++rv);
    emit(resource, 'DELETED', object);
  };

  const status = (code: number, reason: string, message: string, details?: Record<string, string>) => ({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  });
  const sendJson = (res: ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };

  const listOf = (resource: Resource, accept: string | undefined) => {
    const items = [...stores[resource].values()];
    if (accept?.includes('as=PartialObjectMetadataList')) {
      return {
        kind: 'PartialObjectMetadataList',
        apiVersion: 'meta.k8s.io/v1',
        metadata: { resourceVersion: String(rv) },
        items: items.map((o) => ({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata })),
      };
    }
    const kind = resource === 'namespaces' ? 'NamespaceList' : resource === 'pods' ? 'PodList' : 'ServiceAccountList';
    // Items in typed lists carry no kind/apiVersion (as the real server sends them).
    return {
      kind,
      apiVersion: 'v1',
      metadata: { resourceVersion: String(rv) },
      items: items.map(({ kind: _k, apiVersion: _a, ...rest }) => rest),
    };
  };

  const startWatch = (resource: Resource, from: string | null, req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    // The informer's start() waits for the status line and headers: send them now, as the real server does.
    res.flushHeaders();
    const fromRv = from === null || from === '' || from === '0' ? rv : Number(from);
    if (fromRv < minRv) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${fromRv} (${minRv})`) })}\n`);
      return;
    }
    for (const event of history) {
      if (event.resource === resource && event.rv > fromRv) res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
    }
    const watch: OpenWatch = { resource, res, req };
    watches.add(watch);
    const forget = () => watches.delete(watch);
    res.on('close', forget);
    req.on('close', forget);
  };

  const reviewToken = (token: string, audiences: readonly string[]) => {
    const fail = (why: string) => ({ user: {}, error: `[invalid bearer token, ${why}]` });
    let claims: Record<string, unknown>;
    try {
      claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      return fail('square/go-jose: compact JWS format must have three parts');
    }
    const tokenAud = Array.isArray(claims.aud) ? (claims.aud as string[]) : typeof claims.aud === 'string' ? [claims.aud] : [];
    const matched = audiences.filter((a) => tokenAud.includes(a));
    if (matched.length === 0)
      return fail(`token audiences ${JSON.stringify(tokenAud)} is invalid for the target audiences ${JSON.stringify(audiences)}`);
    if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) return fail('service account token has expired');
    const k8s = claims['kubernetes.io'] as
      { namespace?: string; serviceaccount?: { name?: string; uid?: string }; pod?: { name?: string; uid?: string } } | undefined;
    const ns = k8s?.namespace ?? '';
    const sa = stores.serviceaccounts.get(keyOf(ns, k8s?.serviceaccount?.name ?? ''));
    if (!sa) return fail(`serviceaccounts "${k8s?.serviceaccount?.name ?? ''}" not found`);
    if (sa.metadata.uid !== k8s?.serviceaccount?.uid)
      return fail(`service account UID (${sa.metadata.uid}) does not match claim (${k8s?.serviceaccount?.uid ?? ''})`);
    const extra: Record<string, string[]> = {};
    if (typeof claims.jti === 'string') extra['authentication.kubernetes.io/credential-id'] = [`JTI=${claims.jti}`];
    if (k8s.pod) {
      const pod = stores.pods.get(keyOf(ns, k8s.pod.name ?? ''));
      if (!pod) return fail(`pods "${k8s.pod.name ?? ''}" not found`);
      if (pod.metadata.uid !== k8s.pod.uid) return fail(`pod UID (${pod.metadata.uid}) does not match claim (${k8s.pod.uid ?? ''})`);
      extra['authentication.kubernetes.io/pod-name'] = [k8s.pod.name ?? ''];
      extra['authentication.kubernetes.io/pod-uid'] = [k8s.pod.uid ?? ''];
    }
    return {
      authenticated: true,
      user: {
        username: `system:serviceaccount:${ns}:${k8s.serviceaccount.name ?? ''}`,
        uid: sa.metadata.uid,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
        extra,
      },
      audiences: matched,
    };
  };

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    requests.push({
      method: req.method ?? '',
      path: url.pathname,
      watch,
      resourceVersion: url.searchParams.get('resourceVersion'),
      accept: req.headers.accept,
    });
    if (req.headers.authorization !== `Bearer ${apiToken}`) {
      sendJson(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews') {
      const body = JSON.parse((await readBody(req)).toString('utf8')) as { spec?: { token?: string; audiences?: string[] } };
      const audiences = body.spec?.audiences ?? [];
      const outcome = reviewToken(body.spec?.token ?? '', audiences);
      tokenReviews.push({ audiences, authenticated: 'authenticated' in outcome });
      reviewing += 1;
      maxReviewing = Math.max(maxReviewing, reviewing);
      if (tokenReviewDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, tokenReviewDelayMs));
      reviewing -= 1;
      sendJson(res, 201, {
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: body.spec,
        status: outcome,
      });
      return;
    }
    // The stand-in's one identity may do everything: a permission check is always allowed.
    if (req.method === 'POST' && url.pathname === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews') {
      const body = JSON.parse((await readBody(req)).toString('utf8')) as { spec?: unknown };
      sendJson(res, 201, {
        kind: 'SelfSubjectAccessReview',
        apiVersion: 'authorization.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: body.spec,
        status: { allowed: true },
      });
      return;
    }
    if (req.method === 'POST' && url.pathname === '/apis/authorization.k8s.io/v1/subjectaccessreviews') {
      const body = JSON.parse((await readBody(req)).toString('utf8')) as { spec?: AccessSpec };
      const spec = body.spec ?? {};
      const invalid = invalidAccessSpec(spec);
      if (invalid !== undefined) {
        sendJson(res, 422, status(422, 'Invalid', `SubjectAccessReview.authorization.k8s.io "" is invalid: ${invalid}`));
        return;
      }
      const allowed = rules.some((rule) => ruleAllows(rule, spec));
      subjectAccessReviews.push({
        user: spec.user ?? '',
        verb: spec.nonResourceAttributes?.verb ?? spec.resourceAttributes?.verb ?? '',
        ...(spec.nonResourceAttributes?.path === undefined ? {} : { path: spec.nonResourceAttributes.path }),
        ...(spec.resourceAttributes?.resource === undefined ? {} : { resource: spec.resourceAttributes.resource }),
        allowed,
      });
      sendJson(res, 201, {
        kind: 'SubjectAccessReview',
        apiVersion: 'authorization.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec,
        // RBAC names what allowed it; a denial by no rule carries no reason.
        status: allowed
          ? { allowed: true, reason: 'RBAC: allowed by ClusterRoleBinding "stand-in" of ClusterRole "stand-in"' }
          : { allowed: false },
      });
      return;
    }
    const match = /^\/api\/v1\/(namespaces|serviceaccounts|pods)(?:\/([^/]+))?$/.exec(url.pathname);
    if (req.method !== 'GET' || !match) {
      sendJson(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
      return;
    }
    const resource = match[1] as Resource;
    const name = match[2];
    if (name !== undefined) {
      const object = resource === 'namespaces' ? stores.namespaces.get(name) : undefined;
      if (!object) sendJson(res, 404, status(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource }));
      else sendJson(res, 200, object);
      return;
    }
    if (watch) startWatch(resource, url.searchParams.get('resourceVersion'), req, res);
    else sendJson(res, 200, listOf(resource, req.headers.accept));
  };

  const tls = options.tls === undefined ? {} : { tls: { key: options.tls.key, cert: options.tls.cert } };
  let server: LoopbackServer = await listenLoopback(handler, tls);
  const port = server.port;
  const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

  return {
    url: server.url,
    port,
    apiToken,
    requests,
    tokenReviews,
    subjectAccessReviews,
    grant(rule) {
      rules.push(rule);
    },
    setTokenReviewDelay(ms: number) {
      tokenReviewDelayMs = ms;
    },
    get maxConcurrentTokenReviews() {
      return maxReviewing;
    },
    writeKubeconfig(dir) {
      const path = join(dir, 'kubeconfig');
      writeFileSync(
        path,
        [
          'apiVersion: v1',
          'kind: Config',
          'clusters:',
          '- name: stand-in',
          '  cluster:',
          `    server: ${server.url}`,
          // client-node refuses a plain-http server unless TLS verification is explicitly off (there is no TLS to verify).
          options.tls === undefined
            ? '    insecure-skip-tls-verify: true'
            : `    certificate-authority-data: ${Buffer.from(options.tls.ca).toString('base64')}`,
          'users:',
          '- name: proxy',
          '  user:',
          `    token: ${apiToken}`,
          'contexts:',
          '- name: stand-in',
          '  context: { cluster: stand-in, user: proxy }',
          'current-context: stand-in',
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      return path;
    },
    setNamespace(name, labels = {}) {
      const existing = stores.namespaces.get(name);
      const object: StoredObject = existing
        ? { ...existing, metadata: { ...existing.metadata, labels: { 'kubernetes.io/metadata.name': name, ...labels } } }
        : {
            kind: 'Namespace',
            apiVersion: 'v1',
            metadata: {
              name,
              uid: randomUUID(),
              resourceVersion: '',
              creationTimestamp: now(),
              labels: { 'kubernetes.io/metadata.name': name, ...labels },
              managedFields: [],
            },
            spec: { finalizers: ['kubernetes'] },
            status: { phase: 'Active' },
          };
      return put('namespaces', object);
    },
    deleteNamespace: (name) => remove('namespaces', undefined, name),
    addServiceAccount(namespace, name, uid = randomUUID()) {
      put('serviceaccounts', {
        kind: 'ServiceAccount',
        apiVersion: 'v1',
        metadata: { name, namespace, uid, resourceVersion: '', creationTimestamp: now() },
      });
      return uid;
    },
    deleteServiceAccount: (namespace, name) => remove('serviceaccounts', namespace, name),
    addPod(namespace, name, serviceAccount = 'default', uid = randomUUID()) {
      put('pods', {
        kind: 'Pod',
        apiVersion: 'v1',
        metadata: { name, namespace, uid, resourceVersion: '', creationTimestamp: now(), labels: { app: name.replace(/-[^-]+$/, '') } },
        spec: {
          serviceAccountName: serviceAccount,
          nodeName: 'gke-pool-1-abcd',
          containers: [
            { name: 'main', image: 'us-docker.pkg.dev/project/repo/app:1.0', resources: { requests: { cpu: '100m', memory: '128Mi' } } },
          ],
          volumes: [
            {
              name: 'kube-vertex-proxy-token',
              projected: { sources: [{ serviceAccountToken: { audience: 'kube-vertex-proxy', expirationSeconds: 3600, path: 'token' } }] },
            },
          ],
        },
        status: { phase: 'Running', podIP: '10.8.0.12', startTime: now() },
      });
      return uid;
    },
    deletePod: (namespace, name) => remove('pods', namespace, name),
    uidOf: (resource, namespace, name) => stores[resource].get(resource === 'namespaces' ? name : keyOf(namespace, name))?.metadata.uid,
    compact() {
      history.length = 0;
      minRv = rv;
    },
    expireWatches() {
      // Every RV a client holds is now too old; a fresh LIST returns one that is not.
      history.length = 0;
      minRv = ++rv;
      for (const w of watches)
        w.res.end(
          `${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${minRv - 1} (${minRv})`) })}\n`,
        );
      watches.clear();
    },
    dropWatches() {
      for (const w of watches) w.res.socket?.destroy();
      watches.clear();
    },
    openWatches: (resource) => [...watches].filter((w) => resource === undefined || w.resource === resource).length,
    async stop() {
      watches.clear();
      await server.close();
    },
    async restart() {
      server = await listenLoopback(handler, { port, ...tls });
    },
    close() {
      watches.clear();
      return server.close();
    },
  };
}
