import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../audit/record.js';
import { createMetrics } from './metrics.js';

const GOLDEN = join(import.meta.dirname, '../../test/fixtures/metrics/golden.prom');

function record(overrides: Partial<AuditRecord>): AuditRecord {
  return {
    time: '2026-11-27T00:00:00.000Z',
    requestId: 'r',
    direction: 'outbound',
    traceId: undefined,
    spanId: undefined,
    traceSampled: undefined,
    principal: 'system:serviceaccount:ml:trainer',
    issuer: 'cluster',
    namespace: 'ml',
    serviceAccount: 'trainer',
    pod: 'p',
    podUid: 'u',
    tokenId: undefined,
    operation: 'endpoints.predict',
    methodName: 'm',
    permission: 'aiplatform.endpoints.predict',
    permissionType: 'DATA_READ',
    resource: 'projects/p/locations/l/endpoints/1',
    project: 'p',
    location: 'l',
    decision: 'allow',
    ruleId: 'ml-predict',
    reason: 'allowed-by-rule',
    errorCode: undefined,
    policyVersion: 'v',
    httpMethod: 'POST',
    path: '/v1/x',
    status: 200,
    upstreamStatus: 200,
    upstreamError: undefined,
    latencyMs: 12,
    upstreamLatencyMs: 10,
    requestBytes: 10,
    responseBytes: 20,
    clientIp: '127.0.0.1',
    userAgent: 'ua',
    namespaceLabels: undefined,
    upstreamRequestId: undefined,
    longRunningName: undefined,
    ...overrides,
  };
}

describe('metrics exposition', () => {
  it('matches the golden text (names, help, labels, buckets)', async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry, {
      tokenCache: () => ({ hits: 41, misses: 2, entries: 2 }),
      keySets: () => [{ issuer: 'cluster', ageMs: 30_000 }],
      policy: () => ({ version: 'f'.repeat(64), ruleCount: 3 }),
      auditQueueDepth: () => 7,
    });
    metrics.observeRecord(record({}));
    metrics.observeRecord(record({ latencyMs: 300, upstreamLatencyMs: 250 }));
    metrics.observeRecord(
      record({ decision: 'deny', status: 403, upstreamLatencyMs: undefined, ruleId: undefined, reason: 'no-matching-rule' }),
    );
    metrics.observeRecord(
      record({ operation: undefined, decision: 'deny', status: 401, upstreamLatencyMs: undefined, principal: undefined }),
    );
    metrics.observeRecord(
      record({
        operation: 'customJobs.create',
        dryRun: [
          { rule: 'tighter-gpus', outcome: 'deny' },
          { rule: 'new-team', outcome: 'allow' },
        ],
      }),
    );
    metrics.jwksFetch('cluster', 'success');
    metrics.jwksFetch('cluster', 'error');
    metrics.credentialRefresh('success');
    metrics.auditBatch('sqlite', 12, 0.003, true);
    metrics.auditBatch('postgres', 3, 0.02, false);
    metrics.auditRefused();
    metrics.auditDropped(2);
    metrics.identityRefresh('team-ml@p.iam.gserviceaccount.com', 'success');
    metrics.endpointLookup('dedicated');
    metrics.auditDecisionCommit(0.0015, true);
    const text = await registry.metrics();
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, text);
    expect(text).toBe(readFileSync(GOLDEN, 'utf8'));
    expect(text).not.toContain('system:serviceaccount');
  });
});
