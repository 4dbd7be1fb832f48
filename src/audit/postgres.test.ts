import pg from 'pg';
import { afterAll, beforeAll, expect } from 'vitest';
import { describeAuditStoreConformance, type ConformanceBackend } from '../../test/helpers/audit-store-conformance.js';
import { startTestPostgres, type TestPostgres } from '../../test/helpers/postgres.js';
import { openPostgresStore } from './postgres.js';

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
    open: (writer = 'replica-a') => openPostgresStore({ url: url(), table, maxConnections: 4, writer, maxBatch: 500 }),
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
