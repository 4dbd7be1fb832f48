/**
 * The audit store conformance suite: what every {@link AuditStore} backend
 * must do, as one set of tests run against each (SQLite and PostgreSQL
 * today; a third store would have to pass it too). A backend comes with a
 * {@link ConformanceBackend}: a way to open the store and to reach behind
 * it (tamper with rows, read raw tables, explain a query), because the
 * suite checks that tampering is found and that filters use an index.
 *
 * Use: `describeAuditStoreConformance('sqlite', () => sqliteBackend())` in
 * the store's own test file.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AuditRecord } from '../../src/audit/record.js';
import {
  recordsSql,
  summarySql,
  toSummaryRow,
  toUsageSummaryRow,
  usageSummarySql,
  whereClause,
  type AuditQuery,
  type AuditStore,
  type StoredRecord,
  type SummaryGroup,
} from '../../src/audit/store.js';

const T0 = Date.parse('2026-11-01T00:00:00.000Z');
const MINUTE = 60_000;

export function record(i: number, overrides: Partial<AuditRecord> = {}): AuditRecord {
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

/** A query's conditions with the values inlined as SQL literals (for {@link ConformanceBackend.rows}, which takes no parameters). */
function literalWhere(query: AuditQuery): string {
  return whereClause(query, (v) => (typeof v === 'number' ? String(v) : `'${String(v).replaceAll("'", "''")}'`));
}

/**
 * Summaries the store gives (through its hourly rollup where it can) equal the ones computed from the entries alone, row for row
 * and in the same order, for each query.
 */
async function expectSummariesFromEntries(store: AuditStore, backend: ConformanceBackend, queries: readonly AuditQuery[]): Promise<void> {
  const groupings: SummaryGroup[][] = [['principal'], ['namespace', 'model'], ['model']];
  for (const query of queries) {
    const label = JSON.stringify(query);
    const fromEntries = (await backend.rows(summarySql('audit_entries', literalWhere(query)))).map(toSummaryRow);
    expect(await store.summary(query), label).toEqual(fromEntries);
    for (const groupBy of groupings) {
      const usage = (await backend.rows(usageSummarySql('audit_entries', groupBy, literalWhere(query)))).map((r) =>
        toUsageSummaryRow(r, groupBy),
      );
      expect(await store.usageSummary(query, groupBy), `${label} by ${groupBy.join(',')}`).toEqual(usage);
    }
  }
}

/** Ranges that start and end inside hours (as a UTC+05:30 day or hour does), on hour boundaries, open at either end, or inside one hour. */
function rollupQueries(t0: number): AuditQuery[] {
  const HOUR = 60 * MINUTE;
  return [
    {},
    { from: t0, to: t0 + 10 * HOUR },
    { from: t0 + 30 * MINUTE, to: t0 + 10 * HOUR + 30 * MINUTE },
    { from: t0 + 7 * MINUTE, to: t0 + 2 * HOUR + 5 * MINUTE },
    { from: t0 + 45 * MINUTE },
    { to: t0 + 90 * MINUTE },
    { from: t0 + 10 * MINUTE, to: t0 + 50 * MINUTE },
    { from: t0 + 60 * MINUTE, to: t0 + 61 * MINUTE },
    { principal: 'system:serviceaccount:ml:trainer', from: t0 + 30 * MINUTE, to: t0 + 20 * HOUR },
    { permission: 'aiplatform.endpoints.*', decision: 'allow', from: t0 + 90 * MINUTE },
    { namespace: 'web', decision: 'deny' },
    { principal: 'system:serviceaccount:*:etl', to: t0 + 5 * HOUR + 1 },
    // Filters the rollup lacks: answered from the entries.
    { operation: 'endpoints.predict', from: t0 + 30 * MINUTE, to: t0 + 5 * HOUR },
    { status: 403 },
  ];
}

/** Takes the hourly rollup (table and triggers) away, as a store written before it has none. */
async function dropRollup(backend: ConformanceBackend, kind: AuditStore['kind']): Promise<void> {
  for (const trigger of ['audit_entries_hourly_ins', 'audit_entries_hourly_del'])
    await backend.exec(kind === 'postgres' ? `DROP TRIGGER ${trigger} ON audit_entries` : `DROP TRIGGER ${trigger}`);
  await backend.exec('DROP TABLE audit_entries_hourly');
}

