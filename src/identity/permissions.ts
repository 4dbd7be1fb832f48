/**
 * The Kubernetes API permissions the configured modes need, and whether the
 * proxy's own identity has them.
 *
 * Without this, a missing RBAC rule shows up as an informer that never
 * syncs (a 403 in a warning) or as 503s on new tokens (TokenReview), and
 * nobody is told which rule to add. Here every permission the config needs
 * is asked of the API server with a SelfSubjectAccessReview (the question
 * `kubectl auth can-i` asks; every authenticated identity may ask it about
 * itself through the default `system:basic-user` role,
 * https://kubernetes.io/docs/reference/access-authn-authz/rbac/#discovery-roles).
 * The missing ones are named in /readyz and logged, and the check repeats
 * with backoff until all are granted. A 403 seen later by an informer or a
 * TokenReview calls `recheck()`, so a rule removed while running is named too.
 *
 * In: the settings' modes, a KubeClient. Out: readiness and a description.
 * Throws nothing after construction; failures are reported.
 *
 * @module
 */
import type { KubeClient } from './kube-client.js';
import type { KubernetesSettings } from './settings.js';

export interface ApiPermission {
  readonly verb: string;
  readonly resource: string;
  /** API group, '' for the core group. */
  readonly group: string;
  /** The config setting that needs it. */
  readonly neededBy: string;
}

/** `list namespaces`, `create tokenreviews.authentication.k8s.io`: how RBAC and `kubectl auth can-i` name them. */
export function describePermission(p: ApiPermission): string {
  return `${p.verb} ${p.resource}${p.group === '' ? '' : `.${p.group}`}`;
}

/** Exactly what the modes call (the chart's ClusterRole renders the same, rule by rule). */
export function requiredPermissions(k: Pick<KubernetesSettings, 'namespaceLabels' | 'tokenReview' | 'uidRevocation'>): ApiPermission[] {
  const permissions: ApiPermission[] = [];
  const add = (verbs: string[], resource: string, group: string, neededBy: string) => {
    for (const verb of verbs) permissions.push({ verb, resource, group, neededBy });
  };
  if (k.namespaceLabels === 'watch') add(['list', 'watch'], 'namespaces', '', 'kubernetes.namespaceLabels: watch');
  if (k.uidRevocation !== 'off') add(['list', 'watch'], 'serviceaccounts', '', `kubernetes.uidRevocation: ${k.uidRevocation}`);
  if (k.uidRevocation === 'serviceAccountsAndPods') add(['list', 'watch'], 'pods', '', 'kubernetes.uidRevocation: serviceAccountsAndPods');
  if (k.tokenReview) add(['create'], 'tokenreviews', 'authentication.k8s.io', 'kubernetes.tokenReview: true');
  return permissions;
}

export interface PermissionCheckOptions {
  readonly client: KubeClient;
  readonly permissions: readonly ApiPermission[];
  readonly timeoutMs: number;
  /** Called after each completed check with what is missing (empty: all granted). */
  readonly onChecked?: (missing: readonly ApiPermission[]) => void;
  /** Called when the check itself could not be made (API server unreachable, review refused). */
  readonly onError?: (error: unknown, retryInMs: number) => void;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
}

export interface PermissionCheck {
  start(): Promise<void>;
  stop(): void;
  /** Checks again now (after a 403 from the API server). */
  recheck(): void;
  /** True once a check found every permission granted, and no later one found any missing. */
  ready(): boolean;
  describe(): Record<string, unknown>;
}

export function createPermissionCheck(options: PermissionCheckOptions): PermissionCheck {
  const initial = options.backoffInitialMs ?? 1000;
  const max = options.backoffMaxMs ?? 30_000;
  let missing: readonly ApiPermission[] | undefined;
  let lastError: string | undefined;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = true;

  const allowed = async (p: ApiPermission): Promise<boolean> => {
    const review = await options.client.post<{ status?: { allowed?: boolean } }>(
      '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { verb: p.verb, resource: p.resource, group: p.group } },
      },
      options.timeoutMs,
    );
    return review.status?.allowed === true;
  };

  const schedule = (delay: number) => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void check();
    }, delay);
    timer.unref();
  };

  const checkOnce = async () => {
    try {
      const results = await Promise.all(options.permissions.map(async (p) => ({ p, ok: await allowed(p) })));
      missing = results.filter((r) => !r.ok).map((r) => r.p);
      lastError = undefined;
      options.onChecked?.(missing);
      if (missing.length > 0) schedule(backoff());
      else failures = 0;
    } catch (error) {
      const status = (error as { statusCode?: unknown }).statusCode;
      lastError =
        `${(error as Error).name}${typeof status === 'number' ? ` (HTTP ${String(status)})` : ''}: ` +
        ((error as Error).message.split('\n')[0]?.slice(0, 200) ?? '');
      const delay = backoff();
      options.onError?.(error, delay);
      schedule(delay);
    }
  };

  const backoff = () => {
    const base = Math.min(max, initial * 2 ** Math.min(failures, 16));
    failures++;
    return Math.round(base / 2 + Math.random() * (base / 2));
  };

  // One check at a time; a recheck asked for meanwhile runs right after it.
  const check = async (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = checkOnce().finally(() => {
      running = undefined;
      if (again && !stopped) {
        again = false;
        void check();
      }
    });
    return running;
  };

  return {
    async start() {
      if (options.permissions.length === 0) {
        missing = [];
        return;
      }
      stopped = false;
      await check();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
    recheck() {
      if (stopped) return;
      failures = 0;
      void check();
    },
    ready: () => missing !== undefined && missing.length === 0,
    describe: () => ({
      required: options.permissions.map(describePermission),
      missing: missing === undefined ? null : missing.map(describePermission),
      ...(lastError === undefined ? {} : { error: lastError }),
    }),
  };
}
