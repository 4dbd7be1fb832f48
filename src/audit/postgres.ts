/**
 * The shared audit store: PostgreSQL (Cloud SQL in production) through `pg`.
 * Every replica writes its own hash chain into one table; one multi-row
 * INSERT per group commit. With `pipelineDepth` > 1 group commits are
 * pipelined: while one batch's commit is in flight, the next batch is
 * inserted on another connection in a transaction of its own, whose COMMIT
 * is sent only once the batch before it has committed (and which is rolled
 * back if that one failed), so the chain is committed in order.
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
  deleteOldestRuns,
  deleteThroughSql,
  retentionReads,
  rollupTableName,
  storeReads,
  type AuditStore,
  type ChainedEntry,
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
  /** How long records no request waits on may wait for company in a transaction (GroupCommitOptions.delayMs; default 0). */
  readonly commitDelayMs?: number;
  /** Group-commit batches in flight at once (default {@link DEFAULT_PIPELINE_DEPTH}; never more than `maxConnections`). */
  readonly pipelineDepth?: number | undefined;
  /** Called with errors that belong to no caller (idle connection lost, schema setup at start). */
  readonly onError?: (error: unknown) => void;
  /** Create the table and indexes (default true). The CLI reads with what exists: an auditor's role may be read-only. */
  readonly migrate?: boolean;
}

/** While unhealthy, how often a trivial query checks whether the server is back (readiness must recover without traffic). */
const PROBE_INTERVAL_MS = 2000;

/**
 * One batch in flight unless configured: with the server on the proxy's core (the benchmark), a second batch in flight
 * cost about a tenth more proxy CPU per request (BEGIN and COMMIT of their own, more and smaller batches) and did not
 * raise throughput; it is for a server whose commit wait is the network and its disk, not CPU.
 */
export const DEFAULT_PIPELINE_DEPTH = 1;

/**
 * Batches of up to this many entries use a prepared statement (one per size and per shape, with or without closed
 * decisions): at most twice this many per connection, each parsed on first use. Larger batches, rarer and where the
 * parse is a small share of the work, are sent as text.
 */
const PREPARED_BATCH_SIZES = 32;

/** A statement without the pool's 10 s read timeout (pg reads `query_timeout` from the query config; its types omit it). */
function longQuery(text: string): pg.QueryConfig {
  const config: pg.QueryConfig & { query_timeout: number } = { text, query_timeout: 3_600_000 };
  return config;
}

/** Any fixed 64-bit key: serializes schema setup between replicas starting at once. */
const MIGRATION_LOCK = 0x6b7670_61756474;

const ignoreLostConnection = (): void => undefined;

