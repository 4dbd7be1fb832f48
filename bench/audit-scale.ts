/**
 * Audit queries at scale: a store of many records (10 million in the full
 * run) spread over ten days, written by three replicas, each entry
 * hash-chained exactly as the proxy chains it; then the three reads an
 * auditor runs, timed through the real store code (`openSqliteStore`,
 * `openPostgresStore`, as `kube-vertex-proxy audit …` calls them):
 *
 * - `query`: every record of one principal over one day, paged as the CLI
 *   pages (1,000 a page);
 * - `summary`: counts by principal × permission × decision over a week;
 * - `verify`: the hash chains of one day (every entry's hash recomputed from
 *   its content, every link checked).
 *
 * The store is built fast: rows inserted in bulk without the secondary
 * indexes, then the store's own migration creates them (so the indexes
 * measured are the ones a real store gets). The SQLite file is cached under
 * `~/.cache/kube-vertex-proxy/audit-scale/`, keyed by the schema's text and
 * the record count, so only the first run pays for it; PostgreSQL is
 * generated into the throw-away server each run.
 *
 * Run as its own process by the orchestrator (`bench/run.ts`), which passes
 * a PostgreSQL URL when one is available; prints one JSON line of
 * {@link AuditScaleResult}s on stdout.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openPostgresStore } from '../src/audit/postgres.js';
import type { AuditRecord } from '../src/audit/record.js';
import { openSqliteStore } from '../src/audit/sqlite.js';
import {
  INSERT_COLUMNS,
  SQLITE_SQL,
  chainEntries,
  insertValues,
  schemaStatements,
  type AuditStore,
  type ChainedEntry,
  type ChainLink,
} from '../src/audit/store.js';

export interface AuditScaleResult {
  readonly store: 'sqlite' | 'postgres';
  /** Entries in the store. */
  readonly records: number;
  /** Why not measured (e.g. no PostgreSQL). */
  readonly unavailable?: string;
  /** Seconds spent building the store in this run (0: cached). */
  readonly generateSeconds?: number;
  /** One principal's records over one day, all pages. */
  readonly queryMs?: number;
  readonly queryRecords?: number;
  /** Summary (principal × permission × decision) over seven days. */
  readonly summaryMs?: number;
  readonly summaryRecords?: number;
  /** Verify of one day's entries. */
  readonly verifyMs?: number;
  readonly verifyEntries?: number;
  readonly verifyOk?: boolean;
}

const DAY = 86_400_000;
const DAYS = 10;
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const WRITERS = ['replica-0', 'replica-1', 'replica-2'];
const NAMESPACES = 100;
const ACCOUNTS = 10;
const PERMISSIONS = [
  ['endpoints.predict', 'aiplatform.endpoints.predict', 'endpoints/1234567890'],
  ['publishers.generateContent', 'aiplatform.endpoints.predict', 'publishers/google/models/gemini-2.5-flash'],
  ['publishers.streamGenerateContent', 'aiplatform.endpoints.predict', 'publishers/google/models/gemini-2.5-pro'],
  ['customJobs.create', 'aiplatform.customJobs.create', 'customJobs'],
  ['customJobs.get', 'aiplatform.customJobs.get', 'customJobs/42'],
  ['batchPredictionJobs.create', 'aiplatform.batchPredictionJobs.create', 'batchPredictionJobs'],
  ['endpoints.rawPredict', 'aiplatform.endpoints.predict', 'endpoints/987'],
  ['models.list', 'aiplatform.models.list', 'models'],
] as const;

/** Record `i` of the generated store: one of 1,000 principals, one of eight operations, every tenth denied. */
export function scaleRecord(i: number, total: number): AuditRecord {
  const time = T0 + Math.floor((i * DAYS * DAY) / total);
  // A multiplicative hash spreads principals and operations evenly without repeating a short cycle.
  const h = Math.imul(i + 1, 2654435761) >>> 0;
  const ns = `team-${h % NAMESPACES}`;
  const sa = `sa-${(h >>> 8) % ACCOUNTS}`;
  const [operation, permission, resource] = PERMISSIONS[(h >>> 16) % PERMISSIONS.length] as (typeof PERMISSIONS)[number];
  const deny = (h >>> 24) % 10 === 0;
  const generate = operation.startsWith('publishers.');
  return {
    time: new Date(time).toISOString(),
    requestId: `req-${i.toString(36)}`,
    direction: 'outbound',
    traceId: undefined,
    spanId: undefined,
    traceSampled: undefined,
    principal: `system:serviceaccount:${ns}:${sa}`,
    issuer: 'cluster',
    namespace: ns,
    namespaceLabels: { team: ns },
    serviceAccount: sa,
    pod: `${sa}-7d9f8-${(h % 997).toString(36)}`,
    podUid: undefined,
    tokenId: undefined,
    operation,
    methodName: `google.cloud.aiplatform.v1.${operation}`,
    permission,
    permissionType: operation.endsWith('.create') ? 'ADMIN_WRITE' : 'DATA_READ',
    resource: `projects/my-proj/locations/us-central1/${resource}`,
    project: 'my-proj',
    location: 'us-central1',
    decision: deny ? 'deny' : 'allow',
    ruleId: deny ? undefined : `rule-${h % 20}`,
    reason: deny ? 'no-matching-rule' : 'allowed-by-rule',
    errorCode: deny ? 'ERR_AUTHZ_DENIED' : undefined,
    policyVersion: 'a1b2c3d4e5f60718',
    httpMethod: 'POST',
    path: `/v1/projects/my-proj/locations/us-central1/${resource}:${operation.split('.')[1] ?? 'call'}`,
    status: deny ? 403 : 200,
    upstreamStatus: deny ? undefined : 200,
    upstreamError: undefined,
    upstreamRequestId: undefined,
    longRunningName: undefined,
    latencyMs: 40 + (h % 400),
    upstreamLatencyMs: deny ? undefined : 35 + (h % 390),
    requestBytes: 200 + (h % 4000),
    responseBytes: 300 + (h % 9000),
    clientIp: `10.4.${(h >>> 4) % 256}.${h % 256}`,
    userAgent: 'google-genai-sdk/1.20.0 gl-python/3.12',
    ...(generate && !deny
      ? {
          model: operation.includes('stream') ? 'google/gemini-2.5-pro' : 'google/gemini-2.5-flash',
          tokens: { prompt: h % 3000, candidates: h % 800, total: (h % 3000) + (h % 800) },
          usageReported: true,
        }
      : {}),
  };
}

