/**
 * Metrics of the Kubernetes side: informer view age, sync state, events,
 * restarts and relists per resource; label-view staleness; TokenReview
 * outcomes; revocation evictions. Registered on the injected Registry next
 * to the proxy's own metrics. Labels are bounded: resource names and event
 * types from the API, results from fixed sets — never a namespace or name.
 *
 * @module
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../metrics/metrics.js';
import type { TokenReviewResult } from '../authn/token-review.js';

export interface InformerGaugeSource {
  readonly resource: string;
  ageMs(): number | undefined;
  size(): number;
}

export interface IdentityMetrics {
  event(resource: string, type: string): void;
  restart(resource: string): void;
  relist(resource: string): void;
  tokenReview(result: TokenReviewResult): void;
  evicted(count: number): void;
}

const EVENT_TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

export function createIdentityMetrics(
  registry: Registry,
  sources: { informers: () => readonly InformerGaugeSource[]; labelsStale: () => boolean | undefined },
): IdentityMetrics {
  const registers = [registry];
  new Gauge({
    name: `${METRIC_PREFIX}informer_view_age_seconds`,
    help: 'Age of the informer view: 0 while its watch is open, else seconds since it last was; absent before the first sync.',
    labelNames: ['resource'] as const,
    registers,
    collect() {
      this.reset();
      for (const i of sources.informers()) {
        const age = i.ageMs();
        if (age !== undefined) this.set({ resource: i.resource }, age / 1000);
      }
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}informer_synced`,
    help: '1 once the informer has completed its first LIST.',
    labelNames: ['resource'] as const,
    registers,
    collect() {
      this.reset();
      for (const i of sources.informers()) this.set({ resource: i.resource }, i.ageMs() === undefined ? 0 : 1);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}informer_objects`,
    help: 'Objects held by the informer.',
    labelNames: ['resource'] as const,
    registers,
    collect() {
      this.reset();
      for (const i of sources.informers()) this.set({ resource: i.resource }, i.size());
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}namespace_labels_stale`,
    help: '1 while the namespace-label view is past kubernetes.maxStaleness (label-dependent decisions are refused).',
    registers,
    collect() {
      const stale = sources.labelsStale();
      if (stale !== undefined) this.set(stale ? 1 : 0);
    },
  });
  const events = new Counter({
    name: `${METRIC_PREFIX}informer_events_total`,
    help: 'Watch events received, by resource and type.',
    labelNames: ['resource', 'type'] as const,
    registers,
  });
  const restarts = new Counter({
    name: `${METRIC_PREFIX}informer_restarts_total`,
    help: 'Informer restarts after it stopped on an error (API server unreachable, 5xx, 403).',
    labelNames: ['resource'] as const,
    registers,
  });
  const relists = new Counter({
    name: `${METRIC_PREFIX}informer_lists_total`,
    help: 'LIST calls: the first sync, relists after 410 Gone, and lists after a restart without a resourceVersion.',
    labelNames: ['resource'] as const,
    registers,
  });
  const reviews = new Counter({
    name: `${METRIC_PREFIX}token_reviews_total`,
    help: 'TokenReviews by result (accepted, rejected, error; busy: refused without a call, no free slot in time).',
    labelNames: ['result'] as const,
    registers,
  });
  const evictions = new Counter({
    name: `${METRIC_PREFIX}revocation_evictions_total`,
    help: 'Cached tokens evicted because their service account or pod was deleted.',
    registers,
  });
  return {
    event: (resource, type) => events.inc({ resource, type: EVENT_TYPES.has(type) ? type : 'OTHER' }),
    restart: (resource) => restarts.inc({ resource }),
    relist: (resource) => relists.inc({ resource }),
    tokenReview: (result) => reviews.inc({ result }),
    evicted: (count) => evictions.inc(count),
  };
}
