import { describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import { newRequestContext } from '../request-context.js';
import { auditRecordOfEntry, COMPACT_OMITS, toCloudLoggingEntry } from './cloud-logging.js';
import { buildAuditRecord, parseTrace, type ResponseFacts } from './record.js';

const facts = (overrides: Partial<ResponseFacts> = {}): ResponseFacts => ({
  requestId: 'req-1',
  method: 'POST',
  url: '/v1/projects/p/locations/us-central1/endpoints/1:predict?access_token=SECRET&$alt=json',
  headers: {
    authorization: 'Bearer SECRET.TOKEN.VALUE',
    'user-agent': 'sdk/1\nforged: line',
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  },
  clientIp: '10.8.0.12',
  status: 401,
  responseBytes: 321,
  aborted: false,
  responseStarted: true,
  endedAt: process.hrtime.bigint(),
  ...overrides,
});

describe('buildAuditRecord', () => {
  it('carries dry-run verdicts and the upstream identity only when there are some', () => {
    const plain = buildAuditRecord(newRequestContext(), facts());
    expect('dryRun' in plain || 'upstreamIdentity' in plain).toBe(false);
    const ctx = newRequestContext();
    ctx.dryRun = [{ rule: 'tighter', outcome: 'deny' }];
    ctx.upstreamIdentity = 'team-ml@p.iam.gserviceaccount.com';
    expect(buildAuditRecord(ctx, facts())).toMatchObject({
      dryRun: [{ rule: 'tighter', outcome: 'deny' }],
      upstreamIdentity: 'team-ml@p.iam.gserviceaccount.com',
    });
  });

  it('records an unauthenticated request without the token or the query string', () => {
    const ctx = newRequestContext();
    ctx.failure = new ProxyError('ERR_AUTHN_INVALID_TOKEN', 'The token has expired.', { reason: 'token-expired' });
    const record = buildAuditRecord(ctx, facts());
    expect(record).toMatchObject({
      decision: 'deny',
      reason: 'token-expired',
      errorCode: 'ERR_AUTHN_INVALID_TOKEN',
      principal: undefined,
      path: '/v1/projects/p/locations/us-central1/endpoints/1:predict',
      status: 401,
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceSampled: true,
      userAgent: 'sdk/1?forged: line',
    });
    const text = JSON.stringify(toCloudLoggingEntry(record, { traceProject: 'p' }));
    expect(text).not.toContain('SECRET');
  });

  it('marks a response cut short as client-aborted', () => {
    const ctx = newRequestContext();
    ctx.decision = { allowed: true, ruleId: 'r', reason: 'allowed-by-rule' };
    expect(buildAuditRecord(ctx, facts({ aborted: true, status: 200 })).reason).toBe('client-aborted');
  });

  it("records 499 (CANCELLED), not node's default 200, when the caller left before any response started", () => {
    const ctx = newRequestContext();
    ctx.decision = { allowed: true, ruleId: 'r', reason: 'allowed-by-rule' };
    const record = buildAuditRecord(ctx, facts({ aborted: true, responseStarted: false, status: 200 }));
    expect(record).toMatchObject({ status: 499, reason: 'client-aborted' });
    expect(toCloudLoggingEntry(record, { traceProject: 'p' })).toMatchObject({ status: { code: 1 } });
    // A response that started keeps its status: the caller saw it.
    expect(buildAuditRecord(ctx, facts({ aborted: true, responseStarted: true, status: 200 })).status).toBe(200);
  });
});

describe('parseTrace', () => {
  it('reads X-Cloud-Trace-Context when there is no traceparent', () => {
    expect(parseTrace({ 'x-cloud-trace-context': '105445aa7843bc8bf206b12000100000/1;o=1' })).toEqual({
      traceId: '105445aa7843bc8bf206b12000100000',
      spanId: '0000000000000001',
      sampled: true,
    });
  });
  it('ignores malformed trace headers', () => {
    expect(parseTrace({ traceparent: 'garbage', 'x-cloud-trace-context': 'nope' })).toBeUndefined();
  });
});

describe('toCloudLoggingEntry', () => {
  it("writes the special keys GKE's logging agent lifts and an AuditLog-shaped payload", () => {
    const ctx = newRequestContext();
    ctx.decision = { allowed: true, ruleId: 'ml-predict', reason: 'allowed-by-rule' };
    const entry = toCloudLoggingEntry(buildAuditRecord(ctx, facts({ status: 200 })), { traceProject: 'my-proj' });
    expect(entry).toMatchObject({
      severity: 'INFO',
      'logging.googleapis.com/trace': 'projects/my-proj/traces/4bf92f3577b34da6a3ce929d0e0e4736',
      'logging.googleapis.com/spanId': '00f067aa0ba902b7',
      httpRequest: { requestMethod: 'POST', status: 200, responseSize: '321', remoteIp: '10.8.0.12' },
      serviceName: 'aiplatform.googleapis.com',
      status: { code: 0 },
    });
    expect((entry.httpRequest as { latency: string }).latency).toMatch(/^\d+(\.\d+)?s$/);
  });
});

describe('toCloudLoggingEntry, compact', () => {
  const allowed = () => {
    const ctx = newRequestContext();
    ctx.decision = { allowed: true, ruleId: 'ml-predict', reason: 'allowed-by-rule' };
    ctx.upstreamIdentity = 'team-ml@p.iam.gserviceaccount.com';
    return buildAuditRecord(ctx, facts({ status: 200 }));
  };

  it('carries each fact once: no AuditLog copy, no message, nothing the lifted keys already hold', () => {
    const entry = toCloudLoggingEntry(allowed(), { traceProject: 'my-proj', format: 'compact' });
    expect(entry).toMatchObject({
      severity: 'INFO',
      'logging.googleapis.com/trace': 'projects/my-proj/traces/4bf92f3577b34da6a3ce929d0e0e4736',
      'logging.googleapis.com/labels': { 'kube-vertex-proxy/decision': 'allow' },
      httpRequest: { requestMethod: 'POST', status: 200, responseSize: '321', remoteIp: '10.8.0.12', userAgent: 'sdk/1?forged: line' },
      kubeVertexProxy: { ruleId: 'ml-predict', upstreamIdentity: 'team-ml@p.iam.gserviceaccount.com' },
    });
    for (const key of ['message', 'authenticationInfo', 'authorizationInfo', 'methodName', 'status']) expect(entry).not.toHaveProperty(key);
    for (const key of ['status', 'path', 'traceId', 'clientIp', 'decision', 'time']) expect(entry.kubeVertexProxy).not.toHaveProperty(key);
  });

  it('gives the record back from either shape: whole from full, all but the omitted fields from compact', () => {
    const record = {
      ...allowed(),
      principal: 'system:serviceaccount:ml:scorer',
      namespace: 'ml',
      serviceAccount: 'scorer',
      policyVersion: 'abc',
      project: 'p',
      methodName: 'M',
    };
    const json = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
    expect(auditRecordOfEntry(json(toCloudLoggingEntry(record, { traceProject: 'p', format: 'full' })))).toEqual(json(record));
    const compact = json(toCloudLoggingEntry(record, { traceProject: 'p', format: 'compact' }));
    expect(compact.kubeVertexProxy).not.toHaveProperty('serviceAccount');
    expect(compact.kubeVertexProxy).not.toHaveProperty('direction');
    expect(compact.kubeVertexProxy).not.toHaveProperty('reason');
    const partial: Record<string, unknown> = json(record);
    for (const key of COMPACT_OMITS) delete partial[key];
    expect(auditRecordOfEntry(compact)).toEqual(partial);
    // An inbound record keeps its direction.
    expect(
      auditRecordOfEntry(json(toCloudLoggingEntry({ ...record, direction: 'inbound' }, { traceProject: 'p', format: 'compact' })))
        ?.direction,
    ).toBe('inbound');
    expect(auditRecordOfEntry({ severity: 'INFO', message: 'listening' })).toBeUndefined();
  });

  it("keeps the record's field order and leaves out only lifted, omitted and unset fields", () => {
    const record = { ...allowed(), principal: 'system:serviceaccount:ml:scorer', serviceAccount: 'other', reason: 'break-glass' };
    const rest = toCloudLoggingEntry(record, { traceProject: 'p', format: 'compact' }).kubeVertexProxy as Record<string, unknown>;
    const lifted = new Set(['time', 'traceId', 'spanId', 'traceSampled', 'httpMethod', 'path', 'status', 'latencyMs']);
    const expected = Object.keys(record).filter(
      (key) =>
        !lifted.has(key) &&
        !['requestBytes', 'responseBytes', 'clientIp', 'userAgent', 'decision', 'namespace', 'direction'].includes(key) &&
        !(COMPACT_OMITS as readonly string[]).includes(key) &&
        record[key as keyof typeof record] !== undefined,
    );
    expect(Object.keys(rest)).toEqual(expected);
    // A service account that is not the principal's, and an unusual reason, stay.
    expect(rest).toMatchObject({ serviceAccount: 'other', reason: 'break-glass' });
  });
});
