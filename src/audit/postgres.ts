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
  addedColumnStatements,
  toUsageSummaryRow,
  usageSummarySql,
  INSERT_COLUMNS,
  closesDecision,
  decodeCursor,
  encodeCursor,
  insertValues,
  legacyMarkerIndex,
  legacyMigrationStatements,
  openTable,
  parseRecord,
  pruneOpenStatement,
  queryConditions,
  recordsSql,
  rowToEntry,
  schemaStatements,
  verifyPaged,
  type AuditQuery,
  type AuditStore,
  type RecordPage,
  type StoreHooks,
  type SummaryRow,
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
            const { rows } = await client.query<{ legacy: boolean }>('SELECT to_regclass($1) IS NOT NULL AS legacy', [
              legacyMarkerIndex(table),
            ]);
            for (const statement of schemaStatements(table, 'postgres')) await client.query(statement);
            const existing = await client.query<{ column_name: string }>(
              'SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema()',
              [table],
            );
            for (const statement of addedColumnStatements(table, 'postgres', new Set(existing.rows.map((r) => r.column_name))))
              await client.query(statement);
            if (rows[0]?.legacy === true) for (const statement of legacyMigrationStatements(table)) await client.query(statement);
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
      const sql =
        `WITH ins AS (INSERT INTO ${table} (${INSERT_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')} RETURNING id, phase, request_id), ` +
        `opened AS (INSERT INTO ${openTable(table)} (request_id, id) SELECT request_id, id FROM ins WHERE phase = 'decision')` +
        (closing.length === 0
          ? ' '
          : `, closed AS (DELETE FROM ${openTable(table)} WHERE request_id = ANY($${params.push(closing)}::text[])) `) +
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

  const conditions = (query: AuditQuery, before?: number) => queryConditions(query, before, (n) => `$${n}`);

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

  return {
    kind: 'postgres',
    append: (entries) => committer.submit(entries),
    async query(query, limit, cursor): Promise<RecordPage> {
      const { where, params, param } = conditions(query, cursor === undefined ? undefined : decodeCursor(cursor));
      const sql = `${recordsSql(table, 'e.id, e.phase, e.record', where)} ORDER BY 1 DESC LIMIT ${param(limit + 1)}`;
      const { rows } = await run<{ id: string; phase: 'decision' | 'final'; record: string }>(sql, params);
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        records: page.map((r) => parseRecord(r.record, r.phase)),
        nextCursor: rows.length > limit && last !== undefined ? encodeCursor(Number(last.id)) : undefined,
      };
    },
    async summary(query): Promise<SummaryRow[]> {
      const { where, params } = conditions(query);
      const { rows } = await run<{ principal: string | null; permission: string | null; decision: string; count: string }>(
        `SELECT principal, permission, decision, COUNT(*) AS count FROM (${recordsSql(table, 'e.principal, e.permission, e.decision', where)}) r GROUP BY principal, permission, decision ORDER BY count DESC, principal, permission, decision`,
        params,
      );
      return rows.map((r) => ({ principal: r.principal, permission: r.permission, decision: r.decision, count: Number(r.count) }));
    },
    async usageSummary(query, groupBy) {
      const { where, params } = conditions(query);
      const { rows } = await run<Record<string, unknown>>(usageSummarySql(table, groupBy, where), params);
      return rows.map((r) => toUsageSummaryRow(r, groupBy));
    },
    verify(range = {}) {
      return verifyPaged(
        async (after, limit, { from, to }) => {
          const conditions: string[] = [];
          const params: unknown[] = [];
          if (after !== undefined) {
            const w = `$${params.push(after.writer)}`;
            conditions.push(`(writer COLLATE "C" > ${w} OR (writer = ${w} AND seq > $${params.push(after.seq)}))`);
          }
          if (from !== undefined) conditions.push(`written_ms >= $${params.push(from)}`);
          if (to !== undefined) conditions.push(`written_ms < $${params.push(to)}`);
          const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
          const { rows } = await run<Record<string, unknown>>(
            `SELECT * FROM ${table} ${where} ORDER BY writer COLLATE "C", seq LIMIT $${params.push(limit)}`,
            params,
          );
          return rows.map(rowToEntry);
        },
        range,
        async () => (await run<{ id: string }>(`SELECT id FROM ${openTable(table)}`, [])).rows.map((r) => Number(r.id)),
      );
    },
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