export interface ConformanceBackend {
  /** A fresh, empty store's handle; `open` may be called again (restart) and with another writer id (a second replica). */
  open(writer?: string): Promise<AuditStore>;
  /** Runs raw SQL against the backing database (to tamper with it); `audit_entries` names the store's table. */
  exec(sql: string): Promise<void>;
  /** Runs one raw query and returns its rows; `audit_entries` names the store's table. */
  rows(sql: string): Promise<Array<Record<string, unknown>>>;
  /** The store's secondary index names (without primary and unique keys), each ending in its `audit_entries_` suffix. */
  indexNames(): Promise<string[]>;
  /** Fails (expect) unless `sql` is answered from a final-only filter index and the open list, not by scanning entries. */
  expectIndexedPlan(sql: string): Promise<void>;
  cleanup(): Promise<void>;
}

export function describeAuditStoreConformance(name: string, makeBackend: () => ConformanceBackend): void {
  describe(`audit store conformance: ${name}`, () => {
    let backend: ConformanceBackend;
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
      [
        'permission pattern',
        { permission: 'aiplatform.endpoints.*' },
        (_i, r) => r.permission?.startsWith('aiplatform.endpoints.') === true,
      ],
      ['operation', { operation: 'endpoints.predict' }, (_i, r) => r.operation === 'endpoints.predict'],
      [
        'resource',
        { resource: 'projects/p/locations/us-central1/endpoints/3' },
        (_i, r) => r.resource === 'projects/p/locations/us-central1/endpoints/3',
      ],
      ['resource pattern', { resource: 'projects/p/locations/*/customJobs/*' }, (_i, r) => r.resource?.includes('/customJobs/') === true],
      ['decision', { decision: 'deny' }, (_i, r) => r.decision === 'deny'],
      ['status', { status: 403 }, (_i, r) => r.status === 403],
      ['rule', { rule: 'ml-train' }, (_i, r) => r.ruleId === 'ml-train'],
      ['from/to', { from: T0 + 100 * MINUTE, to: T0 + 250 * MINUTE }, (i) => i >= 100 && i < 250],
      [
        'everything at once',
        { namespace: 'ml', decision: 'allow', permission: 'aiplatform.endpoints.*', from: T0, to: T0 + 2000 * MINUTE },
        (i, r) => r.namespace === 'ml' && r.decision === 'allow' && r.operation === 'endpoints.predict' && i < 2000,
      ],
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
      const row = rows.find(
        (r) =>
          r.principal === 'system:serviceaccount:ml:trainer' && r.permission === 'aiplatform.endpoints.predict' && r.decision === 'allow',
      );
      expect(row?.count).toBe(
        expected(
          (i, r) =>
            i < 600 &&
            r.principal === 'system:serviceaccount:ml:trainer' &&
            r.permission === 'aiplatform.endpoints.predict' &&
            r.decision === 'allow',
        ),
      );
    });

    it(
      'shows one record per request: the final entry replaces the decision entry, an orphaned decision stays visible as ' + 'incomplete',
      async () => {
        await store.append([{ phase: 'decision', record: record(0, { requestId: 'strict-1', status: 0, decision: 'allow' }) }]);
        await store.append([{ phase: 'decision', record: record(0, { requestId: 'strict-2', status: 0, decision: 'allow' }) }]);
        await store.append([{ phase: 'final', record: record(0, { requestId: 'strict-1', status: 200, decision: 'allow' }) }]);
        const one = (await all(store, {}, 1000)).records.filter((r) => r.requestId.startsWith('strict-'));
        expect(one.map((r) => [r.requestId, r.complete, r.status]).sort()).toEqual([
          ['strict-1', true, 200],
          ['strict-2', false, 0],
        ]);
      },
    );

    it('answers a filtered query from a final-only index and the open list, not by scanning entries', async () => {
      const where = whereClause({ principal: 'system:serviceaccount:ml:trainer' }, () => `'system:serviceaccount:ml:trainer'`);
      const sql = `${recordsSql('audit_entries', 'e.id, e.phase, e.record', where)} ORDER BY 1 DESC LIMIT 10`;
      await backend.expectIndexedPlan(sql);
    });

    it('answers summaries from the hourly rollup exactly as from the entries: any range, in-flight requests included', async () => {
      // In flight: 'strict-2' (the test before) is a decision entry without its final entry, counted from the open list.
      await expectSummariesFromEntries(store, backend, rollupQueries(T0));
      const rollupRows = await backend.rows('SELECT COUNT(*) AS n, SUM(requests) AS requests FROM audit_entries_hourly');
      // The rollup holds every final entry, in fewer rows than entries.
      const finals = await backend.rows(`SELECT COUNT(*) AS n FROM audit_entries WHERE phase = 'final'`);
      expect(Number(rollupRows[0]?.requests)).toBe(Number(finals[0]?.n));
      expect(Number(rollupRows[0]?.n)).toBeLessThan(Number(finals[0]?.n));
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
      expect(await store.verify()).toMatchObject({
        ok: false,
        broken: { writer: 'replica-a', seq: 501, problem: expect.stringContaining('column decision') as unknown },
      });
      // …or in the stored record as well: the hash no longer matches.
      await backend.exec(
        `UPDATE audit_entries SET record = replace(record, '"decision":"deny"', '"decision":"allow"') WHERE writer = ` +
          `'replica-a' AND seq = 501`,
      );
      expect(await store.verify()).toMatchObject({
        ok: false,
        broken: { seq: 501, problem: expect.stringContaining('hash does not match') as unknown },
      });
    });

    it('finds a deleted row as a gap in the chain', async () => {
      await backend.exec(
        `UPDATE audit_entries SET decision = 'deny', record = replace(record, '"decision":"allow"', '"decision":"deny"') ` +
          `WHERE writer = 'replica-a' AND seq = 501`,
      );
      expect((await store.verify()).ok).toBe(true);
      await backend.exec(`DELETE FROM audit_entries WHERE writer = 'replica-a' AND seq = 1000`);
      expect(await store.verify()).toMatchObject({
        ok: false,
        broken: { seq: 1001, problem: expect.stringContaining('sequence gap') as unknown },
      });
    });

    it('retention deletes the oldest entries in batches, and the remaining chain still verifies', async () => {
      await backend.exec(`UPDATE audit_entries SET written_ms = 0 WHERE seq <= 10`);
      // written_ms is hashed: rows whose time was rewritten are exactly the ones retention removes here.
      const deleted = await store.deleteOlderThan(1, 4);
      expect(deleted).toBe(11);
      const result = await store.verify();
      expect(result.broken?.problem ?? '').toContain('sequence gap'); // the row deleted in the previous test
      // Retention's deletes leave the rollup equal to the entries that remain.
      await expectSummariesFromEntries(store, backend, rollupQueries(T0));
    });
    it('sums requests and tokens grouped by namespace and model (usage summary), over a range, biggest first', async () => {
      const U0 = T0 + 100_000 * MINUTE;
      const usage = (i: number, namespace: string, model: string, total: number, extra: Partial<AuditRecord> = {}) =>
        record(i, {
          requestId: `usage-${i}`,
          time: new Date(U0 + i * 1000).toISOString(),
          namespace,
          principal: `system:serviceaccount:${namespace}:bot`,
          model,
          tokens: { prompt: total - 10, candidates: 10, total },
          usageReported: true,
          ...extra,
        });
      await store.append([
        { phase: 'final', record: usage(1, 'ml', 'google/gemini-2.5-flash', 100) },
        { phase: 'final', record: usage(2, 'ml', 'google/gemini-2.5-flash', 50) },
        { phase: 'final', record: usage(3, 'ml', 'google/gemini-2.5-pro', 1000, { tokens: { prompt: 900, thoughts: 90, total: 1000 } }) },
        { phase: 'final', record: usage(4, 'web', 'google/gemini-2.5-flash', 30) },
        // A call whose response reported no usage: counted as a request, adds no tokens.
        { phase: 'final', record: usage(5, 'web', 'google/gemini-2.5-flash', 0, { tokens: undefined, usageReported: false }) },
      ]);
      const range = { from: U0, to: U0 + MINUTE };
      expect(await store.usageSummary(range, ['namespace', 'model'])).toEqual([
        {
          namespace: 'ml',
          model: 'google/gemini-2.5-pro',
          requests: 1,
          promptTokens: 900,
          candidatesTokens: 0,
          thoughtsTokens: 90,
          cachedTokens: 0,
          toolTokens: 0,
          totalTokens: 1000,
        },
        {
          namespace: 'ml',
          model: 'google/gemini-2.5-flash',
          requests: 2,
          promptTokens: 130,
          candidatesTokens: 20,
          thoughtsTokens: 0,
          cachedTokens: 0,
          toolTokens: 0,
          totalTokens: 150,
        },
        {
          namespace: 'web',
          model: 'google/gemini-2.5-flash',
          requests: 2,
          promptTokens: 20,
          candidatesTokens: 10,
          thoughtsTokens: 0,
          cachedTokens: 0,
          toolTokens: 0,
          totalTokens: 30,
        },
      ]);
      expect((await store.usageSummary({ ...range, namespace: 'ml' }, ['model'])).map((r) => [r.model, r.totalTokens])).toEqual([
        ['google/gemini-2.5-pro', 1000],
        ['google/gemini-2.5-flash', 150],
      ]);
      expect((await store.usageSummary(range, ['principal'])).map((r) => [r.principal, r.requests, r.totalTokens])).toEqual([
        ['system:serviceaccount:ml:bot', 3, 1150],
        ['system:serviceaccount:web:bot', 2, 30],
      ]);
    });
  });

  /** The first schema's full indexes (every entry, both phases; no open list), recreated to test the upgrade from it. */
  const LEGACY_INDEXES = [
    'CREATE INDEX audit_entries_time ON audit_entries (time_ms)',
    'CREATE INDEX audit_entries_principal ON audit_entries (principal, time_ms)',
    'CREATE INDEX audit_entries_namespace ON audit_entries (namespace, time_ms)',
    'CREATE INDEX audit_entries_permission ON audit_entries (permission, time_ms)',
    'CREATE INDEX audit_entries_resource ON audit_entries (resource, time_ms)',
    'CREATE INDEX audit_entries_rule ON audit_entries (rule_id, time_ms)',
    'CREATE INDEX audit_entries_request ON audit_entries (request_id, phase)',
  ];
  const NEW_INDEXES = ['f_summary', 'f_principal', 'f_namespace', 'f_permission', 'f_resource', 'f_rule'];

  describe(`audit store conformance: ${name}: open decisions, schema upgrade`, () => {
    let backend: ConformanceBackend;
    const stores: AuditStore[] = [];
    const open = async () => {
      const store = await backend.open();
      stores.push(store);
      return store;
    };
    const decision = (id: string) => ({ phase: 'decision' as const, record: record(2, { requestId: id, status: 0, decision: 'allow' }) });
    const final = (id: string) => ({ phase: 'final' as const, record: record(2, { requestId: id, status: 200, decision: 'allow' }) });
    const listed = async (prefix: string) =>
      (await backend.rows(`SELECT request_id FROM audit_entries_open WHERE request_id LIKE '${prefix}%' ORDER BY request_id`)).map(
        (r) => r.request_id,
      );
    const shown = async (store: AuditStore, prefix: string) =>
      (await store.query({}, 100)).records
        .filter((r) => r.requestId.startsWith(prefix))
        .map((r) => [r.requestId, r.complete])
        .sort();

    /** replica-a and replica-b, and a fake clock (Date only) from `base`, ten minutes ago: for tests that write at chosen times. */
    const twoWritersOnAFakeClock = async () => {
      const a = await open();
      const b = await backend.open('replica-b');
      stores.push(b);
      vi.useFakeTimers({ toFake: ['Date'] });
      return { a, b, base: Date.now() - 10 * MINUTE };
    };

    // A store of its own per test: each checks the whole chain.
    beforeEach(() => {
      backend = makeBackend();
    });
    afterEach(async () => {
      vi.useRealTimers();
      for (const store of stores.splice(0)) await store.close();
      await backend.cleanup();
    });

    it('lists a decision entry as open until its final entry is written, and verify checks the list against the chain', async () => {
      const store = await open();
      // Written three minutes ago, so verify treats them as settled.
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() - 3 * MINUTE);
      await store.append([decision('open-a'), decision('open-b')]);
      expect(await listed('open-')).toEqual(['open-a', 'open-b']);
      await store.append([final('open-a')]);
      vi.useRealTimers();
      expect(await listed('open-')).toEqual(['open-b']);
      expect(await shown(store, 'open-')).toEqual([
        ['open-a', true],
        ['open-b', false],
      ]);
      expect(await store.verify()).toMatchObject({ ok: true, entries: 3 });

      // Removed from the list, open-b would vanish from queries: verify names it.
      await backend.exec(`DELETE FROM audit_entries_open WHERE request_id = 'open-b'`);
      expect(await shown(store, 'open-')).toEqual([['open-a', true]]);
      expect(await store.verify()).toMatchObject({
        ok: false,
        broken: { seq: 2, problem: expect.stringContaining('missing from the open list') as unknown },
      });
      // Listing open-a again would show it twice.
      await backend.exec(
        `INSERT INTO audit_entries_open (request_id, id) SELECT request_id, id FROM audit_entries WHERE phase = 'decision'`,
      );
      expect(await store.verify()).toMatchObject({
        ok: false,
        broken: { seq: 1, problem: expect.stringContaining('still on the open list') as unknown },
      });
      await backend.exec(`DELETE FROM audit_entries_open WHERE request_id = 'open-a'`);
      expect(await store.verify()).toMatchObject({ ok: true });

      // Retention that removes an open decision entry takes it off the list too (seq 1, open-a's decision entry, goes first).
      await backend.exec(`UPDATE audit_entries SET written_ms = 0 WHERE seq <= 2`);
      expect(await store.deleteOlderThan(1, 10)).toBe(2);
      expect(await listed('open-')).toEqual([]);
      expect(await store.verify()).toMatchObject({ ok: true, entries: 1 });
    });

    it('adds the usage columns to a store written before them: old entries still verify, new ones are summed', async () => {
      let store = await open();
      await store.append([final('old-1'), final('old-2')]);
      await store.close();
      stores.length = 0;
      // That store had no rollup either (it sums the usage columns).
      await dropRollup(backend, store.kind);
      for (const column of [
        'model',
        'prompt_tokens',
        'candidates_tokens',
        'thoughts_tokens',
        'cached_tokens',
        'tool_tokens',
        'total_tokens',
      ]) {
        await backend.exec(`ALTER TABLE audit_entries DROP COLUMN ${column}`);
      }
      store = await open();
      await store.append([
        {
          phase: 'final',
          record: record(2, {
            requestId: 'new-1',
            status: 200,
            decision: 'allow',
            model: 'google/gemini-2.5-flash',
            tokens: { prompt: 3, total: 7 },
          }),
        },
      ]);
      expect(await store.verify()).toMatchObject({ ok: true, entries: 3 });
      const rows = await store.usageSummary({}, ['model']);
      expect(rows.find((r) => r.model === 'google/gemini-2.5-flash')).toMatchObject({ requests: 1, promptTokens: 3, totalTokens: 7 });
      expect(rows.find((r) => r.model === null)).toMatchObject({ requests: 2, totalTokens: 0 });
      // The usage columns are checked against the hashed record like the others.
      await backend.exec(`UPDATE audit_entries SET total_tokens = 1 WHERE request_id = 'new-1'`);
      expect(await store.verify()).toMatchObject({
        ok: false,
        broken: { problem: expect.stringContaining('column total_tokens') as unknown },
      });
    });

    it('fills the hourly rollup when it upgrades a store written before it, and keeps it up to date from then on', async () => {
      let store = await open();
      await store.append(Array.from({ length: 300 }, (_, i) => ({ phase: 'final' as const, record: record(i) })));
      await store.append([decision('roll-1'), decision('roll-2')]);
      await dropRollup(backend, store.kind);
      // A reader that meets a store without the rollup (the CLI does not migrate) counts the entries.
      await expectSummariesFromEntries(store, backend, rollupQueries(T0));
      await store.close();
      stores.length = 0;
      store = await open();
      await expectSummariesFromEntries(store, backend, rollupQueries(T0));
      await store.append([final('roll-1'), { phase: 'final', record: record(301) }]);
      await expectSummariesFromEntries(store, backend, rollupQueries(T0));
      expect(await store.verify()).toMatchObject({ ok: true });
      // Opening again does not count the entries twice.
      await store.close();
      stores.length = 0;
      store = await open();
      await expectSummariesFromEntries(store, backend, rollupQueries(T0));
    });

    it("verifies a written-time range: each writer's entries written in it, and an edit inside it", async () => {
      const { a, b, base } = await twoWritersOnAFakeClock();
      for (let m = 0; m < 4; m++) {
        vi.setSystemTime(base + m * MINUTE);
        await a.append(Array.from({ length: 3 }, (_, k) => final(`r-a-${m}-${k}`)));
        await b.append(Array.from({ length: 2 }, (_, k) => final(`r-b-${m}-${k}`)));
      }
      vi.useRealTimers();
      expect(await a.verify({ from: base + MINUTE, to: base + 3 * MINUTE })).toMatchObject({ ok: true, writers: 2, entries: 10 });
      expect(await a.verify({ from: base + MINUTE })).toMatchObject({ ok: true, writers: 2, entries: 15 });
      expect(await a.verify({ to: base + MINUTE })).toMatchObject({ ok: true, writers: 2, entries: 5 });
      expect(await a.verify({ from: base + 9 * MINUTE })).toMatchObject({ ok: true, writers: 0, entries: 0 });
      await backend.exec(`UPDATE audit_entries SET record = replace(record, '"r-b-2-1"', '"r-b-2-9"') WHERE request_id = 'r-b-2-1'`);
      expect(await a.verify({ from: base + MINUTE, to: base + 3 * MINUTE })).toMatchObject({
        ok: false,
        broken: { writer: 'replica-b', seq: 6, problem: expect.stringContaining('hash does not match') as unknown },
      });
      // Outside the range the edit is not looked at.
      expect(await a.verify({ from: base + 3 * MINUTE })).toMatchObject({ ok: true, entries: 5 });
    });

    it("verifies a range through an entry whose write time is outside it (its writer's clock set back), and finds it removed", async () => {
      const a = await open();
      vi.useFakeTimers({ toFake: ['Date'] });
      const base = Date.now() - 10 * MINUTE;
      vi.setSystemTime(base + MINUTE);
      await a.append([final('before-step-1'), final('before-step-2')]);
      // The clock steps back past the start of the range for one write, then on again.
      vi.setSystemTime(base + MINUTE - 5_000);
      await a.append([final('stepped-back')]);
      vi.setSystemTime(base + MINUTE + 1_000);
      await a.append([final('after-step-1'), final('after-step-2')]);
      vi.useRealTimers();
      // The stretch of the range is seq 1-5; seq 3, written before the range, is a link of it and is checked too.
      expect(await a.verify({ from: base + MINUTE, to: base + 2 * MINUTE })).toMatchObject({ ok: true, writers: 1, entries: 5 });
      // A range that ends at the step holds seq 3 alone (the others were written at or after its end).
      expect(await a.verify({ to: base + MINUTE })).toMatchObject({ ok: true, writers: 1, entries: 1 });
      await backend.exec(`DELETE FROM audit_entries WHERE request_id = 'stepped-back'`);
      expect(await a.verify({ from: base + MINUTE, to: base + 2 * MINUTE })).toMatchObject({
        ok: false,
        broken: { seq: 4, problem: expect.stringContaining('sequence gap') as unknown },
      });
    });

    it("retention deletes each writer's oldest run only: an entry stamped before the cutoff among younger ones stays", async () => {
      const { a, b, base } = await twoWritersOnAFakeClock();
      const at = async (store: AuditStore, ms: number, ...ids: string[]) => {
        vi.setSystemTime(ms);
        await store.append(ids.map((id) => final(id)));
      };
      await at(a, base, 'a-old-1', 'a-old-2');
      await at(b, base, 'b-old-1');
      await at(a, base + 5 * MINUTE, 'a-young-1');
      // replica-a's clock is set back past the cutoff for one write.
      await at(a, base + 1_000, 'a-stepped-back');
      await at(a, base + 5 * MINUTE + 1_000, 'a-young-2');
      await at(b, base + 5 * MINUTE, 'b-young-1');
      vi.useRealTimers();
      const cutoff = base + 2 * MINUTE;
      // Batches of one statement per entry: the runs are followed across statements.
      expect(await a.deleteOlderThan(cutoff, 1)).toBe(3);
      const left = await backend.rows(`SELECT writer, seq, request_id FROM audit_entries ORDER BY writer, seq`);
      expect(left.map((r) => [r.writer, Number(r.seq), r.request_id])).toEqual([
        ['replica-a', 3, 'a-young-1'],
        ['replica-a', 4, 'a-stepped-back'],
        ['replica-a', 5, 'a-young-2'],
        ['replica-b', 2, 'b-young-1'],
      ]);
      expect(await a.verify()).toMatchObject({ ok: true, writers: 2, entries: 4 });
      expect(await a.deleteOlderThan(cutoff, 100)).toBe(0);
      // Once the entries before it expire, it goes with them.
      expect(await a.deleteOlderThan(base + 5 * MINUTE + 500, 100)).toBe(3);
      expect(await a.verify()).toMatchObject({ ok: true, writers: 1, entries: 1 });
    });

    it('verifies a time range and the whole store past one page (5,000 entries): each entry once, across pages and writers', async () => {
      const { a, b, base } = await twoWritersOnAFakeClock();
      const batch = (prefix: string, n: number) => Array.from({ length: n }, (_, k) => final(`${prefix}-${k}`));
      vi.setSystemTime(base);
      await a.append(batch('before', 4));
      vi.setSystemTime(base + MINUTE);
      for (let k = 0; k < 11; k++) await a.append(batch(`a-${k}`, 500));
      await b.append(batch('b', 7));
      vi.setSystemTime(base + 2 * MINUTE);
      await a.append(batch('after', 3));
      vi.useRealTimers();
      expect(await a.verify({ from: base + MINUTE, to: base + 2 * MINUTE })).toMatchObject({ ok: true, writers: 2, entries: 5507 });
      expect(await a.verify({ from: base })).toMatchObject({ ok: true, writers: 2, entries: 5514 });
      expect(await a.verify()).toMatchObject({ ok: true, writers: 2, entries: 5514 });
      // An edit on the second page of the range (replica-a's seq 4 + 5,200) is found there.
      await backend.exec(`UPDATE audit_entries SET record = replace(record, '"a-10-199"', '"a-10-198"') WHERE request_id = 'a-10-199'`);
      expect(await a.verify({ from: base + MINUTE, to: base + 2 * MINUTE })).toMatchObject({
        ok: false,
        broken: { writer: 'replica-a', seq: 5204, problem: expect.stringContaining('hash does not match') as unknown },
      });
      expect(await a.verify()).toMatchObject({ ok: false, broken: { writer: 'replica-a', seq: 5204 } });
    });

    it('upgrades a store of the previous indexes (f_time, written) to the summary and chain indexes', async () => {
      let store = await open();
      await store.append([final('prev-1')]);
      await store.close();
      stores.length = 0;
      await backend.exec('DROP INDEX audit_entries_f_summary');
      await backend.exec('DROP INDEX audit_entries_written_chain');
      await backend.exec(`CREATE INDEX audit_entries_f_time ON audit_entries (time_ms) WHERE phase = 'final'`);
      await backend.exec('CREATE INDEX audit_entries_written ON audit_entries (written_ms)');
      store = await open();
      const suffixes = (await backend.indexNames()).map((n) => /_(f_[a-z]+|written_chain|written)$/.exec(n)?.[1] ?? n);
      expect(suffixes.sort()).toEqual([...NEW_INDEXES, 'written_chain'].sort());
      expect(await store.verify()).toMatchObject({ ok: true, entries: 1 });
    });

    it('upgrades a store of the first schema: open decisions found, full indexes replaced by final-only ones, nothing lost', async () => {
      let store = await open();
      await store.append([decision('up-1'), decision('up-2')]);
      await store.append([final('up-1'), final('up-3')]);
      await store.close();
      stores.length = 0;
      // Back to the first schema: no open list, full indexes.
      for (const index of NEW_INDEXES) await backend.exec(`DROP INDEX audit_entries_${index}`);
      await backend.exec('DROP TABLE audit_entries_open');
      for (const statement of LEGACY_INDEXES) await backend.exec(statement);

      store = await open();
      expect(await listed('up-')).toEqual(['up-2']);
      const indexes = await backend.indexNames();
      const suffixes = indexes.map((n) => /_(f_[a-z]+|written_chain)$/.exec(n)?.[1] ?? n);
      expect(suffixes.sort()).toEqual([...NEW_INDEXES, 'written_chain'].sort());
      expect(await shown(store, 'up-')).toEqual([
        ['up-1', true],
        ['up-2', false],
        ['up-3', true],
      ]);
      expect(await store.verify()).toMatchObject({ ok: true, entries: 4 });
      // And opening again changes nothing.
      await store.close();
      stores.length = 0;
      store = await open();
      expect(await listed('up-')).toEqual(['up-2']);
    });
  });
}