/** Entries in insert order: each writer's chain advanced as the proxy advances it, written at the record's time. */
function* generate(total: number, batch: number): Generator<ChainedEntry[]> {
  const heads = new Map<string, ChainLink | undefined>();
  for (let start = 0; start < total; start += batch) {
    const out: ChainedEntry[] = [];
    const end = Math.min(total, start + batch);
    // Consecutive records of one writer share a transaction, as a group commit would write them.
    for (let w = 0; w < WRITERS.length; w++) {
      const writer = WRITERS[w] as string;
      const items = [];
      for (let i = start + w; i < end; i += WRITERS.length) items.push({ phase: 'final' as const, record: scaleRecord(i, total) });
      if (items.length === 0) continue;
      const writtenMs = Date.parse(items[0]?.record.time ?? '');
      const chained = chainEntries(heads.get(writer), writer, writtenMs, items);
      heads.set(writer, chained.head);
      out.push(...chained.entries);
    }
    yield out;
  }
}

/**
 * A batch is written at its first record's time: at most a tenth of a day per batch, so "one day" by written time is one day of records.
 */
function batchSize(total: number, most: number): number {
  return Math.max(1, Math.min(most, Math.floor(total / DAYS / 10)));
}

/** Secondary indexes the schema creates (dropped for the bulk load; the store's own migration builds them again). */
function secondaryIndexes(table: string): string[] {
  return schemaStatements(table, SQLITE_SQL)
    .map((s) => /^CREATE INDEX IF NOT EXISTS (\S+)/.exec(s)?.[1])
    .filter((name): name is string => name !== undefined);
}

function cacheKey(total: number): string {
  // The schema's text: a new index or column makes a new cache entry.
  const schema = schemaStatements('audit_entries', SQLITE_SQL).join('\n');
  return createHash('sha256').update(`${schema}\n${total}\nv2`).digest('hex').slice(0, 16);
}

async function buildSqlite(path: string, total: number, log: (line: string) => void): Promise<void> {
  const temp = `${path}.building`;
  rmSync(temp, { force: true });
  rmSync(`${temp}-wal`, { force: true });
  // The store creates its schema; the bulk load then runs without the secondary indexes.
  await openSqliteStore({ path: temp, writer: 'bench', maxBatch: 1 }).close();
  const db = new DatabaseSync(temp);
  db.exec('PRAGMA journal_mode = OFF');
  db.exec('PRAGMA synchronous = OFF');
  db.exec('PRAGMA cache_size = -262144');
  for (const name of secondaryIndexes('audit_entries')) db.exec(`DROP INDEX ${name}`);
  const insert = db.prepare(
    `INSERT INTO audit_entries (${INSERT_COLUMNS.join(', ')}) VALUES (${INSERT_COLUMNS.map(() => '?').join(', ')})`,
  );
  let done = 0;
  for (const entries of generate(total, batchSize(total, 30_000))) {
    db.exec('BEGIN');
    for (const entry of entries) insert.run(...insertValues(entry));
    db.exec('COMMIT');
    done += entries.length;
    if (done % 1_020_000 === 0) log(`audit-scale: sqlite ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} rows`);
  }
  db.exec('PRAGMA journal_mode = DELETE');
  db.close();
  log('audit-scale: sqlite indexes (the store migration)');
  await openSqliteStore({ path: temp, writer: 'bench', maxBatch: 1 }).close();
  const analyze = new DatabaseSync(temp);
  analyze.exec('ANALYZE');
  analyze.close();
  renameSync(temp, path);
}

