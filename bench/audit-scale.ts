/**
 * Audit queries at scale: a store of many records (10 million in the full
 * run) spread over 30 days, written by three replicas, each entry
 * hash-chained exactly as the proxy chains it (`entryHash` of the product),
 * then the three reads an auditor runs, timed through the real store code
 * (`openSqliteStore`, `openPostgresStore`, as `kube-vertex-proxy audit …`
 * calls them):
 *
 * - `query`: every record of one busy principal over one day, paged as the
 *   CLI pages (1,000 a page);
 * - `summary`: counts by principal × permission × decision over a week;
 * - `verify`: the hash chains of one day (every entry's hash recomputed from
 *   its content, every link checked).
 *
 * The records: about 1,000 service accounts in 200 namespaces, their
 * activity Zipf-distributed (a few batch jobs make much of the traffic), each
 * using one to three operations, traffic following the working day
 * (weekends quieter), 1.5 % denied plus a few misconfigured accounts denied
 * most of the time; every record a `final` entry the size the store keeps
 * for a real request (trace ids, pod uid, tokens for generateContent).
 *
 * The store is built fast and once: rows bulk-inserted into the store's own
 * table without its secondary indexes and rollup (SQLite: one transaction,
 * journal in memory and sync off, multi-row INSERTs; PostgreSQL: one transaction that
 * truncated the table, so with `wal_level=minimal` nothing goes to the WAL,
 * one `COPY … FROM STDIN` of every row in text format), then the store's own migration
 * creates the indexes and fills the hourly rollup, so what is measured is
 * what a real store has after its upgrade. Both are cached outside the
 * clone, keyed by the schema's text, the record count and
 * {@link GENERATOR_VERSION}: SQLite under
 * `~/.cache/kube-vertex-proxy/audit-scale/`, PostgreSQL's cluster under
 * `/var/tmp/kube-vertex-proxy-audit-scale/` (the postgres user, which the
 * server runs as under root, cannot enter root's home). A PostgreSQL URL
 * given instead (`--postgres`) is built into every run.
 *
 * Run as its own process by the orchestrator (`bench/run.ts`); prints one
 * JSON line of {@link AuditScaleResult}s on stdout.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { openPostgresStore } from '../src/audit/postgres.js';
import type { AuditRecord } from '../src/audit/record.js';
import { openSqliteStore } from '../src/audit/sqlite.js';
import {
  GENESIS_HASH,
  INSERT_COLUMNS,
  SQLITE_SQL,
  entryHash,
  indexedColumns,
  insertValues,
  migrationPlan,
  openDecisionsTableName,
  rollupTableName,
  schemaStatements,
  type AuditStore,
} from '../src/audit/store.js';
import { findBinDir, startTestPostgres } from '../test/helpers/postgres.js';
import { copyTextRow } from './copy-text.js';

export interface AuditScaleResult {
  readonly store: 'sqlite' | 'postgres';
  /** Entries in the store. */
  readonly records: number;
  /** Why not measured (e.g. no PostgreSQL). */
  readonly unavailable?: string;
  /** Seconds spent building the store in this run (0: cached), and of that the rows' insert and the migration (indexes, rollup). */
  readonly generateSeconds?: number;
  readonly loadSeconds?: number;
  readonly migrateSeconds?: number;
  /** Build time of the cached store when it was built (so a cached run still says what it costs). */
  readonly builtSeconds?: number;
  /** Bytes on disk (SQLite file; PostgreSQL: the entries table with its indexes, the rollup and the open list). */
  readonly diskBytes?: number;
  /** Rows in the hourly rollup. */
  readonly rollupRows?: number;
  /** One principal's records over one day, all pages (median of three runs; the first run apart). */
  readonly queryMs?: number;
  readonly queryFirstMs?: number;
  readonly queryRecords?: number;
  /** Summary (principal × permission × decision) over seven days (median of three; the first apart). */
  readonly summaryMs?: number;
  readonly summaryFirstMs?: number;
  readonly summaryRecords?: number;
  /** Verify of one day's entries (one run). */
  readonly verifyMs?: number;
  readonly verifyEntries?: number;
  /** Process CPU time of the reads (SQLite: all of it; PostgreSQL: the client's, not the server's). */
  readonly queryCpuMs?: number;
  readonly summaryCpuMs?: number;
  readonly verifyCpuMs?: number;
  readonly verifyOk?: boolean;
}

