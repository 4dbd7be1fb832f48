import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeAuditStoreConformance, record, type ConformanceBackend } from '../../test/helpers/audit-store-conformance.js';
import { until } from '../../test/helpers/poll.js';
import { startTestPostgres, type TestPostgres } from '../../test/helpers/postgres.js';
import { ChainPredecessorFailed, openPostgresStore } from './postgres.js';

let postgres: TestPostgres | undefined;
beforeAll(async () => {
  postgres = await startTestPostgres({ fsync: false });
});
afterAll(async () => {
  await postgres?.stop();
});

/** Each backend is a table of its own in the one server. */
function postgresBackend(): ConformanceBackend {
  const table = `audit_${Math.random().toString(36).slice(2, 10)}`;
  const url = () => (postgres as TestPostgres).url;
  const rows = async (sql: string) => {
    const client = new pg.Client({ connectionString: url() });
    await client.connect();
    try {
      return (await client.query(sql.replaceAll('audit_entries', table))).rows as Array<Record<string, unknown>>;
    } finally {
      await client.end();
    }
  };
  return {
    // Pipelined (not the default), so the whole suite runs through the pipelined path too.
    open: (writer = 'replica-a') => openPostgresStore({ url: url(), table, maxConnections: 4, writer, maxBatch: 500, pipelineDepth: 2 }),
    exec: async (sql) => {
      await rows(sql);
    },
    rows,
    indexNames: async () =>
      (
        await rows(
          `SELECT indexname AS name FROM pg_indexes WHERE tablename = 'audit_entries' AND indexname LIKE 'audit_entries_%' ` +
            `AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'`,
        )
      ).map((r) => String(r.name)),
    async expectIndexedPlan(sql) {
      await rows('ANALYZE audit_entries; ANALYZE audit_entries_open');
      const plan = (await rows(`EXPLAIN ${sql}`)).map((r) => String(r['QUERY PLAN'])).join('\n');
      // Final entries through the partial index; open decisions from the open list, each looked up by id.
      expect(plan).toMatch(/Index Scan on \S+_f_principal/);
      expect(plan).toContain('Index Cond: (id = o.id)');
      expect(plan).not.toMatch(/Seq Scan on audit_[a-z0-9]+ e/);
    },
    cleanup: () => Promise.resolve(),
  };
}

describeAuditStoreConformance('postgres', postgresBackend);