async function buildPostgres(url: string, table: string, total: number, log: (line: string) => void): Promise<void> {
  await (await openPostgresStore({ url, table, maxConnections: 1, writer: 'bench', maxBatch: 1 })).close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SET synchronous_commit = off');
    for (const name of secondaryIndexes(table)) await client.query(`DROP INDEX ${name}`);
    const types = INSERT_COLUMNS.map((c) =>
      ['seq', 'written_ms', 'time_ms', 'status'].includes(c) || c.endsWith('_tokens') ? 'bigint' : 'text',
    );
    const sql =
      `INSERT INTO ${table} (${INSERT_COLUMNS.join(', ')}) SELECT * FROM unnest(` +
      `${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`;
    let done = 0;
    for (const entries of generate(total, batchSize(total, 20_000))) {
      const columns: unknown[][] = INSERT_COLUMNS.map(() => []);
      for (const entry of entries) insertValues(entry).forEach((v, i) => (columns[i] as unknown[]).push(v));
      await client.query(sql, columns);
      done += entries.length;
      if (done % 1_000_000 === 0) log(`audit-scale: postgres ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} rows`);
    }
  } finally {
    await client.end();
  }
  log('audit-scale: postgres indexes (the store migration)');
  await (await openPostgresStore({ url, table, maxConnections: 1, writer: 'bench', maxBatch: 1 })).close();
  const analyze = new pg.Client({ connectionString: url });
  await analyze.connect();
  await analyze.query(`VACUUM ANALYZE ${table}`);
  await analyze.end();
}

/** The three reads, timed. */
async function measureReads(
  store: AuditStore,
  total: number,
): Promise<
  Pick<AuditScaleResult, 'queryMs' | 'queryRecords' | 'summaryMs' | 'summaryRecords' | 'verifyMs' | 'verifyEntries' | 'verifyOk'>
> {
  const day = { from: T0 + 4 * DAY, to: T0 + 5 * DAY };
  // A principal with records that day (one of 1,000: about a thousandth of the day's records).
  const principal = scaleRecord(Math.ceil((4 * total) / DAYS) + 17, total).principal as string;
  let started = performance.now();
  let queryRecords = 0;
  let cursor: string | undefined;
  do {
    const page = await store.query({ principal, ...day }, 1000, cursor);
    queryRecords += page.records.length;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  const queryMs = performance.now() - started;

  started = performance.now();
  const rows = await store.summary({ from: T0 + DAY, to: T0 + 8 * DAY });
  const summaryMs = performance.now() - started;

  started = performance.now();
  const verified = await store.verify(day);
  const verifyMs = performance.now() - started;
  return {
    queryMs: Math.round(queryMs),
    queryRecords,
    summaryMs: Math.round(summaryMs),
    summaryRecords: rows.reduce((n, r) => n + r.count, 0),
    verifyMs: Math.round(verifyMs),
    verifyEntries: verified.entries,
    verifyOk: verified.ok,
  };
}

export async function runAuditScale(options: {
  readonly records: number;
  readonly postgresUrl: string | undefined;
  readonly log: (line: string) => void;
}): Promise<AuditScaleResult[]> {
  const { records, log } = options;
  const results: AuditScaleResult[] = [];

  const dir = join(homedir(), '.cache', 'kube-vertex-proxy', 'audit-scale');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `sqlite-${records}-${cacheKey(records)}.db`);
  let generateSeconds = 0;
  if (!existsSync(path)) {
    log(`audit-scale: building the SQLite store of ${records.toLocaleString('en-US')} records (cached at ${path})`);
    const started = performance.now();
    await buildSqlite(path, records, log);
    generateSeconds = Math.round((performance.now() - started) / 100) / 10;
  }
  log(`audit-scale: sqlite store ${(statSync(path).size / 2 ** 30).toFixed(1)} GiB`);
  const sqlite = openSqliteStore({ path, writer: 'bench', maxBatch: 1, readOnly: true });
  try {
    results.push({ store: 'sqlite', records, generateSeconds, ...(await measureReads(sqlite, records)) });
  } finally {
    await sqlite.close();
  }

  if (options.postgresUrl === undefined) {
    results.push({ store: 'postgres', records, unavailable: 'no PostgreSQL server' });
  } else {
    const table = 'audit_scale';
    log(`audit-scale: building the PostgreSQL store of ${records.toLocaleString('en-US')} records`);
    const started = performance.now();
    await buildPostgres(options.postgresUrl, table, records, log);
    const seconds = Math.round((performance.now() - started) / 100) / 10;
    const store = await openPostgresStore({
      url: options.postgresUrl,
      table,
      maxConnections: 2,
      writer: 'bench',
      maxBatch: 1,
      migrate: false,
    });
    try {
      results.push({ store: 'postgres', records, generateSeconds: seconds, ...(await measureReads(store, records)) });
    } finally {
      await store.close();
    }
  }
  return results;
}

/** The standalone entry: `node audit-scale.js --records N [--postgres URL]`; one JSON line on stdout. */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { records: { type: 'string' }, postgres: { type: 'string' } } });
  const results = await runAuditScale({
    records: Number(values.records ?? 10_000_000),
    postgresUrl: values.postgres,
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
