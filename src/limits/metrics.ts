/**
 * Limit metrics:
 *
 * - `kube_vertex_proxy_limit_decisions_total{rule,result}`: per rule that
 *   applied to a request: allowed | refused | dry_run_refused | store_unavailable;
 * - `kube_vertex_proxy_limit_remaining{rule,limit}`: what was left of a limit
 *   in the bucket of the last request checked against it (identity labels
 *   only when `usage.metricLabels` lists them, bounded like the usage metrics);
 * - `kube_vertex_proxy_limit_store_available`: 1 while the limit store
 *   answers, 0 during an outage (alert on it);
 * - `kube_vertex_proxy_limit_settle_failures_total`: finished requests whose
 *   tokens or slots could not be written.
 *
 * @module
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../metrics/metrics.js';
import type { UsageMetrics } from '../usage/metrics.js';
import { SeriesGuard } from '../usage/series.js';
import type { LimitObserver } from './limiter.js';

export function createLimitMetrics(registry: Registry, usage: UsageMetrics, storeAvailable: () => boolean): LimitObserver {
  const registers = [registry];
  const decisions = new Counter({
    name: `${METRIC_PREFIX}limit_decisions_total`,
    help:
      'Limit rule decisions, per rule that applied to a request: allowed, refused, dry_run_refused (a dry-run rule would ' +
      'have refused), store_unavailable.',
    labelNames: ['rule', 'result'] as const,
    registers,
  });
  const remaining = new Gauge({
    name: `${METRIC_PREFIX}limit_remaining`,
    help: 'What was left of a limit (requests, slots or tokens) in the bucket of the last request checked against it.',
    labelNames: ['rule', 'limit', ...usage.identity],
    registers,
  });
  new Gauge({
    name: `${METRIC_PREFIX}limit_store_available`,
    help: '1 while the limit store answers, 0 while it does not (limits.store.onUnavailable applies).',
    registers,
    collect() {
      this.set(storeAvailable() ? 1 : 0);
    },
  });
  const settleFailures = new Counter({
    name: `${METRIC_PREFIX}limit_settle_failures_total`,
    help: 'Finished requests whose tokens or concurrency slots could not be written to the limit store.',
    registers,
  });
  const guard = new SeriesGuard(usage.maxSeries, usage.folded);
  return {
    decision(rule, result) {
      decisions.inc({ rule, result });
    },
    remaining(rule, limit, value, subject) {
      remaining.set(
        guard.admit({ rule, limit, ...usage.identityLabels(subject.namespace, subject.serviceAccount) }, usage.identity),
        value,
      );
    },
    settleFailed() {
      settleFailures.inc();
    },
  };
}
