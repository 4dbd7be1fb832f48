/**
 * The proxy's Prometheus metrics, on an injected Registry (never prom-client's
 * global one). Label values are bounded: operation ids from the table,
 * decisions, HTTP codes, issuer names from the config — never a subject,
 * token, path or resource.
 *
 * Request counters and histograms are fed from audit records, so metrics and
 * the audit trail count the same thing.
 *
 * @module
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AuditRecord } from '../audit/record.js';

export const METRIC_PREFIX = 'kube_vertex_proxy_';

export interface MetricSources {
  readonly tokenCache: () => { hits: number; misses: number; entries: number };
  readonly keySets: () => ReadonlyArray<{ issuer: string; ageMs: number | undefined }>;
  readonly policy: () => { version: string; ruleCount: number };
  /** Audit records accepted but not yet committed to the stores. */
  readonly auditQueueDepth?: () => number;
  /** Whether the proxy holds a usable Google access token (requests are refused with 503 while it does not). */
  readonly credentialAvailable?: () => boolean;
}

export interface MetricOptions {
  /**
   * Request-duration histograms carry the trace id of a sampled request as
   * an OpenMetrics exemplar (only when tracing is on: otherwise the id would
   * point at a trace no backend has).
   */
  readonly exemplars?: boolean;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface ProxyMetrics {
  observeRecord(record: AuditRecord): void;
  jwksFetch(issuer: string, result: 'success' | 'error'): void;
  credentialRefresh(result: 'success' | 'error'): void;
  /** One audit store transaction: its size, duration and outcome. */
  auditBatch(this: void, store: string, size: number, seconds: number, ok: boolean): void;
  /** A request refused because the audit store could not take its decision record (strict mode). */
  auditRefused(this: void): void;
  /** Audit records dropped (queue full, or the store stayed unavailable). */
  auditDropped(this: void, count: number): void;
  /** A refresh of a team identity's impersonated token (vertex.identities; accounts come from the config). */
  identityRefresh(serviceAccount: string, result: 'success' | 'error'): void;
  /** One endpoint lookup (dedicated endpoints): `dedicated`, `shared` or `error`. */
  endpointLookup(result: 'dedicated' | 'shared' | 'error'): void;
  /** Strict mode: how long a request waited for its decision entry to be committed to every store, and whether it was. */
  auditDecisionCommit(this: void, seconds: number, ok: boolean): void;
}

export function createMetrics(registry: Registry, sources: MetricSources, options: MetricOptions = {}): ProxyMetrics {
  const registers = [registry];
  const exemplars = options.exemplars === true;
  const requests = new Counter({
    name: `${METRIC_PREFIX}requests_total`,
    help: 'Requests by direction, operation, decision and HTTP status code.',
    labelNames: ['direction', 'operation', 'decision', 'code'] as const,
    registers,
  });
  const requestDuration = new Histogram({
    name: `${METRIC_PREFIX}request_duration_seconds`,
    help: 'End-to-end request latency, from arrival to the end of the response.',
    labelNames: ['direction', 'operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
    enableExemplars: exemplars,
  });
  const upstreamDuration = new Histogram({
    name: `${METRIC_PREFIX}upstream_duration_seconds`,
    help: 'Upstream latency, from the forwarded request to the end of the upstream response.',
    labelNames: ['operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
    enableExemplars: exemplars,
  });
  let seenHits = 0;
  let seenMisses = 0;
  new Counter({
    name: `${METRIC_PREFIX}token_cache_hits_total`,
    help: 'Bearer tokens found in the verified-token cache.',
    registers,
    collect() {
      const { hits } = sources.tokenCache();
      this.inc(hits - seenHits);
      seenHits = hits;
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}token_cache_misses_total`,
    help: 'Bearer tokens that needed a signature check.',
    registers,
    collect() {
      const { misses } = sources.tokenCache();
      this.inc(misses - seenMisses);
      seenMisses = misses;
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}token_cache_entries`,
    help: 'Verified tokens currently cached.',
    registers,
    collect() {
      this.set(sources.tokenCache().entries);
    },
  });
  const jwksFetches = new Counter({
    name: `${METRIC_PREFIX}jwks_fetches_total`,
    help: 'Issuer key set fetches (discovery + JWKS) by issuer and result.',
    labelNames: ['issuer', 'result'] as const,
    registers,
  });
  new Gauge({
    name: `${METRIC_PREFIX}jwks_age_seconds`,
    help: "Age of each issuer's key set; grows while the issuer is unreachable (last good keys kept).",
    labelNames: ['issuer'] as const,
    registers,
    collect() {
      this.reset();
      for (const { issuer, ageMs } of sources.keySets()) if (ageMs !== undefined) this.set({ issuer }, ageMs / 1000);
    },
  });
  const credentialRefreshes = new Counter({
    name: `${METRIC_PREFIX}google_token_refreshes_total`,
    help: "Refreshes of the proxy's own Google access token by result.",
    labelNames: ['result'] as const,
    registers,
  });
  new Gauge({
    name: `${METRIC_PREFIX}policy_rules`,
    help: 'Rules in the policy in force.',
    registers,
    collect() {
      this.set(sources.policy().ruleCount);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}policy_info`,
    help: 'The policy in force, by checksum (value is always 1).',
    labelNames: ['version'] as const,
    registers,
    collect() {
      this.reset();
      this.set({ version: sources.policy().version.slice(0, 16) }, 1);
    },
  });

  const auditWritten = new Counter({
    name: `${METRIC_PREFIX}audit_records_written_total`,
    help: 'Audit entries committed, by store.',
    labelNames: ['store'] as const,
    registers,
  });
  const auditWriteFailures = new Counter({
    name: `${METRIC_PREFIX}audit_write_failures_total`,
    help: 'Audit store transactions that failed, by store (their entries are retried or, in strict mode, the requests refused).',
    labelNames: ['store'] as const,
    registers,
  });
  const auditWriteDuration = new Histogram({
    name: `${METRIC_PREFIX}audit_write_duration_seconds`,
    help: 'Duration of one audit store transaction (group commit), by store.',
    labelNames: ['store'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers,
  });
  const auditBatchSize = new Histogram({
    name: `${METRIC_PREFIX}audit_batch_size`,
    help: 'Audit entries per store transaction, by store.',
    labelNames: ['store'] as const,
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000],
    registers,
  });
  const auditRefusals = new Counter({
    name: `${METRIC_PREFIX}audit_refusals_total`,
    help: 'Requests refused (503, nothing forwarded) because the audit store could not take their decision record.',
    registers,
  });
  const auditDropped = new Counter({
    name: `${METRIC_PREFIX}audit_records_dropped_total`,
    help: 'Audit records lost: the queue was full or the store stayed unavailable.',
    registers,
  });
  new Gauge({
    name: `${METRIC_PREFIX}audit_queue_depth`,
    help: 'Audit records accepted and not yet committed.',
    registers,
    collect() {
      this.set(sources.auditQueueDepth?.() ?? 0);
    },
  });

  const overheadDuration = new Histogram({
    name: `${METRIC_PREFIX}overhead_duration_seconds`,
    help:
      "The proxy's own share of a forwarded request: its latency minus the upstream's (authentication, policy, the strict " +
      'audit commit, forwarding).',
    labelNames: ['direction', 'operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
    enableExemplars: exemplars,
  });
  const upstreamResponses = new Counter({
    name: `${METRIC_PREFIX}upstream_responses_total`,
    help:
      'Responses from the upstream (Vertex AI, or a callback backend) by direction, operation and status class; `none` when ' +
      'no response came (unreachable, timeout).',
    labelNames: ['direction', 'operation', 'status_class'] as const,
    registers,
  });
  new Gauge({
    name: `${METRIC_PREFIX}google_token_available`,
    help: '1 while the proxy holds an unexpired Google access token; 0 while it does not (requests are refused with 503).',
    registers,
    collect() {
      this.set(sources.credentialAvailable === undefined || sources.credentialAvailable() ? 1 : 0);
    },
  });
  type DurationHistogram = Histogram<'direction' | 'operation'> | Histogram<'operation'>;
  /** `observe` of a histogram; with exemplars on, the request's trace is the exemplar when it was sampled. */
  const observe: (histogram: DurationHistogram, labels: Record<string, string>, seconds: number, record: AuditRecord) => void = exemplars
    ? (histogram, labels, seconds, record) => {
        const exemplarLabels =
          record.traceSampled === true && record.traceId !== undefined ? { trace_id: record.traceId, span_id: record.spanId ?? '' } : {};
        (histogram as Histogram).observe({ labels, value: seconds, exemplarLabels });
      }
    : (histogram, labels, seconds) => (histogram as Histogram).observe(labels, seconds);

  const dryRunDecisions = new Counter({
    name: `${METRIC_PREFIX}policy_dry_run_total`,
    help: 'Verdicts of dry-run policy rules (they never change a decision), by rule and what the rule would have decided.',
    labelNames: ['rule', 'outcome'] as const,
    registers,
  });

  const identityRefreshes = new Counter({
    name: `${METRIC_PREFIX}team_identity_refreshes_total`,
    help: 'Impersonated access-token refreshes of the team identities (vertex.identities), by service account and result.',
    labelNames: ['service_account', 'result'] as const,
    registers,
  });

  const endpointLookups = new Counter({
    name: `${METRIC_PREFIX}endpoint_lookups_total`,
    help: 'Endpoint lookups (EndpointService.GetEndpoint) for dedicated endpoints, by result: dedicated, shared or error.',
    labelNames: ['result'] as const,
    registers,
  });

  const auditDecisionCommit = new Histogram({
    name: `${METRIC_PREFIX}audit_decision_commit_duration_seconds`,
    help:
      'Strict durability: how long an allowed request waited for its decision entry to be committed to every audit store ' +
      '(shared group commit included), by outcome (ok | error).',
    labelNames: ['outcome'] as const,
    buckets: [0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers,
  });

  return {
    endpointLookup(result) {
      endpointLookups.inc({ result });
    },
    identityRefresh(serviceAccount, result) {
      identityRefreshes.inc({ service_account: serviceAccount, result });
    },
    auditBatch(store, size, seconds, ok) {
      auditWriteDuration.observe({ store }, seconds);
      auditBatchSize.observe({ store }, size);
      if (ok) auditWritten.inc({ store }, size);
      else auditWriteFailures.inc({ store });
    },
    auditRefused() {
      auditRefusals.inc();
    },
    auditDropped(count) {
      auditDropped.inc(count);
    },
    auditDecisionCommit(seconds, ok) {
      auditDecisionCommit.observe({ outcome: ok ? 'ok' : 'error' }, seconds);
    },
    observeRecord(record) {
      // Callbacks have no Vertex AI operation: their route prefix (a bounded set from the config) stands in.
      const operation = record.operation ?? (record.route === undefined ? 'unclassified' : `callback:${record.route}`);
      requests.inc({ direction: record.direction, operation, decision: record.decision, code: String(record.status) });
      const byOperation = { direction: record.direction, operation };
      observe(requestDuration, byOperation, record.latencyMs / 1000, record);
      if (record.upstreamLatencyMs !== undefined) {
        observe(upstreamDuration, { operation }, record.upstreamLatencyMs / 1000, record);
        observe(overheadDuration, byOperation, Math.max(0, record.latencyMs - record.upstreamLatencyMs) / 1000, record);
        upstreamResponses.inc({ direction: record.direction, operation, status_class: statusClass(record.upstreamStatus) });
      }
      // Rule ids come from the config: a bounded label set.
      if (record.dryRun !== undefined) for (const { rule, outcome } of record.dryRun) dryRunDecisions.inc({ rule, outcome });
    },
    jwksFetch(issuer, result) {
      jwksFetches.inc({ issuer, result });
    },
    credentialRefresh(result) {
      credentialRefreshes.inc({ result });
    },
  };
}

const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];
function statusClass(status: number | undefined): string {
  return status === undefined ? 'none' : (STATUS_CLASSES[Math.floor(status / 100)] ?? 'other');
}
