/**
 * The Kubernetes side of a running proxy, built from settings: the namespace
 * label source (static, off, or the informer), the TokenReview client and
 * the UID-revocation informers, the check that the proxy's identity has the
 * RBAC permissions they need, their metrics, readiness and lifecycle.
 * `server.ts` asks this module for what to hand the verifier and the app.
 *
 * In: the `kubernetes` settings, logger, registry; at start, the verifier's
 * eviction hook. Out: {@link KubernetesIdentity}.
 *
 * @module
 * @throws Error at start when a mode needs the API and no configuration is found.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ReadinessCheck } from '../admin/app.js';
import type { Principal } from '../authn/principal.js';
import type { TokenReviewer } from '../authn/token-review.js';
import type { ProxyError } from '../errors.js';
import { createNoLabelSource, createStaticLabelSource, type NamespaceLabelSource } from './labels.js';
import { createIdentityMetrics, type InformerGaugeSource } from './metrics.js';
import type { WatchLabelSource } from './namespace-watch.js';
import type { ApiPermission, PermissionCheck } from './permissions.js';
import type { KubernetesSettings } from './settings.js';
import type { Evict, UidRevocation } from './uid-revocation.js';

/**
 * The modules that talk to the API server, loaded only when a mode does
 * (watch, TokenReview, UID revocation): a `static` or `off` configuration
 * never pays for them.
 */
async function loadKubernetesModules() {
  const [kubeConfig, tokenReview, namespaceWatch, permissions, uidRevocation] = await Promise.all([
    import('./kube-config.js'),
    import('../authn/token-review.js'),
    import('./namespace-watch.js'),
    import('./permissions.js'),
    import('./uid-revocation.js'),
  ]);
  return {
    loadKubeConfig: kubeConfig.loadKubeConfig,
    createTokenReviewer: tokenReview.createTokenReviewer,
    createWatchLabelSource: namespaceWatch.createWatchLabelSource,
    createPermissionCheck: permissions.createPermissionCheck,
    describePermission: permissions.describePermission,
    requiredPermissions: permissions.requiredPermissions,
    createUidRevocation: uidRevocation.createUidRevocation,
  };
}

export interface KubernetesIdentityOptions {
  readonly logger: Logger;
  readonly registry: Registry;
}

export interface KubernetesIdentity {
  readonly labels: NamespaceLabelSource;
  /** Spread into the TokenVerifier options. */
  readonly verifierOptions: {
    readonly reviewer?: TokenReviewer;
    readonly reviewTtlMs?: number;
    readonly admit?: (principal: Principal) => ProxyError | undefined;
  };
  /** Replaces the static labels (policy reload of `kubernetes.static`). */
  setStatic(map: KubernetesSettings['static']): void;
  readiness(): ReadinessCheck[];
  /** `evict`: the verifier's, built after this with {@link KubernetesIdentity.verifierOptions}; revocations drop cached tokens. */
  start(evict: Evict): Promise<void>;
  stop(): void;
}

