import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../test/helpers/postgres.js';
import { openPostgresStore } from './postgres.js';
import type { AuditRecord } from './record.js';
import { openSqliteStore } from './sqlite.js';
import type { AuditQuery, AuditStore, StoredRecord } from './store.js';

const T0 = Date.parse('2026-11-01T00:00:00.000Z');
const MINUTE = 60_000;

function record(i: number, overrides: Partial<AuditRecord> = {}): AuditRecord {
  const namespace = ['ml', 'web', 'data'][i % 3] as string;
  const sa = ['trainer', 'frontend', 'etl', 'intern'][i % 4] as string;
  const deny = i % 5 === 0;
  const op = i % 2 === 0 ? ['endpoints.predict', 'aiplatform.endpoints.predict'] : ['customJobs.create', 'aiplatform.customJobs.create'];
  return {
    time: new Date(T0 + i * MINUTE).toISOString(),
    requestId: `req-${i}`,
    direction: 'outbound',
    traceId: undefined,
    spanId: undefined,
    traceSampled: undefined,
    principal: `system:serviceaccount:${namespace}:${sa}`,
    issuer: 'cluster',
    namespace,
    namespaceLabels: { team: namespace },
    serviceAccount: sa,
    pod: `${sa}-0`,
    podUid: undefined,
    tokenId: undefined,
    operation: op[0],
    methodName: 'google.cloud.aiplatform.v1.X.Y',
    permission: op[1],
    permissionType: 'DATA_READ',
    resource: `projects/p/locations/us-central1/${i % 2 === 0 ? 'endpoints' : 'customJobs'}/${i % 7}`,
    project: 'p',
    location: 'us-central1',
    decision: deny ? 'deny' : 'allow',
    ruleId: deny ? undefined : i % 2 === 0 ? 'ml-predict' : 'ml-train',
    reason: deny ? 'no-matching-rule' : 'allowed-by-rule',
    errorCode: deny ? 'ERR_AUTHZ_DENIED' : undefined,
    policyVersion: 'v1',
    httpMethod: 'POST',
    path: '/v1/x',
    status: deny ? 403 : 200,
    upstreamStatus: deny ? undefined : 200,
    upstreamError: undefined,
    upstreamRequestId: undefined,
    longRunningName: i % 2 === 1 && !deny ? `projects/123/locations/us-central1/customJobs/${i}` : undefined,
    latencyMs: 3,
    upstreamLatencyMs: deny ? undefined : 2,
    requestBytes: 10,
    responseBytes: 20,
    clientIp: '127.0.0.1',
    userAgent: 'test',
    ...overrides,
  };
}

async function all(store: AuditStore, query: AuditQuery, pageSize: number): Promise<{ records: StoredRecord[]; pages: number }> {
  const records: StoredRecord[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.query(query, pageSize, cursor);
    records.push(...page.records);
    cursor = page.nextCursor;
    pages += 1;
  } while (cursor !== undefined);
  return { records, pages };
}

const N = 3000;
const expected = (predicate: (i: number, r: AuditRecord) => boolean) =>
  Array.from({ length: N }, (_, i) => i).filter((i) => predicate(i, record(i))).length;

interface Backend {
  readonly name: string;
  open(writer?: string): Promise<AuditStore>;
  /** Runs raw SQL against the backing database (to tamper with it). */
  exec(sql: string): Promise<void>;
  cleanup(): Promise<void>;
}

