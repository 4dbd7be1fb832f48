/**
 * Namespace labels from the Kubernetes API (`kubernetes.namespaceLabels:
 * watch`): an informer (LIST then WATCH of `/api/v1/namespaces`) keeps every
 * namespace's labels in memory; `labelsOf` is a Map lookup.
 *
 * - Ready (for /readyz) once the first LIST has synced; until then no
 *   namespace has labels and every label-dependent decision is refused.
 * - A DELETED event removes the namespace's labels at once; a MODIFIED event
 *   replaces them, so a relabel takes effect with the next event.
 * - Staleness: while the watch is down the last view keeps serving for
 *   `maxStalenessMs`; past that `stale()` says so (the authorize step then
 *   refuses decisions that depend on labels), and a log line and a metric say
 *   so once per episode.
 *
 * In: a KubeClient, bounds, hooks for metrics and logs. Out: a
 * {@link NamespaceLabelSource}. Throws nothing after construction.
 *
 * @module
 */
import { ResilientInformer } from './informer.js';
import type { KubeClient, KubeList, KubeObject } from './kube-client.js';
import type { NamespaceLabelSource } from './labels.js';

export interface WatchLabelSourceOptions {
  readonly client: KubeClient;
  readonly maxStalenessMs: number;
  readonly apiTimeoutMs: number;
  readonly now?: () => number;
  readonly onEvent?: (type: string) => void;
  readonly onRestart?: () => void;
  readonly onRelist?: () => void;
  readonly onError?: (error: unknown, restartInMs: number) => void;
  readonly onSynced?: (namespaces: number) => void;
  /** Called when the view crosses the staleness bound (true) and when it is current again (false). */
  readonly onStaleChange?: (stale: boolean, ageMs: number | undefined) => void;
  readonly backoffInitialMs?: number;
}

export interface WatchLabelSource extends NamespaceLabelSource {
  readonly kind: 'watch';
  start(): Promise<void>;
  stop(): void;
  /** Age of the view in ms (0 while the watch is open), undefined before the first sync. */
  ageMs(): number | undefined;
  readonly size: number;
  describe(): Record<string, unknown>;
}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

export function createWatchLabelSource(options: WatchLabelSourceOptions): WatchLabelSource {
  const now = options.now ?? Date.now;
  const labels = new Map<string, Readonly<Record<string, string>>>();
  let staleReported = false;
  let staleTimer: NodeJS.Timeout | undefined;

  const informer = new ResilientInformer<KubeObject>({
    resource: 'namespaces',
    client: options.client,
    path: '/api/v1/namespaces',
    list: () => options.client.get<KubeList<KubeObject>>('/api/v1/namespaces', options.apiTimeoutMs),
    watchOpenTimeoutMs: options.apiTimeoutMs,
    // Only the name, labels and resourceVersion are kept: no annotations, no managedFields.
    strip: (ns) => ({
      metadata: {
        name: ns.metadata?.name ?? '',
        ...(ns.metadata?.resourceVersion === undefined ? {} : { resourceVersion: ns.metadata.resourceVersion }),
        labels: ns.metadata?.labels ?? {},
      },
    }),
    onChange: (change, ns) => {
      const name = ns.metadata?.name;
      if (!name) return;
      if (change === 'delete') labels.delete(name);
      else {
        const nsLabels = ns.metadata.labels;
        // The stripped object is ours alone: freeze its labels in place rather than keep a second copy.
        labels.set(name, nsLabels && Object.keys(nsLabels).length > 0 ? Object.freeze(nsLabels) : EMPTY);
      }
    },
    onSynced: () => options.onSynced?.(labels.size),
    now,
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    ...(options.onRestart ? { onRestart: options.onRestart } : {}),
    ...(options.onRelist ? { onRelist: options.onRelist } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
    ...(options.backoffInitialMs === undefined ? {} : { backoffInitialMs: options.backoffInitialMs }),
  });

  const isStale = (): boolean => {
    const age = informer.ageMs();
    const stale = age === undefined || age > options.maxStalenessMs;
    // Report each crossing once; checked on the request path and by the metrics collector.
    if (informer.synced() && stale !== staleReported) {
      staleReported = stale;
      options.onStaleChange?.(stale, age);
    }
    return stale;
  };

  return {
    kind: 'watch',
    labelsOf: (namespace) => labels.get(namespace),
    ready: () => informer.synced(),
    stale: () => {
      if (!isStale()) return undefined;
      const age = informer.ageMs();
      return { ageSeconds: age === undefined ? null : Math.round(age / 1000) };
    },
    async start() {
      // Crossing the bound is logged (and the gauge flips) even when no request or scrape asks.
      staleTimer = setInterval(isStale, Math.max(100, Math.min(5000, Math.floor(options.maxStalenessMs / 4))));
      staleTimer.unref();
      await informer.start();
    },
    stop() {
      if (staleTimer) clearInterval(staleTimer);
      staleTimer = undefined;
      informer.stop();
    },
    ageMs: () => informer.ageMs(),
    get size() {
      return labels.size;
    },
    describe: () => {
      const age = informer.ageMs();
      return {
        source: 'watch',
        synced: informer.synced(),
        watching: informer.watching(),
        namespaces: labels.size,
        ageSeconds: age === undefined ? null : Math.round(age / 1000),
        stale: isStale(),
        maxStalenessSeconds: Math.round(options.maxStalenessMs / 1000),
      };
    },
  };
}