export async function createKubernetesIdentity(k: KubernetesSettings, options: KubernetesIdentityOptions): Promise<KubernetesIdentity> {
  const { logger } = options;
  const api = k.usesApi ? await loadKubernetesModules() : undefined;
  const source = api?.loadKubeConfig(k.kubeconfig);
  if (source) logger.info({ kubeconfig: source.describe, server: source.server }, 'Kubernetes API configuration loaded');

  // Which RBAC permissions the modes need, asked of the API server: a missing one is named, not guessed at.
  let permissions: PermissionCheck | undefined;
  if (source && api) {
    const { describePermission, requiredPermissions } = api;
    let reported: string | undefined;
    permissions = api.createPermissionCheck({
      client: source.client,
      permissions: requiredPermissions(k),
      timeoutMs: k.apiTimeoutMs,
      onChecked: (missing: readonly ApiPermission[]) => {
        const key = missing.map(describePermission).join(',');
        if (key === reported) return;
        reported = key;
        if (missing.length > 0) {
          logger.error(
            {
              missing: missing.map(describePermission),
              neededBy: [...new Set(missing.map((p) => p.neededBy))],
              kubeconfig: source.describe,
              hint: "grant it to the proxy's identity: the helm chart's ClusterRole (rbac.create) has every rule the config needs",
            },
            'Kubernetes API permission missing',
          );
        } else logger.info({ granted: requiredPermissions(k).map(describePermission) }, 'Kubernetes API permissions granted');
      },
      onError: (error, retryInMs) =>
        logger.warn({ error: describeError(error), retryInMs }, 'could not check Kubernetes API permissions; retrying'),
    });
  }
  const recheckOn403 = (error: unknown) => {
    const e = error as { statusCode?: unknown; code?: unknown };
    if ((e.statusCode ?? e.code) === 403) permissions?.recheck();
  };

  const gaugeSources: InformerGaugeSource[] = [];
  let watchSource: WatchLabelSource | undefined;
  const metrics = createIdentityMetrics(options.registry, {
    informers: () => gaugeSources,
    labelsStale: () => (watchSource === undefined ? undefined : watchSource.stale?.() !== undefined),
  });

  let staticSource = createStaticLabelSource(k.namespaceLabels === 'static' ? k.static : {});
  let labels: NamespaceLabelSource;
  if (k.namespaceLabels === 'watch' && source && api) {
    watchSource = api.createWatchLabelSource({
      client: source.client,
      maxStalenessMs: k.maxStalenessMs,
      apiTimeoutMs: k.apiTimeoutMs,
      onEvent: (type) => metrics.event('namespaces', type),
      onRestart: () => metrics.restart('namespaces'),
      onRelist: () => metrics.relist('namespaces'),
      onError: (error, restartInMs) => {
        logger.warn({ resource: 'namespaces', error: describeError(error), restartInMs }, 'namespace informer stopped; restarting');
        recheckOn403(error);
      },
      onSynced: (namespaces) => logger.info({ namespaces }, 'namespace label view synced'),
      onStaleChange: (stale, ageMs) => {
        if (stale)
          logger.error(
            { ageSeconds: ageMs === undefined ? null : Math.round(ageMs / 1000), maxStalenessSeconds: k.maxStalenessMs / 1000 },
            'namespace label view is stale; label-dependent decisions are refused',
          );
        else logger.info('namespace label view is current again');
      },
    });
    const ws = watchSource;
    gaugeSources.push({ resource: 'namespaces', ageMs: () => ws.ageMs(), size: () => ws.size });
    labels = watchSource;
  } else if (k.namespaceLabels === 'static') {
    // Delegates to the current static map, which a policy reload may replace.
    labels = { kind: 'static', labelsOf: (ns) => staticSource.labelsOf(ns), ready: () => true };
  } else {
    labels = createNoLabelSource();
  }

  let revocation: UidRevocation | undefined;
  if (k.uidRevocation !== 'off' && source && api) {
    revocation = api.createUidRevocation({
      client: source.client,
      pods: k.uidRevocation === 'serviceAccountsAndPods',
      apiTimeoutMs: k.apiTimeoutMs,
      onEvent: (resource, type) => metrics.event(resource, type),
      onRestart: (resource) => metrics.restart(resource),
      onRelist: (resource) => metrics.relist(resource),
      onError: (resource, error, restartInMs) => {
        logger.warn({ resource, error: describeError(error), restartInMs }, 'revocation informer stopped; restarting');
        recheckOn403(error);
      },
      onEvicted: (count) => {
        metrics.evicted(count);
        if (count > 0) logger.info({ count }, 'evicted cached tokens of deleted service accounts or pods');
      },
    });
    gaugeSources.push(...revocation.informers);
  }

  const reviewer =
    k.tokenReview && source && api
      ? api.createTokenReviewer({
          client: source.client,
          timeoutMs: k.apiTimeoutMs,
          maxConcurrent: k.tokenReviewConcurrency,
          onReview: (result) => metrics.tokenReview(result),
          onForbidden: () => permissions?.recheck(),
        })
      : undefined;
  const rev = revocation;

  return {
    labels,
    verifierOptions: {
      ...(reviewer ? { reviewer, reviewTtlMs: k.tokenReviewTtlMs } : {}),
      ...(rev ? { admit: (principal: Principal) => rev.admit(principal) } : {}),
    },
    setStatic(map) {
      if (k.namespaceLabels === 'static') staticSource = createStaticLabelSource(map);
    },
    readiness() {
      const checks: ReadinessCheck[] = [
        { name: 'namespace-labels', ready: labels.ready(), detail: watchSource ? watchSource.describe() : { source: labels.kind } },
      ];
      if (revocation) checks.push({ name: 'uid-revocation', ready: revocation.ready(), detail: revocation.describe() });
      if (reviewer)
        checks.push({
          name: 'token-review',
          ready: true,
          detail: { ttlSeconds: k.tokenReviewTtlMs / 1000, maxConcurrent: k.tokenReviewConcurrency },
        });
      if (permissions) checks.push({ name: 'kubernetes-permissions', ready: permissions.ready(), detail: permissions.describe() });
      return checks;
    },
    async start(evict) {
      await Promise.all([permissions?.start(), watchSource?.start(), revocation?.start(evict)]);
    },
    stop() {
      permissions?.stop();
      watchSource?.stop();
      revocation?.stop();
      void source?.client.close();
    },
  };
}

/** Error text for logs: the name, status and first 200 characters of the message only. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const status =
    (error as { statusCode?: string | number; code?: string | number }).statusCode ?? (error as { code?: string | number }).code;
  const cause = (error as { cause?: { code?: string | number } }).cause?.code;
  return (
    `${error.name}${status === undefined ? '' : ` ${String(status)}`}: ${error.message.slice(0, 200)}` +
    (cause === undefined ? '' : ` (${String(cause)})`)
  );
}
