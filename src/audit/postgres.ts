/**
 * The shared audit store: PostgreSQL (Cloud SQL in production) through `pg`.
 * Every replica writes its own hash chain into one table; one multi-row
 * INSERT per group commit (a single statement is its own transaction).
 *
 * In: the connection URL (or a file holding it, e.g. a mounted Secret), the
 * table name, the writer id. Out: an {@link AuditStore}. The schema (table
 * and indexes) is created on start under an advisory lock, so replicas
 * starting together do not race; when the server is unreachable at start the
 * store reports unhealthy and retries on the next write. Errors: a missing
 * URL file throws at open; database errors reject the call that met them.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import {
  GroupCommitter,
  INSERT_COLUMNS,
  POSTGRES_SQL,
  closesDecision,
  insertValues,
  legacyMarkerIndex,
  migrationPlan,
  openDecisionsTableName,
  pruneOpenStatement,
  rollupTableName,
  storeReads,
  type AuditStore,
  type Dialect,
  type StoreHooks,
} from './store.js';

export interface PostgresStoreOptions extends StoreHooks {
  readonly url?: string | undefined;
  readonly urlFile?: string | undefined;
  readonly table: string;
  readonly maxConnections: number;
  readonly writer: string;
  readonly maxBatch: number;
  /** Called with errors that belong to no caller (idle connection lost, schema setup at start). */
  readonly onError?: (error: unknown) => void;
  /** Create the table and indexes (default true). The CLI reads with what exists: an auditor's role may be read-only. */
  readonly migrate?: boolean;
}

/** While unhealthy, how often a trivial query checks whether the server is back (readiness must recover without traffic). */
const PROBE_INTERVAL_MS = 2000;

/** A statement without the pool's 10 s read timeout (pg reads `query_timeout` from the query config; its types omit it). */
function longQuery(text: string): pg.QueryConfig {
  const config: pg.QueryConfig & { query_timeout: number } = { text, query_timeout: 3_600_000 };
  return config;
}

/** Any fixed 64-bit key: serializes schema setup between replicas starting at once. */
const MIGRATION_LOCK = 0x6b7670_61756474;

export async function openPostgresStore(options: PostgresStoreOptions): Promise<AuditStore> {
  const url = options.url ?? (await readFile(options.urlFile as string, 'utf8')).trim();
  const table = options.table;
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections,
    connectionTimeoutMillis: 5000,
    query_timeout: 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'kube-vertex-proxy',
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', (error) => options.onError?.(error));

  let schemaReady: Promise<void> | undefined;
  let healthy = false;
  const ensureSchema = (): Promise<void> => {
    if (options.migrate === false) return Promise.resolve();
    schemaReady ??= (async () => {
      const client = await pool.connect();
      try {
        await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
        try {
          // One transaction (PostgreSQL DDL is transactional): a failed upgrade leaves the old schema whole.
          await client.query('BEGIN');
          try {
            const { rows } = await client.query<{ legacy: boolean; rollup: boolean }>(
              'SELECT to_regclass($1) IS NOT NULL AS legacy, to_regclass($2) IS NOT NULL AS rollup',
              [legacyMarkerIndex(table), rollupTableName(table)],
            );
            const existing = await client.query<{ column_name: string }>(
              'SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema()',
              [table],
            );
            const columns = new Set(existing.rows.map((r) => r.column_name));
            for (const statement of migrationPlan(table, POSTGRES_SQL, {
              legacy: rows[0]?.legacy === true,
              columns,
              rollup: rows[0]?.rollup === true,
            }))
              // An hour, not the pool's 10 s: filling the rollup of an existing store reads every entry once (minutes at tens
              // of millions; pg takes 0 as "the pool's").
              await client.query(longQuery(statement));
            await client.query('COMMIT');
          } catch (error) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw error;
          }
        } finally {
          await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
        }
      } finally {
        client.release();
      }
    })().catch((error: unknown) => {
      schemaReady = undefined;
      throw error;
    });
    return schemaReady;
  };
  const run = async <R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> => {
    await ensureSchema();
    return pool.query<R>(sql, params);
  };

  const committer = new GroupCommitter({
    writer: options.writer,
    maxBatch: options.maxBatch,
    loadHead: async () => {
      let rows: Array<{ seq: string; hash: string }>;
      try {
        ({ rows } = await run<{ seq: string; hash: string }>(`SELECT seq, hash FROM ${table} WHERE writer = $1 ORDER BY seq DESC LIMIT 1`, [
          options.writer,
        ]));
      } catch (error) {
        // After a failed batch the head is read again first: a server still down fails here, not in the write.
        healthy = false;
        throw error;
      }
      const row = rows[0];
      return row === undefined ? undefined : { seq: Number(row.seq), hash: row.hash };
    },
    write: async (entries) => {
      const params: unknown[] = [];
      const tuples = entries.map((entry) => {
        const values = insertValues(entry);
        const placeholders = values.map((value) => `$${params.push(value)}`);
        return `(${placeholders.join(', ')})`;
      });
      // One statement, so one transaction: the entries and the open-list changes they imply commit together.
      // A decision and its own final entry are never in one batch (the final is written after the response,
      // the decision before forwarding), so the DELETE not seeing this statement's INSERT is harmless.
      const closing = entries.filter(closesDecision).map((entry) => entry.columns.request_id);
      const open = openDecisionsTableName(table);
      const sql =
        `WITH ins AS (INSERT INTO ${table} (${INSERT_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')} RETURNING id, phase, request_id), ` +
        `opened AS (INSERT INTO ${open} (request_id, id) SELECT request_id, id FROM ins WHERE phase = 'decision')` +
        (closing.length === 0 ? ' ' : `, closed AS (DELETE FROM ${open} WHERE request_id = ANY($${params.push(closing)}::text[])) `) +
        'SELECT count(*) FROM ins';
      try {
        await run(sql, params);
        healthy = true;
      } catch (error) {
        healthy = false;
        throw error;
      }
    },
    onBatch: (size, seconds, ok) => options.onBatch?.('postgres', size, seconds, ok),
  });

  try {
    await ensureSchema();
    healthy = true;
  } catch (error) {
    options.onError?.(error);
  }
  // A pod taken out of its Service by /readyz gets no traffic to prove the store is back: probe instead.
  const probe = setInterval(() => {
    if (healthy) return;
    run('SELECT 1', []).then(
      () => {
        healthy = true;
      },
      () => undefined,
    );
  }, PROBE_INTERVAL_MS);
  probe.unref();

  const dialect: Dialect = { ...POSTGRES_SQL, all: async (sql, params) => (await run(sql, [...params])).rows };

  return {
    kind: 'postgres',
    append: (entries) => committer.submit(entries),
    ...storeReads(dialect, table),
    async deleteOlderThan(beforeMs, batch) {
      let total = 0;
      for (;;) {
        const result = await run(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE written_ms < $1 ORDER BY id LIMIT $2)`, [
          beforeMs,
          batch,
        ]);
        total += result.rowCount ?? 0;
        if ((result.rowCount ?? 0) > 0) await run(pruneOpenStatement(table), []);
        if ((result.rowCount ?? 0) < batch) return total;
      }
    },
    healthy: () => healthy,
    async close() {
      clearInterval(probe);
      await committer.idle();
      await pool.end();
    },
  };
}