function sqliteBackend(): Backend {
  const dir = mkdtempSync(join(tmpdir(), 'kvp-audit-sqlite-'));
  const path = join(dir, 'audit.db');
  return {
    name: 'sqlite',
    open: async (writer = 'replica-a') => openSqliteStore({ path, writer, maxBatch: 500 }),
    exec: async (sql) => {
      const db = new DatabaseSync(path);
      db.exec(sql);
      db.close();
    },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

let postgres: TestPostgres | undefined;
function postgresBackend(): Backend {
  const table = `audit_${Math.random().toString(36).slice(2, 10)}`;
  return {
    name: 'postgres',
    open: (writer = 'replica-a') => openPostgresStore({ url: (postgres as TestPostgres).url, table, maxConnections: 4, writer, maxBatch: 500 }),
    exec: async (sql) => {
      const client = new pg.Client({ connectionString: (postgres as TestPostgres).url });
      await client.connect();
      await client.query(sql.replaceAll('audit_entries', table));
      await client.end();
    },
    cleanup: async () => undefined,
  };
}

beforeAll(async () => {
  postgres = await startTestPostgres({ fsync: false });
});
afterAll(async () => {
  await postgres?.stop();
});

describe.each([
  ['sqlite', sqliteBackend],
  ['postgres', postgresBackend],
] as const)('audit store: %s', (_name, makeBackend) => {
  let backend: Backend;
  let store: AuditStore;

  beforeAll(async () => {
    backend = makeBackend();
    store = await backend.open();
    // Concurrent appends: group commit packs them into few transactions.
    await Promise.all(Array.from({ length: N }, (_, i) => store.append([{ phase: 'final', record: record(i) }])));
  });
  afterAll(async () => {
    await store.close();
    await backend.cleanup();
  });

  it('gives back what was written, field for field (round trip)', async () => {
    const page = await store.query({ principal: 'system:serviceaccount:web:frontend' }, 1);
    const got = page.records[0] as StoredRecord;
    const i = Number(got.requestId.slice(4));
    expect(got).toEqual({ ...JSON.parse(JSON.stringify(record(i))), complete: true });
  });

  it.each<[string, AuditQuery, (i: number, r: AuditRecord) => boolean]>([
    ['principal', { principal: 'system:serviceaccount:ml:trainer' }, (_i, r) => r.principal === 'system:serviceaccount:ml:trainer'],
    ['principal pattern', { principal: 'system:serviceaccount:ml:*' }, (_i, r) => r.namespace === 'ml'],
    ['namespace', { namespace: 'web' }, (_i, r) => r.namespace === 'web'],
    ['permission', { permission: 'aiplatform.customJobs.create' }, (_i, r) => r.permission === 'aiplatform.customJobs.create'],
    ['permission pattern', { permission: 'aiplatform.endpoints.*' }, (_i, r) => r.permission?.startsWith('aiplatform.endpoints.') === true],
    ['operation', { operation: 'endpoints.predict' }, (_i, r) => r.operation === 'endpoints.predict'],
    ['resource', { resource: 'projects/p/locations/us-central1/endpoints/3' }, (_i, r) => r.resource === 'projects/p/locations/us-central1/endpoints/3'],
    ['resource pattern', { resource: 'projects/p/locations/*/customJobs/*' }, (_i, r) => r.resource?.includes('/customJobs/') === true],
    ['decision', { decision: 'deny' }, (_i, r) => r.decision === 'deny'],
    ['status', { status: 403 }, (_i, r) => r.status === 403],
    ['rule', { rule: 'ml-train' }, (_i, r) => r.ruleId === 'ml-train'],
    ['from/to', { from: T0 + 100 * MINUTE, to: T0 + 250 * MINUTE }, (i) => i >= 100 && i < 250],
    ['everything at once', { namespace: 'ml', decision: 'allow', permission: 'aiplatform.endpoints.*', from: T0, to: T0 + 2000 * MINUTE }, (i, r) => r.namespace === 'ml' && r.decision === 'allow' && r.operation === 'endpoints.predict' && i < 2000],
  ])('filters by %s, across pages, newest first, each record once', async (_what, query, predicate) => {
    const { records, pages } = await all(store, query, 97);
    expect(records.length).toBe(expected(predicate));
    expect(records.length).toBeGreaterThan(0);
    expect(pages).toBe(Math.ceil(records.length / 97));
    expect(new Set(records.map((r) => r.requestId)).size).toBe(records.length);
    const times = records.map((r) => Date.parse(r.time));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    for (const r of records) expect(predicate(Number(r.requestId.slice(4)), r)).toBe(true);
  });

  it('pages through all records without gaps', async () => {
    const { records } = await all(store, {}, 1000);
    expect(records.length).toBe(N);
  });

  it('treats LIKE metacharacters in a filter literally', async () => {
    expect((await store.query({ principal: 'system:serviceaccount:ml:%' }, 10)).records).toEqual([]);
    expect((await store.query({ principal: 'system_serviceaccount*' }, 10)).records).toEqual([]);
  });

  it('refuses a cursor it did not issue', async () => {
    await expect(store.query({}, 10, 'bm90LWEtY3Vyc29y')).rejects.toThrow('invalid cursor');
  });

  it('summarizes counts by principal × permission × decision over a range', async () => {
    const rows = await store.summary({ from: T0, to: T0 + 600 * MINUTE });
    const total = rows.reduce((sum, r) => sum + r.count, 0);
    expect(total).toBe(600);
    const row = rows.find((r) => r.principal === 'system:serviceaccount:ml:trainer' && r.permission === 'aiplatform.endpoints.predict' && r.decision === 'allow');
    expect(row?.count).toBe(expected((i, r) => i < 600 && r.principal === 'system:serviceaccount:ml:trainer' && r.permission === 'aiplatform.endpoints.predict' && r.decision === 'allow'));
  });

  it('shows one record per request: the final entry replaces the decision entry, an orphaned decision stays visible as incomplete', async () => {
    await store.append([{ phase: 'decision', record: record(0, { requestId: 'strict-1', status: 0, decision: 'allow' }) }]);
    await store.append([{ phase: 'decision', record: record(0, { requestId: 'strict-2', status: 0, decision: 'allow' }) }]);
    await store.append([{ phase: 'final', record: record(0, { requestId: 'strict-1', status: 200, decision: 'allow' }) }]);
    const one = (await all(store, {}, 1000)).records.filter((r) => r.requestId.startsWith('strict-'));
    expect(one.map((r) => [r.requestId, r.complete, r.status]).sort()).toEqual([
      ['strict-1', true, 200],
      ['strict-2', false, 0],
    ]);
  });

  it('verifies the hash chain, continues it after a restart, and finds an edited row', async () => {
    expect(await store.verify()).toMatchObject({ ok: true, writers: 1, entries: N + 3 });
    await store.close();
    store = await backend.open();
    await store.append([{ phase: 'final', record: record(1, { requestId: 'after-restart' }) }]);
    const other = await backend.open('replica-b');
    await other.append([{ phase: 'final', record: record(2, { requestId: 'other-writer' }) }]);
    await other.close();
    expect(await store.verify()).toMatchObject({ ok: true, writers: 2, entries: N + 5 });

    // seq 501 is request 500: denied. Turning it into an allow in the indexed column alone…
    await backend.exec(`UPDATE audit_entries SET decision = 'allow' WHERE writer = 'replica-a' AND seq = 501`);
    expect(await store.verify()).toMatchObject({ ok: false, broken: { writer: 'replica-a', seq: 501, problem: expect.stringContaining('column decision') } });
    // …or in the stored record as well: the hash no longer matches.
    await backend.exec(`UPDATE audit_entries SET record = replace(record, '"decision":"deny"', '"decision":"allow"') WHERE writer = 'replica-a' AND seq = 501`);
    expect(await store.verify()).toMatchObject({ ok: false, broken: { seq: 501, problem: expect.stringContaining('hash does not match') } });
  });

  it('finds a deleted row as a gap in the chain', async () => {
    await backend.exec(`UPDATE audit_entries SET decision = 'deny', record = replace(record, '"decision":"allow"', '"decision":"deny"') WHERE writer = 'replica-a' AND seq = 501`);
    expect((await store.verify()).ok).toBe(true);
    await backend.exec(`DELETE FROM audit_entries WHERE writer = 'replica-a' AND seq = 1000`);
    expect(await store.verify()).toMatchObject({ ok: false, broken: { seq: 1001, problem: expect.stringContaining('sequence gap') } });
  });

  it('retention deletes the oldest entries in batches, and the remaining chain still verifies', async () => {
    await backend.exec(`UPDATE audit_entries SET written_ms = 0 WHERE seq <= 10`);
    // written_ms is hashed: rows whose time was rewritten are exactly the ones retention removes here.
    const deleted = await store.deleteOlderThan(1, 4);
    expect(deleted).toBe(11);
    const result = await store.verify();
    expect(result.broken?.problem ?? '').toContain('sequence gap'); // the row deleted in the previous test
  });
});

describe('group commit', () => {
  it('packs concurrent appends into few transactions, and a failed transaction leaves no hole in the chain', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvp-audit-gc-'));
    const batches: number[] = [];
    const store = openSqliteStore({ path: join(dir, 'a.db'), writer: 'w', maxBatch: 500, onBatch: (_k, size, _s, ok) => ok && batches.push(size) });
    await Promise.all(Array.from({ length: 1000 }, (_, i) => store.append([{ phase: 'final', record: record(i) }])));
    expect(batches.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(batches.length).toBeLessThanOrEqual(4);
    expect(await store.verify()).toMatchObject({ ok: true, entries: 1000 });
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