/** Changes whenever the generated records change (a new cache entry). */
export const GENERATOR_VERSION = 3;

const HOUR = 3_600_000;
const DAY = 86_400_000;
const DAYS = 30;
const T0 = Date.parse('2026-01-05T00:00:00.000Z'); // a Monday
const WRITERS = ['replica-0', 'replica-1', 'replica-2'];

/** Operations with how often a principal picks each as one of its own, and what it names. */
const OPERATIONS = [
  ['publishers.generateContent', 'aiplatform.endpoints.predict', 'publishers/google/models/gemini-2.5-flash', 40],
  ['publishers.streamGenerateContent', 'aiplatform.endpoints.predict', 'publishers/google/models/gemini-2.5-pro', 25],
  ['endpoints.predict', 'aiplatform.endpoints.predict', 'endpoints/1234567890', 15],
  ['endpoints.rawPredict', 'aiplatform.endpoints.predict', 'endpoints/987', 5],
  ['publishers.countTokens', 'aiplatform.endpoints.predict', 'publishers/google/models/gemini-2.5-flash', 5],
  ['customJobs.get', 'aiplatform.customJobs.get', 'customJobs/42', 4],
  ['customJobs.create', 'aiplatform.customJobs.create', 'customJobs', 2],
  ['batchPredictionJobs.create', 'aiplatform.batchPredictionJobs.create', 'batchPredictionJobs', 2],
  ['models.list', 'aiplatform.models.list', 'models', 2],
] as const;

/** A small fast PRNG (splitmix32): the same store on every machine. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

interface Principal {
  readonly principal: string;
  readonly namespace: string;
  readonly sa: string;
  readonly ops: ReadonlyArray<(typeof OPERATIONS)[number]>;
  readonly denyRate: number;
  readonly podUid: string;
}

/** The population: service accounts per namespace, each with its operations and deny rate; sorted busiest first. */
function population(): { principals: Principal[]; cumulative: Float64Array } {
  const rnd = random(17);
  const principals: Principal[] = [];
  const opWeight = OPERATIONS.reduce((n, o) => n + o[3], 0);
  const pickOp = () => {
    let x = rnd() * opWeight;
    for (const o of OPERATIONS) if ((x -= o[3]) < 0) return o;
    return OPERATIONS[0];
  };
  for (let n = 0; n < 200; n++) {
    const namespace = `team-${n.toString().padStart(3, '0')}`;
    const accounts = 1 + Math.floor(rnd() * 9);
    for (let a = 0; a < accounts; a++) {
      const sa = ['inference', 'batch', 'notebook', 'eval', 'agent', 'etl', 'trainer', 'frontend', 'ci'][a] as string;
      const ops = Array.from(new Set(Array.from({ length: 1 + Math.floor(rnd() * 3) }, pickOp)));
      const misconfigured = rnd() < 0.03;
      const hex = (k: number) =>
        Math.floor(rnd() * 16 ** k)
          .toString(16)
          .padStart(k, '0');
      principals.push({
        principal: `system:serviceaccount:${namespace}:${sa}`,
        namespace,
        sa,
        ops,
        denyRate: misconfigured ? 0.6 : 0.015,
        podUid: `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`,
      });
    }
  }
  // Zipf (s = 1) activity over a shuffled order: rank 1 makes ~1/ln(n) of the traffic.
  for (let i = principals.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [principals[i], principals[j]] = [principals[j] as Principal, principals[i] as Principal];
  }
  const cumulative = new Float64Array(principals.length);
  let sum = 0;
  principals.forEach((_, r) => {
    sum += 1 / (r + 1);
    cumulative[r] = sum;
  });
  for (let r = 0; r < cumulative.length; r++) (cumulative as Float64Array)[r] = (cumulative[r] as number) / sum;
  return { principals, cumulative };
}