/** A batch rolled back because the batch before it, whose chain it continues, failed (its `cause`). */
export class ChainPredecessorFailed extends Error {
  constructor(cause: unknown) {
    super('audit batch not committed: the batch before it (whose hash chain it continues) failed', { cause });
    this.name = 'ChainPredecessorFailed';
  }
}

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
  const run = async <R extends pg.QueryResultRow>(sql: string, params: unknown[], name?: string): Promise<pg.QueryResult<R>> => {
    await ensureSchema();
    return name === undefined ? pool.query<R>(sql, params) : pool.query<R>({ name, text: sql, values: params });
  };

  /**
   * One multi-row INSERT for the batch, with the open-list changes it implies, as one statement. Its text depends only
   * on the number of entries and on whether any closes a decision: up to {@link PREPARED_BATCH_SIZES} entries it is a
   * named statement, parsed and planned once per connection instead of once per batch (the server's CPU, which under
   * load is what a small batch waits for).
   */
  const batchStatement = (entries: readonly ChainedEntry[]): { sql: string; params: unknown[]; name: string | undefined } => {
    const params: unknown[] = [];
    const tuples = entries.map((entry) => {
      const values = insertValues(entry);
      const placeholders = values.map((value) => `$${params.push(value)}`);
      return `(${placeholders.join(', ')})`;
    });
    // A decision and its own final entry are never in one batch, nor in two batches in flight together (the final is
    // written after the response, the decision committed before forwarding), so the DELETE not seeing an INSERT of
    // this statement or of an uncommitted batch is harmless.
    const closing = entries.filter(closesDecision).map((entry) => entry.columns.request_id);
    const open = openDecisionsTableName(table);
    const sql =
      `WITH ins AS (INSERT INTO ${table} (${INSERT_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')} RETURNING id, phase, request_id), ` +
      `opened AS (INSERT INTO ${open} (request_id, id) SELECT request_id, id FROM ins WHERE phase = 'decision')` +
      (closing.length === 0 ? ' ' : `, closed AS (DELETE FROM ${open} WHERE request_id = ANY($${params.push(closing)}::text[])) `) +
      'SELECT count(*) FROM ins';
    const name =
      entries.length <= PREPARED_BATCH_SIZES ? `kvp_audit_batch_${entries.length}_${closing.length === 0 ? 'o' : 'c'}` : undefined;
    return { sql, params, name };
  };

  /**
   * The newest batch's INSERT (settled or not). Batches insert in chain order, so a writer's row ids follow its
   * chain (queries page newest first by id): a pipelined batch sends its INSERT only once the batch before it has
   * inserted, while that one's commit may still wait for the disk.
   */
  let lastInsert: Promise<unknown> = Promise.resolve();

  /**
   * A batch that continues the chain of one still in flight: inserted in a transaction of its own once that one has
   * inserted, committed only once it has committed, rolled back (and rejected) if it failed. Its insert (parse,
   * index updates, WAL records) overlaps the previous commit's wait for the WAL flush; commits stay in chain order,
   * so a failure never leaves a later batch committed after a hole.
   */
  const writeAfter = async (sql: string, params: unknown[], name: string | undefined, previous: Promise<void>): Promise<void> => {
    const insertedBefore = lastInsert;
    let inserted!: (ok: boolean) => void;
    const mine = new Promise<void>((resolve, reject) => {
      inserted = (ok) => (ok ? resolve() : reject(new Error('not inserted')));
    });
    // Handled here: with no batch after this one, nobody else awaits it.
    mine.catch(() => undefined);
    lastInsert = mine;
    let client: pg.PoolClient | undefined;
    try {
      await ensureSchema();
      client = await pool.connect();
      // The pool listens for errors only on idle clients. This one waits between its statements (for the batch before
      // it): a connection lost meanwhile would emit 'error' with no listener and end the process. Its next statement
      // fails instead, and says so.
      client.on('error', ignoreLostConnection);
      await client.query('BEGIN');
      const insertFailed = await insertedBefore.then(
        () => false,
        () => true,
      );
      // The batch before was not even inserted: this one's chain has nothing to continue; `previous` says why.
      if (!insertFailed) {
        await (name === undefined ? client.query(sql, params) : client.query({ name, text: sql, values: params }));
        inserted(true);
      }
      const failed = await previous.then(
        () => undefined,
        (error: unknown) => error ?? new Error('unknown failure'),
      );
      if (failed !== undefined) {
        await client.query('ROLLBACK');
        throw new ChainPredecessorFailed(failed);
      }
      if (insertFailed) throw new Error('the previous audit batch was not inserted, yet committed');
      await client.query('COMMIT');
    } catch (error) {
      inserted(false);
      client?.off('error', ignoreLostConnection);
      // Not given back to the pool: a connection that failed mid-transaction may hold it open (or be broken).
      client?.release(true);
      throw error;
    }
    client.off('error', ignoreLostConnection);
    client.release();
  };

  const committer = new GroupCommitter({
    writer: options.writer,
    maxBatch: options.maxBatch,
    delayMs: options.commitDelayMs ?? 0,
    maxInFlight: Math.min(options.pipelineDepth ?? DEFAULT_PIPELINE_DEPTH, options.maxConnections),
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
    write: async (entries, previous) => {
      const { sql, params, name } = batchStatement(entries);
      try {
        // Nothing in flight before it: one statement, which is its own transaction (one round trip).
        if (previous === undefined) {
          lastInsert = run(sql, params, name);
          await lastInsert;
        } else await writeAfter(sql, params, name, previous);
        healthy = true;
      } catch (error) {
        // The batch before failed, not this one: that failure already said whether the store is healthy.
        if (!(error instanceof ChainPredecessorFailed)) healthy = false;
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
    deleteOlderThan(beforeMs, batch) {
      return deleteOldestRuns(
        {
          ...retentionReads(dialect, table),
          // The entries and the open rows of the decision entries among them, in one statement (no open row is left pointing
          // at no entry).
          deleteThrough: async (writer, seq) =>
            Number(
              (
                await run<{ n: string }>(
                  `WITH gone AS (${deleteThroughSql(table, POSTGRES_SQL)} RETURNING id), ` +
                    `pruned AS (DELETE FROM ${openDecisionsTableName(table)} WHERE id IN (SELECT id FROM gone)) ` +
                    'SELECT count(*) AS n FROM gone',
                  [writer, seq],
                )
              ).rows[0]?.n ?? 0,
            ),
        },
        beforeMs,
        batch,
      );
    },
    healthy: () => healthy,
    async close() {
      clearInterval(probe);
      await committer.idle();
      await pool.end();
    },
  };
}
