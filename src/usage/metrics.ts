/**
 * Usage metrics, fed from audit records (so metrics and the audit trail count
 * the same thing):
 *
 * - `kube_vertex_proxy_model_tokens_total{model,type}`: tokens reported by
 *   responses, `type` = prompt | candidates | thoughts | cached | tool | total;
 * - `kube_vertex_proxy_model_requests_total{model,code}`: calls of operations
 *   that carry usage, by HTTP status;
 * - `kube_vertex_proxy_usage_series_folded_total`: observations folded into
 *   `other` by the cardinality bound ({@link SeriesGuard}).
 *
 * Identity labels (`namespace`, `service_account`) only when
 * `usage.metricLabels` lists them.
 *
 * @module
 */
import { Counter, type Registry } from 'prom-client';
import type { AuditRecord } from '../audit/record.js';
import { METRIC_PREFIX } from '../metrics/metrics.js';
import { SeriesGuard, type IdentityLabel } from './series.js';
import { TOKEN_TYPES, type TokenUsage } from './usage.js';

export interface UsageMetricsOptions {
  readonly metricLabels: ReadonlyArray<'namespace' | 'serviceAccount'>;
  readonly maxSeries: number;
}

const FIELD: Record<(typeof TOKEN_TYPES)[number], keyof TokenUsage> = {
  prompt: 'prompt',
  candidates: 'candidates',
  thoughts: 'thoughts',
  cached: 'cached',
  tool: 'tool',
  total: 'total',
};

export interface UsageMetrics {
  observe(record: AuditRecord): void;
  /** Identity labels for a subject, as configured (shared with the limit metrics). */
  identityLabels(namespace: string | undefined, serviceAccount: string | undefined): Record<string, string>;
  readonly identity: readonly IdentityLabel[];
  /** Counts an observation folded by a guard. */
  folded(this: void): void;
  readonly maxSeries: number;
}

export function identityLabelNames(metricLabels: UsageMetricsOptions['metricLabels']): IdentityLabel[] {
  const names: IdentityLabel[] = [];
  if (metricLabels.includes('namespace')) names.push('namespace');
  if (metricLabels.includes('serviceAccount')) names.push('service_account');
  return names;
}

export function createUsageMetrics(registry: Registry, options: UsageMetricsOptions): UsageMetrics {
  const identity = identityLabelNames(options.metricLabels);
  const registers = [registry];
  const tokens = new Counter({
    name: `${METRIC_PREFIX}model_tokens_total`,
    help: 'Tokens reported by Vertex AI responses, by model and type (prompt, candidates, thoughts, cached, tool, total).',
    labelNames: ['model', 'type', ...identity],
    registers,
  });
  const requests = new Counter({
    name: `${METRIC_PREFIX}model_requests_total`,
    help:
      'Calls of operations that report usage (generateContent, streamGenerateContent, chat completions, embeddings), by ' +
      'model and HTTP status code.',
    labelNames: ['model', 'code', ...identity],
    registers,
  });
  const folds = new Counter({
    name: `${METRIC_PREFIX}usage_series_folded_total`,
    help: 'Observations recorded under "other" because a usage or limit metric reached usage.maxSeries label sets.',
    registers,
  });
  const onFold = () => folds.inc();
  const tokenGuard = new SeriesGuard(options.maxSeries, onFold);
  const requestGuard = new SeriesGuard(options.maxSeries, onFold);
  const identityLabels = (namespace: string | undefined, serviceAccount: string | undefined): Record<string, string> => {
    const labels: Record<string, string> = {};
    if (identity.includes('namespace')) labels.namespace = namespace ?? '';
    if (identity.includes('service_account')) labels.service_account = serviceAccount ?? '';
    return labels;
  };
  return {
    identity,
    maxSeries: options.maxSeries,
    folded: onFold,
    identityLabels,
    observe(record) {
      if (record.model === undefined) return;
      const who = identityLabels(record.namespace, record.serviceAccount);
      requests.inc(requestGuard.admit({ model: record.model, code: String(record.status), ...who }, identity, 'model'));
      const usage = record.tokens;
      if (usage === undefined) return;
      for (const type of TOKEN_TYPES) {
        const value = usage[FIELD[type]];
        if (value === undefined || value === 0) continue;
        tokens.inc(tokenGuard.admit({ model: record.model, type, ...who }, identity, 'model'), value);
      }
    },
  };
}