/** Records per hour: the working day (UTC) busier, weekends at 40 %; sums to `total`. */
function hourlyCounts(total: number): Uint32Array {
  const weights = Array.from({ length: DAYS * 24 }, (_, h) => {
    const hourOfDay = h % 24;
    const weekend = Math.floor(h / 24) % 7 >= 5;
    return (0.25 + Math.exp(-((hourOfDay - 14) ** 2) / 18)) * (weekend ? 0.4 : 1);
  });
  const sum = weights.reduce((a, b) => a + b, 0);
  const counts = new Uint32Array(weights.length);
  let assigned = 0;
  weights.forEach((w, h) => {
    counts[h] = Math.floor((w / sum) * total);
    assigned += counts[h];
  });
  for (let h = 0; assigned < total; h = (h + 1) % counts.length, assigned++) (counts as Uint32Array)[h] = (counts[h] as number) + 1;
  return counts;
}

function pick(cumulative: Float64Array, x: number): number {
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((cumulative[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The record of request `i` at `time`, by `p`; `rnd` draws everything else. */
function scaleRecord(i: number, time: number, p: Principal, rnd: () => number): AuditRecord {
  const [operation, permission, resource] = p.ops[Math.floor(rnd() * p.ops.length)] as (typeof OPERATIONS)[number];
  const deny = rnd() < p.denyRate;
  const generate = operation.startsWith('publishers.') && operation !== 'publishers.countTokens';
  const hex = (k: number) => {
    let out = '';
    while (out.length < k)
      out += Math.floor(rnd() * 2 ** 32)
        .toString(16)
        .padStart(8, '0');
    return out.slice(0, k);
  };
  const latency = 40 + Math.floor(rnd() * (operation.includes('stream') ? 9000 : 1500));
  const service = operation.startsWith('publishers.') ? 'PredictionService' : 'JobService';
  const prompt = Math.floor(rnd() * 6000);
  const candidates = Math.floor(rnd() * 1200);
  return {
    time: new Date(time).toISOString(),
    requestId: `${hex(8)}-${hex(4)}-4${hex(3)}-8${hex(3)}-${i.toString(16).padStart(12, '0')}`,
    direction: 'outbound',
    traceId: hex(32),
    spanId: hex(16),
    traceSampled: false,
    principal: p.principal,
    issuer: 'https://container.googleapis.com/v1/projects/my-proj/locations/us-central1/clusters/prod',
    namespace: p.namespace,
    namespaceLabels: { team: p.namespace, 'kubernetes.io/metadata.name': p.namespace },
    serviceAccount: p.sa,
    pod: `${p.sa}-7d9f8c6b5-${hex(5)}`,
    podUid: p.podUid,
    tokenId: undefined,
    operation,
    methodName: `google.cloud.aiplatform.v1.${service}.${operation.split('.')[1] ?? ''}`,
    permission,
    permissionType: operation.endsWith('.create') ? 'ADMIN_WRITE' : 'DATA_READ',
    resource: `projects/my-proj/locations/us-central1/${resource}`,
    project: 'my-proj',
    location: 'us-central1',
    decision: deny ? 'deny' : 'allow',
    ruleId: deny ? undefined : `${p.namespace}-vertex`,
    reason: deny ? 'no-matching-rule' : 'allowed-by-rule',
    errorCode: deny ? 'ERR_AUTHZ_DENIED' : undefined,
    policyVersion: 'a1b2c3d4e5f60718',
    httpMethod: operation.endsWith('.get') || operation.endsWith('.list') ? 'GET' : 'POST',
    path: `/v1/projects/my-proj/locations/us-central1/${resource}:${operation.split('.')[1] ?? 'call'}`,
    status: deny ? 403 : 200,
    upstreamStatus: deny ? undefined : 200,
    upstreamError: undefined,
    upstreamRequestId: deny ? undefined : hex(16),
    longRunningName: undefined,
    latencyMs: deny ? 1 : latency,
    upstreamLatencyMs: deny ? undefined : latency - 2,
    requestBytes: 200 + Math.floor(rnd() * 20_000),
    responseBytes: deny ? 180 : 300 + Math.floor(rnd() * 9000),
    clientIp: `10.4.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`,
    userAgent: 'google-genai-sdk/1.20.0 gl-python/3.12',
    ...(generate && !deny
      ? {
          model: operation.includes('stream') ? 'google/gemini-2.5-pro' : 'google/gemini-2.5-flash',
          tokens: { prompt, candidates, total: prompt + candidates },
          usageReported: true,
        }
      : {}),
  };
}

/**
 * The entries' rows ({@link INSERT_COLUMNS} order), in time order, `batch` at a time: each request to one of three replicas,
 * each replica's chain advanced as the proxy advances it (`entryHash`), written when the response ended.
 */
export function* generate(total: number, batch: number): Generator<Array<Array<string | number | null>>> {
  const { principals, cumulative } = population();
  const counts = hourlyCounts(total);
  const rnd = random(42);
  const heads = WRITERS.map(() => ({ seq: 0, hash: GENESIS_HASH, written: 0 }));
  let out: Array<Array<string | number | null>> = [];
  let i = 0;
  for (let h = 0; h < counts.length; h++) {
    const n = counts[h] as number;
    for (let k = 0; k < n; k++, i++) {
      const time = T0 + h * HOUR + Math.floor((k * HOUR) / n);
      const p = principals[pick(cumulative, rnd())] as Principal;
      const record = scaleRecord(i, time, p, rnd);
      const w = Math.floor(rnd() * WRITERS.length);
      const head = heads[w] as { seq: number; hash: string; written: number };
      // Group commit writes at flush time: never before the replica's previous batch.
      head.written = Math.max(head.written, time + record.latencyMs);
      head.seq += 1;
      const recordJson = JSON.stringify(record);
      const hash = entryHash(head.hash, WRITERS[w] as string, head.seq, 'final', head.written, recordJson);
      out.push(
        insertValues({
          writer: WRITERS[w] as string,
          seq: head.seq,
          phase: 'final',
          writtenMs: head.written,
          prevHash: head.hash,
          hash,
          recordJson,
          columns: indexedColumns(record, 'final'),
        }),
      );
      head.hash = hash;
      if (out.length === batch) {
        yield out;
        out = [];
      }
    }
  }
  if (out.length > 0) yield out;
}

/** A principal about tenth in activity (a busy service account), and its day. */
export function queryTarget(): { principal: string; day: { from: number; to: number } } {
  const { principals } = population();
  return { principal: (principals[9] as Principal).principal, day: { from: T0 + 8 * DAY, to: T0 + 9 * DAY } };
}

/** Secondary indexes the schema creates (dropped for the bulk load; the store's own migration builds them again). */
function secondaryIndexes(table: string): string[] {
  return schemaStatements(table, SQLITE_SQL)
    .map((s) => /^CREATE INDEX IF NOT EXISTS (\S+)/.exec(s)?.[1])
    .filter((name): name is string => name !== undefined);
}

function cacheKey(total: number): string {
  // The schema's text (with the rollup's): a new index, column or trigger makes a new cache entry.
  const schema = migrationPlan('audit_entries', SQLITE_SQL, { legacy: false, columns: new Set(), rollup: false }).join('\n');
  return createHash('sha256').update(`${schema}\n${total}\ngenerator ${GENERATOR_VERSION}`).digest('hex').slice(0, 16);
}

const seconds = (started: number) => Math.round((performance.now() - started) / 100) / 10;

/** Rows per multi-row INSERT (SQLite: 24 columns × 100 rows stays far below its 32,766 parameters). */
const SQLITE_ROWS = 100;

async function buildSqlite(path: string, total: number, log: (line: string) => void): Promise<{ load: number; migrate: number }> {
  const temp = `${path}.building`;
  for (const f of [temp, `${temp}-wal`, `${temp}-shm`, `${temp}-journal`]) rmSync(f, { force: true });
  // The store creates its schema; the bulk load then runs without the secondary indexes and the rollup.
  await openSqliteStore({ path: temp, writer: 'bench', maxBatch: 1 }).close();
  let started = performance.now();
  const db = new DatabaseSync(temp);
  // The store made the file WAL; out of WAL first (else the whole load goes through a WAL file as big as the store, then is
  // copied again), then the rollback journal in memory: node's SQLite refuses OFF (defensive mode), and a load into an empty
  // table journals next to nothing (pages past the old end of the file are not journaled).
  db.exec('PRAGMA journal_mode = DELETE');
  const mode = (db.prepare('PRAGMA journal_mode = MEMORY').get() as { journal_mode: string }).journal_mode;
  if (mode !== 'memory') throw new Error(`audit-scale: SQLite journal_mode is ${mode}, not memory`);
  db.exec('PRAGMA synchronous = OFF');
  db.exec('PRAGMA cache_size = -1048576');
  db.exec('PRAGMA locking_mode = EXCLUSIVE');
  for (const name of secondaryIndexes('audit_entries')) db.exec(`DROP INDEX ${name}`);
  for (const statement of dropRollupStatements('audit_entries', 'sqlite')) db.exec(statement);
  const tuple = `(${INSERT_COLUMNS.map(() => '?').join(', ')})`;
  const insertSql = (rows: number) =>
    `INSERT INTO audit_entries (${INSERT_COLUMNS.join(', ')}) VALUES ${Array(rows).fill(tuple).join(', ')}`;
  const many = db.prepare(insertSql(SQLITE_ROWS));
  const one = db.prepare(insertSql(1));
  let done = 0;
  db.exec('BEGIN');
  for (const rows of generate(total, SQLITE_ROWS)) {
    if (rows.length === SQLITE_ROWS) many.run(...rows.flat());
    else for (const row of rows) one.run(...row);
    done += rows.length;
    if (done % 1_000_000 === 0) log(`audit-scale: sqlite ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} rows`);
  }
  db.exec('COMMIT');
  db.exec('PRAGMA journal_mode = DELETE');
  db.close();
  const load = seconds(started);
  log(`audit-scale: sqlite rows in ${load} s; indexes and rollup (the store's migration)`);
  started = performance.now();
  await openSqliteStore({ path: temp, writer: 'bench', maxBatch: 1 }).close();
  const analyze = new DatabaseSync(temp);
  analyze.exec('ANALYZE');
  analyze.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  analyze.close();
  const migrate = seconds(started);
  renameSync(temp, path);
  return { load, migrate };
}

/** Statements that take the hourly rollup away (the migration then creates and fills it, as on a store written before it). */
function dropRollupStatements(table: string, kind: 'sqlite' | 'postgres'): string[] {
  const rollup = rollupTableName(table);
  const on = kind === 'postgres' ? ` ON ${table}` : '';
  return [`DROP TRIGGER IF EXISTS ${rollup}_ins${on}`, `DROP TRIGGER IF EXISTS ${rollup}_del${on}`, `DROP TABLE IF EXISTS ${rollup}`];
}

/** Rows per chunk written to COPY (about 4 MB of text): the stream's backpressure applies per chunk. */
const PG_ROWS = 2000;

async function buildPostgres(
  url: string,
  table: string,
  total: number,
  log: (line: string) => void,
): Promise<{ load: number; migrate: number }> {
  await (await openPostgresStore({ url, table, maxConnections: 1, writer: 'bench', maxBatch: 1 })).close();
  let started = performance.now();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SET synchronous_commit = off');
    // One transaction that empties the table first: with wal_level=minimal PostgreSQL then writes the rows without WAL.
    await client.query('BEGIN');
    await client.query(`TRUNCATE ${table}, ${openDecisionsTableName(table)}`);
    for (const name of secondaryIndexes(table)) await client.query(`DROP INDEX IF EXISTS ${name}`);
    for (const statement of dropRollupStatements(table, 'postgres')) await client.query(statement);
    // COPY FROM STDIN in text format: one statement streaming every row, no per-statement parse, plan or parameter binding
    // (multi-row INSERTs of bound parameters cost about 20 times the generator's time per row).
    let done = 0;
    function* chunks(): Generator<string> {
      for (const rows of generate(total, PG_ROWS)) {
        let chunk = '';
        for (const row of rows) chunk += copyTextRow(row);
        yield chunk;
        done += rows.length;
        if (done % 1_000_000 === 0) log(`audit-scale: postgres ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} rows`);
      }
    }
    await pipeline(Readable.from(chunks()), client.query(copyFrom(`COPY ${table} (${INSERT_COLUMNS.join(', ')}) FROM STDIN`)));
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
  const load = seconds(started);
  log(`audit-scale: postgres rows in ${load} s; indexes and rollup (the store's migration)`);
  started = performance.now();
  await (await openPostgresStore({ url, table, maxConnections: 1, writer: 'bench', maxBatch: 1 })).close();
  const analyze = new pg.Client({ connectionString: url });
  await analyze.connect();
  // The visibility map lets the filter indexes answer without visiting the table (index-only scans), as autovacuum would.
  await analyze.query(`VACUUM ANALYZE ${table}`);
  await analyze.query(`VACUUM ANALYZE ${rollupTableName(table)}`);
  await analyze.query('CHECKPOINT');
  await analyze.end();
  return { load, migrate: seconds(started) };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

/** Wall and process CPU time (ms) of `run`: on a shared machine CPU time says more than wall time (for PostgreSQL, the client's only). */
async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number; cpuMs: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const value = await run();
  const used = process.cpuUsage(cpu);
  return { value, ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000 };
}

/** The three reads, timed: query and summary three times each (median, and the first run apart), verify once. */
export async function measureReads(store: AuditStore): Promise<Partial<AuditScaleResult>> {
  const { principal, day } = queryTarget();
  const queries = [];
  for (let run = 0; run < 3; run++) {
    queries.push(
      await timed(async () => {
        let records = 0;
        let cursor: string | undefined;
        do {
          const page = await store.query({ principal, ...day }, 1000, cursor);
          records += page.records.length;
          cursor = page.nextCursor;
        } while (cursor !== undefined);
        return records;
      }),
    );
  }
  const summaries = [];
  for (let run = 0; run < 3; run++) summaries.push(await timed(() => store.summary({ from: T0 + 7 * DAY, to: T0 + 14 * DAY })));
  const verified = await timed(() => store.verify(day));
  return {
    queryMs: Math.round(median(queries.map((q) => q.ms))),
    queryFirstMs: Math.round(queries[0]?.ms ?? 0),
    queryCpuMs: Math.round(median(queries.map((q) => q.cpuMs))),
    queryRecords: queries[0]?.value ?? 0,
    summaryMs: Math.round(median(summaries.map((q) => q.ms))),
    summaryFirstMs: Math.round(summaries[0]?.ms ?? 0),
    summaryCpuMs: Math.round(median(summaries.map((q) => q.cpuMs))),
    summaryRecords: (summaries[0]?.value ?? []).reduce((n, r) => n + r.count, 0),
    verifyMs: Math.round(verified.ms),
    verifyCpuMs: Math.round(verified.cpuMs),
    verifyEntries: verified.value.entries,
    verifyOk: verified.value.ok,
  };
}

/** Removes cache entries of other keys (an old schema or generator): each is gigabytes. */
function removeStale(dir: string, prefix: string, keep: string): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir))
    if (name.startsWith(prefix) && !name.startsWith(keep)) rmSync(join(dir, name), { recursive: true, force: true });
}

interface BuildInfo {
  readonly load: number;
  readonly migrate: number;
}

/** PostgreSQL settings of the cached cluster: built without WAL for the new table; shared_buffers as a small Cloud SQL instance. */
const PG_SETTINGS = {
  wal_level: 'minimal',
  max_wal_senders: '0',
  shared_buffers: '256MB',
  maintenance_work_mem: '512MB',
  max_wal_size: '8GB',
  checkpoint_timeout: '30min',
};

async function postgresResult(url: string, table: string, records: number, build: BuildInfo | undefined, built: BuildInfo) {
  const store = await openPostgresStore({ url, table, maxConnections: 2, writer: 'bench', maxBatch: 1, migrate: false });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ bytes: string; rollup: string }>(
      `SELECT pg_total_relation_size($1) + pg_total_relation_size($2) + pg_total_relation_size($3) AS bytes, ` +
        `(SELECT COUNT(*) FROM ${rollupTableName(table)}) AS rollup`,
      [table, rollupTableName(table), openDecisionsTableName(table)],
    );
    return {
      store: 'postgres' as const,
      records,
      generateSeconds: build === undefined ? 0 : round1(build.load + build.migrate),
      loadSeconds: built.load,
      migrateSeconds: built.migrate,
      builtSeconds: round1(built.load + built.migrate),
      diskBytes: Number(rows[0]?.bytes),
      rollupRows: Number(rows[0]?.rollup),
      ...(await measureReads(store)),
    };
  } finally {
    await client.end();
    await store.close();
  }
}