describe('PostgreSQL store: pipelined group commit', () => {
  const requestIds = async (table: string): Promise<string[]> => {
    const client = new pg.Client({ connectionString: (postgres as TestPostgres).url });
    await client.connect();
    try {
      return (await client.query<{ request_id: string }>(`SELECT request_id FROM ${table} ORDER BY writer, seq`)).rows.map(
        (r) => r.request_id,
      );
    } finally {
      await client.end();
    }
  };

  it('writes batches of every shape (prepared up to 32 entries, text beyond; with and without closed decisions), twice over', async () => {
    const table = `audit_${Math.random().toString(36).slice(2, 10)}`;
    // One connection: the second pass reuses the statements the first prepared on it.
    const store = await openPostgresStore({ url: (postgres as TestPostgres).url, table, maxConnections: 1, writer: 'w', maxBatch: 500 });
    try {
      let i = 0;
      const allowed = (pass: number, size: number, k: number) => {
        i += i % 5 === 4 ? 2 : 1; // record(i) denies every fifth: decisions here are allowed, so their finals close them
        return record(i, { requestId: `p${pass}-${size}-${k}` });
      };
      let written = 0;
      for (let pass = 0; pass < 2; pass++) {
        for (const size of [1, 2, 31, 32, 33, 40]) {
          const records = Array.from({ length: size }, (_, k) => allowed(pass, size, k));
          await store.append(records.map((r) => ({ phase: 'decision' as const, record: r })));
          await store.append(records.map((r) => ({ phase: 'final' as const, record: r })));
          written += 2 * size;
        }
      }
      expect(await store.verify()).toMatchObject({ ok: true, entries: written });
      const client = new pg.Client({ connectionString: (postgres as TestPostgres).url });
      await client.connect();
      try {
        // Every decision was closed by its final entry.
        expect((await client.query(`SELECT count(*)::int AS n FROM ${table}_open`)).rows).toEqual([{ n: 0 }]);
      } finally {
        await client.end();
      }
    } finally {
      await store.close();
    }
  });

  it('rolls back the batch in flight behind one the server refused, acknowledges neither, and continues the chain', async () => {
    const table = `audit_${Math.random().toString(36).slice(2, 10)}`;
    const store = await openPostgresStore({
      url: (postgres as TestPostgres).url,
      table,
      maxConnections: 4,
      writer: 'w',
      maxBatch: 500,
      pipelineDepth: 2,
    });
    try {
      await store.append([{ phase: 'final', record: record(0) }]);
      // PostgreSQL refuses a NUL in a text column: this batch fails in the server, after the next one has started.
      const refused = store.append([{ phase: 'final', record: record(1, { principal: 'bad\u0000principal' }) }]);
      await new Promise((resolve) => setImmediate(resolve));
      const behind = store.append([{ phase: 'final', record: record(2) }]);
      await expect(refused).rejects.toThrow(/0x00/);
      // Chained onto the refused batch, so never committed: it fails with that batch as its cause.
      await expect(behind).rejects.toBeInstanceOf(ChainPredecessorFailed);
      await expect(behind).rejects.toMatchObject({ cause: expect.objectContaining({ message: expect.stringMatching(/0x00/) }) as unknown });
      await store.append([{ phase: 'final', record: record(3) }]);
      expect(await requestIds(table)).toEqual(['req-0', 'req-3']);
      expect(await store.verify()).toMatchObject({ ok: true, entries: 2 });
    } finally {
      await store.close();
    }
  });

  it(
    'loses no acknowledged record when the server stops under a stream of appends, and the chain verifies after it is back',
    { timeout: 60_000 },
    async () => {
      const server = await startTestPostgres({ fsync: false });
      const table = 'audit_stopped';
      const store = await openPostgresStore({ url: server.url, table, maxConnections: 4, writer: 'w', maxBatch: 50, pipelineDepth: 2 });
      const acked: string[] = [];
      let failed = 0;
      let next = 0;
      const outstanding: Array<Promise<void>> = [];
      // Eight appends every millisecond, not waiting for them (requests keep arriving while commits are in flight):
      // the queue grows behind each commit, so batches start behind batches still committing.
      const producer = setInterval(() => {
        for (let k = 0; k < 8; k++) {
          const i = next++;
          outstanding.push(
            store.append([{ phase: 'final', record: record(i) }]).then(
              () => void acked.push(`req-${i}`),
              () => void (failed += 1),
            ),
          );
        }
      }, 1);
      try {
        await until(() => acked.length >= 2000, '2000 acknowledged appends');
        await server.pause();
        const ackedBeforeStart = acked.length;
        await until(() => failed > 0, 'an append refused while the server is down');
        await server.start();
        await until(() => acked.length >= ackedBeforeStart + 2000, '2000 more acknowledged appends after the restart', 30_000);
        clearInterval(producer);
        await Promise.all(outstanding);
        const client = new pg.Client({ connectionString: server.url });
        await client.connect();
        const stored = new Set(
          (await client.query<{ request_id: string }>(`SELECT request_id FROM ${table}`)).rows.map((r) => r.request_id),
        );
        await client.end();
        // No record acknowledged that is not committed.
        expect(acked.filter((id) => !stored.has(id))).toEqual([]);
        expect(await store.verify()).toMatchObject({ ok: true, writers: 1 });
      } finally {
        clearInterval(producer);
        await Promise.all(outstanding);
        await store.close();
        await server.stop();
      }
    },
  );
});
