/**
 * The audit trail end to end, against the real proxy process: record content
 * in every sink (stdout, SQLite, PostgreSQL) for allowed, denied and failed
 * calls with no token anywhere; the query API governed by policy and itself
 * audited; strict mode refusing to forward when the store is down; relaxed
 * mode; the CLI (query, verify finding an edited row).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordOfEntry, COMPACT_OMITS } from '../../src/audit/cloud-logging.js';
import type { StoredRecord } from '../../src/audit/store.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { runCli, writeConfig } from '../helpers/proxy-process.js';
import { DEFAULT_RULES, LOCATION, PREDICT_PATH, PROJECT, startWorld, type World } from '../helpers/world.js';

const JOBS_PATH = `/v1/projects/${PROJECT}/locations/${LOCATION}/customJobs`;
const RULES = [
  ...DEFAULT_RULES,
  { id: 'ml-train', effect: 'allow', subjects: { serviceAccounts: ['ml/trainer'] }, permissions: ['training'] },
  { id: 'auditors', effect: 'allow', subjects: { serviceAccounts: ['compliance/*'] }, permissions: ['audit.read'], resources: ['audit/*'] },
];

function readSqlite(path: string): StoredRecord[] {
  const db = new DatabaseSync(path, { readOnly: true });
  const rows = db
    .prepare(
      "SELECT record, phase FROM audit_entries WHERE phase = 'final' OR NOT EXISTS (SELECT 1 FROM audit_entries f WHERE " +
        "f.request_id = audit_entries.request_id AND f.phase = 'final')",
    )
    .all() as Array<{ record: string; phase: string }>;
  db.close();
  return rows.map((r) => ({ ...(JSON.parse(r.record) as StoredRecord), complete: r.phase === 'final' }));
}

async function waitUntil<T>(find: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres({ fsync: false });
});
afterAll(async () => {
  await postgres.stop();
});

describe('audit records in every sink (strict: SQLite + PostgreSQL + stdout)', () => {
  let world: World;
  let dir: string;
  let dbPath: string;
  const tokens: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kvp-audit-it-'));
    dbPath = join(dir, 'audit.db');
    // A Secret mount holds the URL with a trailing newline.
    writeFileSync(join(dir, 'pg-url'), `${postgres.url}\n`);
    world = await startWorld({
      config: (defaults) => ({
        ...defaults,
        policy: { rules: RULES },
        audit: {
          durability: 'strict',
          replicaId: 'it-a',
          sinks: [
            { type: 'stdout' },
            { type: 'sqlite', path: dbPath },
            { type: 'postgres', urlFile: join(dir, 'pg-url'), table: 'it_records' },
          ],
        },
      }),
    });
  });
  afterAll(async () => {
    await world.close();
  });

  let allowedId = '';
  let deniedId = '';
  let failedId = '';
  let unauthId = '';
  let jobId = '';

  beforeAll(async () => {
    const allowToken = world.token('ml', 'trainer');
    const denyToken = world.token('web', 'frontend');
    tokens.push(allowToken, denyToken);
    const ok = await world.call(PREDICT_PATH, {
      token: allowToken,
      body: '{"instances":[{"secret-body-marker":1}]}',
      headers: { 'user-agent': 'audit-test/1', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    });
    expect(ok.status).toBe(200);
    await ok.text();
    const denied = await world.call(PREDICT_PATH, { token: denyToken, body: '{}' });
    expect(denied.status).toBe(403);
    await denied.text();
    world.vertex.failNext(500);
    const failed = await world.call(PREDICT_PATH.replace('1234567890', '555'), { token: allowToken, body: '{}' });
    expect(failed.status).toBe(500);
    await failed.text();
    const unauth = await world.call(PREDICT_PATH, { token: `${allowToken.slice(0, -4)}AAAA`, body: '{}' });
    expect(unauth.status).toBe(401);
    await unauth.text();
    const job = await world.call(JOBS_PATH, {
      token: allowToken,
      body: JSON.stringify({ displayName: 'train', jobSpec: { workerPoolSpecs: [] } }),
    });
    expect(job.status).toBe(200);
    const created = (await job.json()) as { name: string };

    const entries = await waitUntil(() => {
      const audit = world.proxy.audit();
      return audit.length >= 5 ? audit : undefined;
    }, 'five audit lines');
    allowedId = entries.find((e) => e.kubeVertexProxy.status === 200 && e.kubeVertexProxy.operation === 'endpoints.predict')!
      .kubeVertexProxy.requestId;
    deniedId = entries.find((e) => e.kubeVertexProxy.status === 403)!.kubeVertexProxy.requestId;
    failedId = entries.find((e) => e.kubeVertexProxy.status === 500)!.kubeVertexProxy.requestId;
    unauthId = entries.find((e) => e.kubeVertexProxy.status === 401)!.kubeVertexProxy.requestId;
    jobId = entries.find((e) => e.kubeVertexProxy.operation === 'customJobs.create')!.kubeVertexProxy.requestId;
    expect(entries.find((e) => e.kubeVertexProxy.requestId === jobId)!.kubeVertexProxy.longRunningName).toBe(created.name);
  });

  it(
    'records an allowed call with who, what, the rule, the policy version, latencies and sizes — in SQLite and PostgreSQL ' + 'alike',
    async () => {
      const expected = {
        requestId: allowedId,
        principal: 'system:serviceaccount:ml:trainer',
        namespace: 'ml',
        namespaceLabels: { team: 'ml' },
        pod: 'trainer-0',
        operation: 'endpoints.predict',
        permission: 'aiplatform.endpoints.predict',
        resource: `projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`,
        project: PROJECT,
        location: LOCATION,
        decision: 'allow',
        ruleId: 'ml-predict',
        reason: 'allowed-by-rule',
        status: 200,
        upstreamStatus: 200,
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        userAgent: 'audit-test/1',
        clientIp: '127.0.0.1',
        complete: true,
      };
      const fromSqlite = await waitUntil(
        () => readSqlite(dbPath).find((r) => r.requestId === allowedId && r.complete),
        'the sqlite record',
      );
      expect(fromSqlite).toMatchObject(expected);
      expect(fromSqlite.policyVersion).toMatch(/^[0-9a-f]{64}$/);
      expect(fromSqlite.latencyMs).toBeGreaterThan(0);
      expect(fromSqlite.upstreamLatencyMs).toBeGreaterThan(0);
      expect(fromSqlite.requestBytes).toBeGreaterThan(0);
      expect(fromSqlite.responseBytes).toBeGreaterThan(0);

      const client = new pg.Client({ connectionString: postgres.url });
      await client.connect();
      try {
        const row = await waitUntil(async () => {
          const { rows } = await client.query<{ record: string }>(
            "SELECT record FROM it_records WHERE request_id = $1 AND phase = 'final'",
            [allowedId],
          );
          return rows[0];
        }, 'the postgres record');
        expect(JSON.parse(row.record)).toEqual(
          JSON.parse(JSON.stringify(fromSqlite, (k, v: unknown) => (k === 'complete' ? undefined : v))),
        );
        // Strict mode: the decision entry came first, in both stores.
        const { rows } = await client.query<{ phase: string }>('SELECT phase FROM it_records WHERE request_id = $1 ORDER BY seq', [
          allowedId,
        ]);
        expect(rows.map((r) => r.phase)).toEqual(['decision', 'final']);
      } finally {
        await client.end();
      }
    },
  );

  it(
    'writes each fact once on stdout (compact, the default), and the line carries the stored record but the fields left to ' + 'the store',
    async () => {
      const line = world.proxy
        .stdoutText()
        .split('\n')
        .find((l) => l.includes(allowedId) && l.includes('"kubeVertexProxy"'))!;
      const raw = JSON.parse(line) as Record<string, unknown>;
      // The principal and the resource once each (the full line has them four and three times).
      expect(line.split('system:serviceaccount:ml:trainer').length - 1).toBe(1);
      // The resource once as a field (the request path, in httpRequest, contains it too).
      expect(JSON.stringify(raw.kubeVertexProxy).split(`projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`).length - 1).toBe(
        1,
      );
      expect(line.split(`projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`).length - 1).toBe(2);
      expect(Object.keys(raw).sort()).toEqual([
        'httpRequest',
        'kubeVertexProxy',
        'logging.googleapis.com/labels',
        'logging.googleapis.com/spanId',
        'logging.googleapis.com/trace',
        'logging.googleapis.com/trace_sampled',
        'severity',
        'time',
      ]);
      const stored = await waitUntil(() => readSqlite(dbPath).find((r) => r.requestId === allowedId && r.complete), 'the sqlite record');
      const { complete: _complete, ...record } = stored;
      const expected: Record<string, unknown> = { ...record };
      for (const key of COMPACT_OMITS) delete expected[key];
      expect(auditRecordOfEntry(raw)).toEqual(expected);
      // One line per request on stdout, in strict mode too (the decision entry goes to the stores only).
      expect(world.proxy.audit().filter((e) => e.kubeVertexProxy.requestId === allowedId)).toHaveLength(1);
      expect(record.policyVersion).toMatch(/^[0-9a-f]{64}$/);
    },
  );

  it('records denied, failed and unauthenticated calls with the same fields', async () => {
    const records = await waitUntil(() => {
      const all = readSqlite(dbPath);
      const found = [deniedId, failedId, unauthId].map((id) => all.find((r) => r.requestId === id));
      return found.every((r) => r !== undefined) ? found : undefined;
    }, 'three records');
    const [denied, failed, unauth] = records as [StoredRecord, StoredRecord, StoredRecord];
    expect(denied).toMatchObject({
      decision: 'deny',
      status: 403,
      reason: 'no-matching-rule',
      errorCode: 'ERR_AUTHZ_DENIED',
      principal: 'system:serviceaccount:web:frontend',
      permission: 'aiplatform.endpoints.predict',
    });
    expect(denied.upstreamStatus).toBeUndefined();
    expect(failed).toMatchObject({ decision: 'allow', ruleId: 'ml-predict', status: 500, upstreamStatus: 500 });
    expect(unauth).toMatchObject({ decision: 'deny', status: 401, errorCode: 'ERR_AUTHN_INVALID_TOKEN' });
    expect(unauth.principal).toBeUndefined();
  });

  it('joins a long-running call to the job name Vertex AI returned', () => {
    const job = readSqlite(dbPath).find((r) => r.requestId === jobId);
    expect(job?.longRunningName).toMatch(/^projects\/123456789012\/locations\/us-central1\/customJobs\/[0-9]+$/);
    expect(job?.ruleId).toBe('ml-train');
  });

  it('never writes a token or a body into any sink', async () => {
    await world.proxy.waitForAudit((e) => e.kubeVertexProxy.requestId === jobId);
    const sinks: Array<[string, string]> = [['stdout', world.proxy.stdoutText()]];
    for (const suffix of ['', '-wal'])
      if (existsSync(`${dbPath}${suffix}`)) sinks.push([`sqlite${suffix}`, readFileSync(`${dbPath}${suffix}`).toString('latin1')]);
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    const { rows } = await client.query<{ dump: string }>("SELECT string_agg(t::text, E'\\n') AS dump FROM it_records t");
    await client.end();
    sinks.push(['postgres', rows[0]?.dump ?? '']);
    for (const [name, text] of sinks) {
      expect(text.length, name).toBeGreaterThan(0);
      for (const token of tokens) {
        // Any of the JWT's three parts would be a leak (the signature alone is a bearer secret's tail).
        for (const part of token.split('.')) expect(text.includes(part), `${name} contains a token part`).toBe(false);
      }
      expect(text.includes('secret-body-marker'), `${name} contains a body`).toBe(false);
    }
  });

  it('answers GET /audit/v1/records only with an audit.read grant, and audits the query itself', async () => {
    const auditor = world.token('compliance', 'auditor');
    const refused = await world.call(`/audit/v1/records?principal=system:serviceaccount:ml:trainer`, {
      token: world.token('ml', 'trainer'),
    });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { status: string } }).error.status).toBe('PERMISSION_DENIED');
    const noToken = await world.call('/audit/v1/records', { token: null });
    expect(noToken.status).toBe(401);
    await noToken.text();

    const response = await world.call(
      `/audit/v1/records?principal=${encodeURIComponent('system:serviceaccount:ml:*')}` +
        `&permission=aiplatform.endpoints.*&decision=allow&pageSize=1`,
      { token: auditor },
    );
    expect(response.status).toBe(200);
    const page = (await response.json()) as { records: StoredRecord[]; nextPageToken?: string };
    expect(page.records).toHaveLength(1);
    expect(page.nextPageToken).toBeDefined();
    const next = (await (
      await world.call(
        `/audit/v1/records?principal=${encodeURIComponent('system:serviceaccount:ml:*')}` +
          `&permission=aiplatform.endpoints.*&decision=allow&pageSize=1&pageToken=${page.nextPageToken}`,
        { token: auditor },
      )
    ).json()) as { records: StoredRecord[] };
    expect(next.records).toHaveLength(1);
    expect(new Set([page.records[0]!.requestId, next.records[0]!.requestId])).toEqual(new Set([allowedId, failedId]));

    const summary = (await (await world.call('/audit/v1/summary?from=1h', { token: auditor })).json()) as {
      rows: Array<{ principal: string; permission: string; decision: string; count: number }>;
    };
    expect(summary.rows).toContainEqual({
      principal: 'system:serviceaccount:web:frontend',
      permission: 'aiplatform.endpoints.predict',
      decision: 'deny',
      count: 1,
    });

    const bad = await world.call('/audit/v1/records?decision=maybe', { token: auditor });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { details: Array<{ metadata?: { code: string } }> } }).error.details[0]?.metadata?.code).toBe(
      'ERR_AUDIT_INVALID_QUERY',
    );

    const own = await world.proxy.waitForAudit(
      (e) => e.kubeVertexProxy.operation === 'audit.records.list' && e.kubeVertexProxy.decision === 'allow',
    );
    expect(own.kubeVertexProxy).toMatchObject({
      principal: 'system:serviceaccount:compliance:auditor',
      permission: 'audit.read',
      resource: 'audit/records',
      ruleId: 'auditors',
      status: 200,
    });
    const deniedQuery = await world.proxy.waitForAudit(
      (e) => e.kubeVertexProxy.operation === 'audit.records.list' && e.kubeVertexProxy.decision === 'deny',
    );
    expect(deniedQuery.kubeVertexProxy).toMatchObject({ principal: 'system:serviceaccount:ml:trainer', status: 403 });
  });

  // Seven CLI processes: slow on a loaded machine, hence the longer timeout.
  it('the CLI queries the store as a table, JSON lines or CSV, and verify reports the first edited row', { timeout: 90_000 }, async () => {
    const configPath = writeConfig({
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: 'https://issuer.example', audiences: ['x'] }],
      vertex: { projects: [PROJECT], locations: [LOCATION] },
      audit: { sinks: [{ type: 'sqlite', path: dbPath }] },
    });
    const json = await runCli(['audit', 'query', '--config', configPath, '--decision', 'deny', '--format', 'json', '--namespace', 'web']);
    expect(json.code).toBe(0);
    const lines = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as StoredRecord);
    expect(lines.map((r) => r.requestId)).toEqual([deniedId]);
    const csv = await runCli(['audit', 'query', '--config', configPath, '--format', 'csv', '--permission', 'aiplatform.customJobs.create']);
    expect(csv.stdout.split('\n')[0]).toMatch(/^time,requestId,/);
    expect(csv.stdout).toContain(jobId);
    const table = await runCli([
      'audit',
      'query',
      '--config',
      configPath,
      '--since',
      '1h',
      '--principal',
      'system:serviceaccount:web:frontend',
    ]);
    expect(table.stdout).toMatch(/^TIME\s+DECISION\s+STATUS\s+PRINCIPAL/);
    expect(table.stdout).toContain('no-matching-rule');

    // The same question to a running proxy, with an auditor's token.
    const tokenFile = join(dir, 'auditor.token');
    writeFileSync(tokenFile, world.token('compliance', 'auditor'));
    const remote = await runCli([
      'audit',
      'query',
      '--proxy',
      world.proxy.dataUrl,
      '--token-file',
      tokenFile,
      '--decision',
      'deny',
      '--namespace',
      'web',
      '--format',
      'json',
    ]);
    expect(remote.code).toBe(0);
    expect(
      remote.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as StoredRecord).requestId),
    ).toEqual([deniedId]);
    const summary = await runCli(['audit', 'summary', '--proxy', world.proxy.dataUrl, '--token-file', tokenFile, '--format', 'csv']);
    expect(summary.stdout).toContain('system:serviceaccount:web:frontend,aiplatform.endpoints.predict,deny,1');

    const ok = await runCli(['audit', 'verify', '--config', configPath]);
    expect(ok.stdout).toMatch(/^ok: \d+ entries from 1 writer/);
    expect(ok.code).toBe(0);

    const db = new DatabaseSync(dbPath);
    const target = db.prepare('SELECT seq FROM audit_entries WHERE request_id = ? AND phase = ?').get(deniedId, 'final') as { seq: number };
    db.prepare(
      "UPDATE audit_entries SET record = replace(record, '\"status\":403', '\"status\":200') WHERE request_id = ? AND phase = 'final'",
    ).run(deniedId);
    db.close();
    const broken = await runCli(['audit', 'verify', '--config', configPath]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`BROKEN: writer it-a, seq ${target.seq}`);
    expect(broken.stdout).toContain('entry modified');
  });
});

describe('strict mode when the store is down', () => {
  it('refuses with 503 UNAVAILABLE and forwards nothing; recovers when the store is back', async () => {
    const down = await startTestPostgres({ fsync: false });
    const world = await startWorld({
      config: (defaults) => ({
        ...defaults,
        audit: { durability: 'strict', sinks: [{ type: 'stdout' }, { type: 'postgres', url: down.url }] },
      }),
    });
    try {
      expect((await world.call(PREDICT_PATH, { body: '{}' })).status).toBe(200);
      await down.pause();
      world.vertex.reset();
      const refused = await world.call(PREDICT_PATH, { body: '{}' });
      expect(refused.status).toBe(503);
      const body = (await refused.json()) as {
        error: { status: string; message: string; details: Array<{ metadata?: { code: string } }> };
      };
      expect(body.error.status).toBe('UNAVAILABLE');
      expect(body.error.details[0]?.metadata?.code).toBe('ERR_AUDIT_UNAVAILABLE');
      expect(world.vertex.requests).toEqual([]);
      const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.errorCode === 'ERR_AUDIT_UNAVAILABLE');
      expect(entry.kubeVertexProxy.upstreamStatus).toBeUndefined();
      const metrics = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/kube_vertex_proxy_audit_refusals_total [1-9]/);
      expect(metrics).toMatch(/kube_vertex_proxy_audit_write_failures_total\{store="postgres"\} [1-9]/);
      expect((await fetch(`${world.proxy.adminUrl}/readyz`)).status).toBe(503);

      await down.start();
      // Readiness comes back by itself: a pod out of its Service gets no traffic to prove the store is back.
      await waitUntil(
        async () => ((await fetch(`${world.proxy.adminUrl}/readyz`)).status === 200 ? true : undefined),
        'readiness after the store is back',
      );
      expect((await world.call(PREDICT_PATH, { body: '{}' })).status).toBe(200);
      expect(world.vertex.requests).toHaveLength(1);
    } finally {
      await world.close();
      await down.stop();
    }
  });
});

describe('audit.stdout.format: full', () => {
  it('adds the AuditLog-shaped payload and a message beside the whole record', async () => {
    const world = await startWorld({
      config: (defaults) => ({ ...defaults, audit: { durability: 'relaxed', sinks: [{ type: 'stdout' }], stdout: { format: 'full' } } }),
    });
    try {
      expect((await world.call(PREDICT_PATH, { token: world.token('ml', 'trainer'), body: '{}' })).status).toBe(200);
      const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.operation === 'endpoints.predict');
      const raw = JSON.parse(
        world.proxy
          .stdoutText()
          .split('\n')
          .find((l) => l.includes(entry.kubeVertexProxy.requestId))!,
      ) as Record<string, unknown>;
      expect(raw).toMatchObject({
        '@type': 'type.googleapis.com/google.cloud.audit.AuditLog',
        serviceName: 'aiplatform.googleapis.com',
        methodName: 'google.cloud.aiplatform.v1.PredictionService.Predict',
        resourceName: `projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`,
        authenticationInfo: { principalEmail: 'system:serviceaccount:ml:trainer' },
        authorizationInfo: [{ permission: 'aiplatform.endpoints.predict', granted: true }],
        status: { code: 0 },
        message: expect.stringContaining('ALLOW endpoints.predict system:serviceaccount:ml:trainer 200') as unknown,
        kubeVertexProxy: { principal: 'system:serviceaccount:ml:trainer', status: 200, httpMethod: 'POST', decision: 'allow' },
      });
    } finally {
      await world.close();
    }
  });
});

describe('relaxed mode', () => {
  it('writes records after the response, batched', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvp-audit-relaxed-'));
    const dbPath = join(dir, 'audit.db');
    const world = await startWorld({
      config: (defaults) => ({ ...defaults, audit: { durability: 'relaxed', sinks: [{ type: 'sqlite', path: dbPath }] } }),
    });
    try {
      const responses = await Promise.all(Array.from({ length: 40 }, () => world.call(PREDICT_PATH, { body: '{}' })));
      expect(responses.map((r) => r.status)).toEqual(Array(40).fill(200));
      const records = await waitUntil(() => {
        const all = readSqlite(dbPath);
        return all.length >= 40 ? all : undefined;
      }, '40 records');
      expect(records.every((r) => r.complete && r.status === 200)).toBe(true);
      // Relaxed mode writes no decision entries.
      const db = new DatabaseSync(dbPath, { readOnly: true });
      expect((db.prepare("SELECT COUNT(*) AS n FROM audit_entries WHERE phase = 'decision'").get() as { n: number }).n).toBe(0);
      db.close();
      // stdout is not a sink here.
      expect(world.proxy.audit()).toEqual([]);
      const metrics = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/kube_vertex_proxy_audit_records_written_total\{store="sqlite"\} (4\d|[5-9]\d)/);
    } finally {
      await world.close();
    }
  });
});