const round1 = (v: number) => Math.round(v * 10) / 10;

/** The SQLite store: built (or found in the cache) and read. */
async function sqliteResult(records: number, key: string, log: (line: string) => void): Promise<AuditScaleResult> {
  const dir = process.env.KVP_BENCH_CACHE ?? join(homedir(), '.cache', 'kube-vertex-proxy', 'audit-scale');
  mkdirSync(dir, { recursive: true });
  removeStale(dir, `sqlite-${records}-`, `sqlite-${key}`);
  const path = join(dir, `sqlite-${key}.db`);
  let build: BuildInfo | undefined;
  if (!existsSync(path)) {
    log(`audit-scale: building the SQLite store of ${records.toLocaleString('en-US')} records (cached at ${path})`);
    build = await buildSqlite(path, records, log);
    writeFileSync(`${path}.json`, JSON.stringify(build));
  }
  const built = JSON.parse(readFileSync(`${path}.json`, 'utf8')) as BuildInfo;
  log(`audit-scale: sqlite store ${(statSync(path).size / 2 ** 30).toFixed(1)} GiB`);
  const sqlite = openSqliteStore({ path, writer: 'bench', maxBatch: 1, readOnly: true });
  try {
    const rollup = new DatabaseSync(path, { readOnly: true });
    const rollupRows = (rollup.prepare(`SELECT COUNT(*) AS n FROM ${rollupTableName('audit_entries')}`).get() as { n: number }).n;
    rollup.close();
    return {
      store: 'sqlite',
      records,
      generateSeconds: build === undefined ? 0 : round1(build.load + build.migrate),
      loadSeconds: built.load,
      migrateSeconds: built.migrate,
      builtSeconds: round1(built.load + built.migrate),
      diskBytes: statSync(path).size,
      rollupRows,
      ...(await measureReads(sqlite)),
    };
  } finally {
    await sqlite.close();
  }
}

export async function runAuditScale(options: {
  readonly records: number;
  /** Records in the PostgreSQL store when not `records` (`--postgres-records`: its build is the slow one). */
  readonly postgresRecords?: number;
  readonly postgresUrl: string | undefined;
  /** Which stores (`--stores sqlite,postgres`, the default: both; one alone to build or measure it by hand). */
  readonly stores?: readonly string[];
  readonly log: (line: string) => void;
}): Promise<AuditScaleResult[]> {
  const { records, log } = options;
  const results: AuditScaleResult[] = [];
  const key = `${records}-${cacheKey(records)}`;

  const stores = options.stores ?? ['sqlite', 'postgres'];
  if (stores.includes('sqlite')) results.push(await sqliteResult(records, key, log));
  if (!stores.includes('postgres')) return results;
  return [...results, ...(await postgresResults(options.postgresRecords ?? records, options.postgresUrl, log))];
}

/** The PostgreSQL store of `records` records (built once, cached), or at the caller's server. */
async function postgresResults(records: number, postgresUrl: string | undefined, log: (line: string) => void): Promise<AuditScaleResult[]> {
  const results: AuditScaleResult[] = [];
  const key = `${records}-${cacheKey(records)}`;
  if (postgresUrl !== undefined) {
    // A server of the caller's: built into every run (nothing to cache it in).
    const table = 'audit_scale';
    log(`audit-scale: building the PostgreSQL store of ${records.toLocaleString('en-US')} records at the given URL`);
    const info = await buildPostgres(postgresUrl, table, records, log);
    results.push(await postgresResult(postgresUrl, table, records, info, info));
    return results;
  }
  try {
    findBinDir();
  } catch {
    results.push({ store: 'postgres', records, unavailable: 'PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)' });
    return results;
  }
  const pgRoot = process.env.KVP_BENCH_PG_CACHE ?? '/var/tmp/kube-vertex-proxy-audit-scale';
  mkdirSync(pgRoot, { recursive: true });
  removeStale(pgRoot, `pg-${records}-`, `pg-${key}`);
  const pgDir = join(pgRoot, `pg-${key}`);
  const table = 'audit_entries';
  let pgBuild: BuildInfo | undefined;
  if (!existsSync(join(pgDir, 'built.json'))) {
    const building = `${pgDir}.building`;
    rmSync(building, { recursive: true, force: true });
    log(`audit-scale: building the PostgreSQL store of ${records.toLocaleString('en-US')} records (cached at ${pgDir})`);
    const server = await startTestPostgres({ directory: building, fsync: false, settings: PG_SETTINGS });
    try {
      pgBuild = await buildPostgres(server.url, table, records, log);
    } finally {
      await server.stop();
    }
    writeFileSync(join(building, 'built.json'), JSON.stringify(pgBuild));
    renameSync(building, pgDir);
  }
  const pgBuilt = JSON.parse(readFileSync(join(pgDir, 'built.json'), 'utf8')) as BuildInfo;
  const server = await startTestPostgres({ directory: pgDir, fsync: false, settings: PG_SETTINGS });
  try {
    results.push(await postgresResult(server.url, table, records, pgBuild, pgBuilt));
  } finally {
    await server.stop();
  }
  return results;
}

/** The standalone entry: `node audit-scale.js --records N [--postgres-records N] [--postgres URL]`; one JSON line on stdout. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      records: { type: 'string' },
      'postgres-records': { type: 'string' },
      postgres: { type: 'string' },
      stores: { type: 'string' },
    },
  });
  const results = await runAuditScale({
    records: Number(values.records ?? 10_000_000),
    ...(values['postgres-records'] === undefined ? {} : { postgresRecords: Number(values['postgres-records']) }),
    postgresUrl: values.postgres,
    stores: (values.stores ?? 'sqlite,postgres').split(','),
    log: (line) => process.stderr.write(`[bench] ${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
