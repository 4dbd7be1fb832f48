/**
 * The durable audit store: what every backend (SQLite, PostgreSQL) offers,
 * and the parts they share — the hash chain, group commit, the query
 * vocabulary and its SQL.
 *
 * Storage model: append-only entries, never updated. An allowed request in
 * strict mode gets a `decision` entry before it is forwarded and a `final`
 * entry when its response closes; every other request gets only a `final`
 * entry. Queries see one record per request: its `final` entry, or its
 * `decision` entry when no final one exists (in flight, or the process died
 * mid-request).
 *
 * Only `final` entries are in the filter indexes (partial indexes). A
 * decision entry is listed in the small `<table>_open` table until its final
 * entry, written in the same transaction, takes it out; queries read the
 * open decisions from there. A strict request thus pays for one fully
 * indexed row, not two, and no query needs a per-row "has a final entry?"
 * look-up. The open table is not part of the hash chain: `verify` checks it
 * against the chain.
 *
 * Tamper evidence: each entry carries `hash = SHA-256(prevHash, writer, seq,
 * phase, writtenMs, recordJson)`, chained per writer (replica) in `seq`
 * order. `verify` recomputes the chain and reports the first broken link.
 * Retention deletes the oldest entries, so a chain may legitimately start
 * later than seq 1: its first remaining entry is the anchor.
 *
 * Errors: store failures reject with the backend's error; callers turn them
 * into `ERR_AUDIT_UNAVAILABLE`.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import type { AuditRecord } from './record.js';

export type EntryPhase = 'decision' | 'final';

/** One stored row, as read back: a chained entry and its row id. */
export interface StoredEntry extends ChainedEntry {
  readonly id: number;
}

export interface IndexedColumns {
  readonly request_id: string;
  readonly time_ms: number;
  readonly principal: string | null;
  readonly namespace: string | null;
  readonly operation: string | null;
  readonly permission: string | null;
  readonly resource: string | null;
  readonly decision: string;
  readonly rule_id: string | null;
  readonly status: number | null;
  /** Usage columns (added by a later schema; null in older rows and where the response reported none). */
  readonly model: string | null;
  readonly prompt_tokens: number | null;
  readonly candidates_tokens: number | null;
  readonly thoughts_tokens: number | null;
  readonly cached_tokens: number | null;
  readonly tool_tokens: number | null;
  readonly total_tokens: number | null;
}

/** The usage columns, in order, with the TokenUsage field each copies. */
export const TOKEN_COLUMNS = [
  ['prompt_tokens', 'prompt'],
  ['candidates_tokens', 'candidates'],
  ['thoughts_tokens', 'thoughts'],
  ['cached_tokens', 'cached'],
  ['tool_tokens', 'tool'],
  ['total_tokens', 'total'],
] as const;

export const COLUMN_NAMES = [
  'request_id',
  'time_ms',
  'principal',
  'namespace',
  'operation',
  'permission',
  'resource',
  'decision',
  'rule_id',
  'status',
  'model',
  ...TOKEN_COLUMNS.map(([column]) => column),
] as const;

export function indexedColumns(record: AuditRecord, phase: EntryPhase): IndexedColumns {
  return {
    request_id: record.requestId,
    time_ms: Date.parse(record.time),
    principal: record.principal ?? null,
    namespace: record.namespace ?? null,
    operation: record.operation ?? null,
    permission: record.permission ?? null,
    resource: record.resource ?? null,
    decision: record.decision,
    rule_id: record.ruleId ?? null,
    status: phase === 'decision' ? null : record.status,
    model: record.model ?? null,
    prompt_tokens: record.tokens?.prompt ?? null,
    candidates_tokens: record.tokens?.candidates ?? null,
    thoughts_tokens: record.tokens?.thoughts ?? null,
    cached_tokens: record.tokens?.cached ?? null,
    tool_tokens: record.tokens?.tool ?? null,
    total_tokens: record.tokens?.total ?? null,
  };
}

/** An entry ready to insert: chained and hashed. */
export interface ChainedEntry {
  readonly writer: string;
  readonly seq: number;
  readonly phase: EntryPhase;
  readonly writtenMs: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly recordJson: string;
  /** Indexed copies of record fields; verify checks they agree with `recordJson`. */
  readonly columns: IndexedColumns;
}

export const GENESIS_HASH = '0'.repeat(64);

export function entryHash(prevHash: string, writer: string, seq: number, phase: EntryPhase, writtenMs: number, recordJson: string): string {
  return createHash('sha256').update(`${prevHash}\n${writer}\n${seq}\n${phase}\n${writtenMs}\n`).update(recordJson).digest('hex');
}

export interface ChainLink {
  readonly seq: number;
  readonly hash: string;
}

/** What a query asks for. Every field optional; patterns use `*` for any run of characters. */
export interface AuditQuery {
  readonly principal?: string;
  readonly namespace?: string;
  /** Exact permission, or a pattern (`aiplatform.endpoints.*`). */
  readonly permission?: string;
  readonly operation?: string;
  /** Exact resource name, or a pattern (`projects/p/locations/l/endpoints/*`). */
  readonly resource?: string;
  readonly decision?: 'allow' | 'deny';
  readonly status?: number;
  readonly rule?: string;
  /** Epoch ms, inclusive. */
  readonly from?: number;
  /** Epoch ms, exclusive. */
  readonly to?: number;
}

/** A record as read back: `complete` is false for a decision entry whose request never got its final entry (the process died mid-request). */
export type StoredRecord = AuditRecord & { readonly complete: boolean };

export interface RecordPage {
  readonly records: StoredRecord[];
  /** Opaque; pass back to get the next (older) page. Undefined on the last page. */
  readonly nextCursor: string | undefined;
}

export interface SummaryRow {
  readonly principal: string | null;
  readonly permission: string | null;
  readonly decision: string;
  readonly count: number;
}

/** What `summary --group-by` may group by. */
export const SUMMARY_GROUPS = ['principal', 'namespace', 'model'] as const;
export type SummaryGroup = (typeof SUMMARY_GROUPS)[number];

/** One group of a usage summary: requests and summed tokens (unreported counts add nothing). */
export interface UsageSummaryRow {
  readonly principal?: string | null;
  readonly namespace?: string | null;
  readonly model?: string | null;
  readonly requests: number;
  readonly promptTokens: number;
  readonly candidatesTokens: number;
  readonly thoughtsTokens: number;
  readonly cachedTokens: number;
  readonly toolTokens: number;
  readonly totalTokens: number;
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly writers: number;
  readonly entries: number;
  /** The first broken link, when there is one. */
  readonly broken?: { readonly writer: string; readonly seq: number; readonly id: number; readonly problem: string };
}

export interface AuditStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Appends entries durably (committed when the promise resolves); many callers share one transaction. */
  append(entries: ReadonlyArray<{ phase: EntryPhase; record: AuditRecord }>): Promise<void>;
  query(query: AuditQuery, limit: number, cursor?: string): Promise<RecordPage>;
  summary(query: AuditQuery): Promise<SummaryRow[]>;
  /** Requests and tokens summed by the given columns (at least one of {@link SUMMARY_GROUPS}). */
  usageSummary(query: AuditQuery, groupBy: readonly SummaryGroup[]): Promise<UsageSummaryRow[]>;
  verify(range?: { from?: number; to?: number }): Promise<VerifyResult>;
  /** Deletes entries written before `beforeMs`, at most `batch` per statement; returns how many went. */
  deleteOlderThan(beforeMs: number, batch: number): Promise<number>;
  /** Whether the last write or open succeeded (readiness). */
  healthy(): boolean;
  close(): Promise<void>;
}

export interface StoreHooks {
  /** After each transaction: how many entries, how long it took, whether it committed. */
  readonly onBatch?: (kind: AuditStore['kind'], size: number, seconds: number, ok: boolean) => void;
}

/**
 * Group commit: callers `submit` entries and wait; while one transaction
 * runs, everything that arrives queues up and goes into the next one.
 * Hashes are computed at flush time from the chain head, and the head only
 * moves when the transaction committed, so a failed batch leaves no gap.
 */
export class GroupCommitter {
  readonly #pending: Array<{ phase: EntryPhase; record: AuditRecord; resolve: () => void; reject: (error: unknown) => void }> = [];
  #flushing = false;
  #idleWaiters: Array<() => void> = [];
  #head: ChainLink | undefined;
  readonly #writer: string;
  readonly #maxBatch: number;
  readonly #loadHead: () => Promise<ChainLink | undefined>;
  readonly #write: (entries: ChainedEntry[]) => Promise<void>;
  readonly #schedule: (run: () => void) => void;
  readonly #onBatch: (size: number, seconds: number, ok: boolean) => void;

  constructor(options: {
    writer: string;
    maxBatch: number;
    loadHead: () => Promise<ChainLink | undefined>;
    write: (entries: ChainedEntry[]) => Promise<void>;
    /** How a flush is started: SQLite waits a turn of the event loop so arrivals can join. */
    schedule?: (run: () => void) => void;
    onBatch?: (size: number, seconds: number, ok: boolean) => void;
  }) {
    this.#writer = options.writer;
    this.#maxBatch = options.maxBatch;
    this.#loadHead = options.loadHead;
    this.#write = options.write;
    this.#schedule = options.schedule ?? ((run) => queueMicrotask(run));
    this.#onBatch = options.onBatch ?? (() => undefined);
  }

  submit(entries: ReadonlyArray<{ phase: EntryPhase; record: AuditRecord }>): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    const done = entries.map(
      (entry) =>
        new Promise<void>((resolve, reject) => {
          this.#pending.push({ ...entry, resolve, reject });
        }),
    );
    if (!this.#flushing) {
      this.#flushing = true;
      this.#schedule(() => void this.#flush());
    }
    return entries.length === 1 ? (done[0] as Promise<void>) : Promise.all(done).then(() => undefined);
  }

  /** Resolves when everything submitted so far has been committed or failed. */
  idle(): Promise<void> {
    if (!this.#flushing) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, this.#maxBatch);
      const started = process.hrtime.bigint();
      try {
        // Read the head lazily and again after a failure: another process may have written since (restart on the same store).
        this.#head ??= await this.#loadHead();
        let seq = this.#head?.seq ?? 0;
        let prev = this.#head?.hash ?? GENESIS_HASH;
        const writtenMs = Date.now();
        const chained: ChainedEntry[] = batch.map(({ phase, record }) => {
          seq += 1;
          const recordJson = JSON.stringify(record);
          const hash = entryHash(prev, this.#writer, seq, phase, writtenMs, recordJson);
          const entry: ChainedEntry = {
            writer: this.#writer,
            seq,
            phase,
            writtenMs,
            prevHash: prev,
            hash,
            recordJson,
            columns: indexedColumns(record, phase),
          };
          prev = hash;
          return entry;
        });
        await this.#write(chained);
        this.#head = { seq, hash: prev };
        this.#onBatch(batch.length, Number(process.hrtime.bigint() - started) / 1e9, true);
        for (const item of batch) item.resolve();
      } catch (error) {
        this.#head = undefined;
        this.#onBatch(batch.length, Number(process.hrtime.bigint() - started) / 1e9, false);
        for (const item of batch) item.reject(error);
      }
    }
    this.#flushing = false;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** `*` → SQL LIKE `%`, with LIKE's own metacharacters escaped (ESCAPE '\'). */
export function likePattern(pattern: string): string {
  return pattern.replace(/[\\%_]/g, (c) => `\\${c}`).replaceAll('*', '%');
}

/**
 * The filters of a query as SQL conditions on the entries table (alias `e`),
 * shared by both dialects. `param(value)` adds a bound parameter and returns
 * its placeholder; placeholders are numbered (`?1`, `$1`) because
 * {@link recordsSql} uses the conditions twice.
 */
export function whereClause(query: AuditQuery, param: (value: unknown) => string, alias = 'e'): string {
  const parts: string[] = [];
  const exactOrLike = (column: string, value: string | undefined) => {
    if (value === undefined) return;
    if (value.includes('*')) parts.push(`${alias}.${column} LIKE ${param(likePattern(value))} ESCAPE '\\'`);
    else parts.push(`${alias}.${column} = ${param(value)}`);
  };
  exactOrLike('principal', query.principal);
  exactOrLike('namespace', query.namespace);
  exactOrLike('permission', query.permission);
  exactOrLike('operation', query.operation);
  exactOrLike('resource', query.resource);
  if (query.decision !== undefined) parts.push(`${alias}.decision = ${param(query.decision)}`);
  if (query.status !== undefined) parts.push(`${alias}.status = ${param(query.status)}`);
  if (query.rule !== undefined) parts.push(`${alias}.rule_id = ${param(query.rule)}`);
  if (query.from !== undefined) parts.push(`${alias}.time_ms >= ${param(query.from)}`);
  if (query.to !== undefined) parts.push(`${alias}.time_ms < ${param(query.to)}`);
  return parts.length === 0 ? '1 = 1' : parts.join(' AND ');
}

/**
 * A query's filters plus the page cursor (`e.id < …`), with numbered
 * placeholders (`placeholder(1)` → `?1` or `$1`) because {@link recordsSql}
 * uses the conditions in both of its branches. `param` adds more parameters.
 */
export function queryConditions(query: AuditQuery, before: number | undefined, placeholder: (n: number) => string) {
  const params: unknown[] = [];
  const param = (value: unknown) => placeholder(params.push(value));
  let where = whereClause(query, param);
  if (before !== undefined) where += ` AND e.id < ${param(before)}`;
  return { where, params, param };
}

/**
 * One record per request as a compound SELECT of `columns` (of alias `e`):
 * the final entries that match (through the partial indexes: the literal
 * `e.phase = 'final'` is what lets both databases use them) and the open
 * decision entries that match. Callers add ORDER BY / LIMIT to the compound,
 * which both databases answer by merging the two ordered branches.
 */
export function recordsSql(table: string, columns: string, where: string): string {
  return `SELECT ${columns} FROM ${table} e WHERE e.phase = 'final' AND ${where} UNION ALL SELECT ${columns} FROM ${openTable(table)} o JOIN ${table} e ON e.id = o.id WHERE ${where}`;
}

export function encodeCursor(id: number): string {
  return Buffer.from(`v1:${id}`).toString('base64url');
}

/** @throws TypeError on a cursor this store did not issue. */
export function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString();
  const match = /^v1:([0-9]{1,15})$/.exec(text);
  if (!match) throw new TypeError('invalid cursor');
  return Number(match[1]);
}

function entryProblem(entry: StoredEntry, previous: StoredEntry | undefined): string | undefined {
  if (previous !== undefined) {
    if (entry.seq !== previous.seq + 1) return `sequence gap: ${previous.seq} is followed by ${entry.seq} (entries removed)`;
    if (entry.prevHash !== previous.hash) return "prev_hash does not match the previous entry's hash";
  } else if (entry.seq === 1 && entry.prevHash !== GENESIS_HASH) {
    return 'the first entry does not start from the genesis hash';
  }
  const expected = entryHash(entry.prevHash, entry.writer, entry.seq, entry.phase, entry.writtenMs, entry.recordJson);
  if (expected !== entry.hash) return "hash does not match the entry's content (entry modified)";
  let record: AuditRecord;
  try {
    record = JSON.parse(entry.recordJson) as AuditRecord;
  } catch {
    return 'record is not valid JSON';
  }
  const columns = indexedColumns(record, entry.phase);
  for (const name of COLUMN_NAMES) {
    if (String(columns[name]) !== String(entry.columns[name])) return `column ${name} does not match the hashed record (entry modified)`;
  }
  return undefined;
}

/** Parses stored record JSON (written by this program) back into a record. */
export function parseRecord(json: string, phase: EntryPhase): StoredRecord {
  return { ...(JSON.parse(json) as AuditRecord), complete: phase === 'final' };
}

/** Pages of entries ordered by (writer, seq), after the given key, within a written-time range. */
export type EntryPager = (
  after: { writer: string; seq: number } | undefined,
  limit: number,
  range: { from?: number; to?: number },
) => Promise<StoredEntry[]>;

/**
 * Entries written this long before the open list was read had committed by
 * then (a write statement times out after 10 s). Younger ones may have
 * committed after the read, so the open-list check leaves them out.
 */
const SETTLED_MS = 60_000;

/**
 * Walks every writer's chain page by page; stops at the first broken link.
 * With `openList` (whole-store verify only: a range cuts requests in two), it
 * also checks the open list against the chain, since the list is not hashed:
 * a decision entry without a final entry must be listed (else queries would
 * not show it), and one with a final entry must not be (else they would show
 * the request twice).
 */
export async function verifyPaged(
  page: EntryPager,
  range: { from?: number; to?: number } = {},
  openList?: () => Promise<number[]>,
): Promise<VerifyResult> {
  const PAGE = 5000;
  const settled = Date.now() - SETTLED_MS;
  const open = range.from === undefined && range.to === undefined && openList !== undefined ? new Set(await openList()) : undefined;
  let after: { writer: string; seq: number } | undefined;
  let previous: StoredEntry | undefined;
  let writers = 0;
  let entries = 0;
  // Decision entries of the current writer still waiting for their final entry: requests in flight, about as many as concurrency.
  let waiting = new Map<string, StoredEntry>();
  const broken = (entry: StoredEntry, problem: string): VerifyResult => ({
    ok: false,
    writers,
    entries,
    broken: { writer: entry.writer, seq: entry.seq, id: entry.id, problem },
  });
  const unlisted = (): VerifyResult | undefined => {
    for (const decision of waiting.values()) {
      if (decision.writtenMs < settled && !open?.has(decision.id))
        return broken(decision, 'decision entry without a final entry is missing from the open list (queries do not show it)');
    }
    return undefined;
  };
  for (;;) {
    const rows = await page(after, PAGE, range);
    for (const entry of rows) {
      if (previous?.writer !== entry.writer) {
        const problem = open === undefined ? undefined : unlisted();
        if (problem !== undefined) return problem;
        waiting = new Map();
        previous = undefined;
        writers += 1;
      }
      entries += 1;
      const problem = entryProblem(entry, previous);
      if (problem !== undefined) return broken(entry, problem);
      if (open !== undefined) {
        if (entry.phase === 'decision') waiting.set(entry.columns.request_id, entry);
        else if (entry.columns.decision === 'allow') {
          const decision = waiting.get(entry.columns.request_id);
          waiting.delete(entry.columns.request_id);
          if (decision !== undefined && entry.writtenMs < settled && open.has(decision.id))
            return broken(
              decision,
              'decision entry is still on the open list although its final entry exists (queries show the request twice)',
            );
        }
      }
      previous = entry;
    }
    if (rows.length < PAGE) return (open === undefined ? undefined : unlisted()) ?? { ok: true, writers, entries };
    const last = rows[rows.length - 1] as StoredEntry;
    after = { writer: last.writer, seq: last.seq };
  }
}

/** Column list shared by both dialects' CREATE TABLE (types differ only in the id and integer widths). */
export function tableColumns(dialect: 'sqlite' | 'postgres'): string {
  const id = dialect === 'sqlite' ? 'id INTEGER PRIMARY KEY' : 'id BIGSERIAL PRIMARY KEY';
  const big = dialect === 'sqlite' ? 'INTEGER' : 'BIGINT';
  return `${id},
    writer TEXT NOT NULL,
    seq ${big} NOT NULL,
    phase TEXT NOT NULL,
    written_ms ${big} NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    request_id TEXT NOT NULL,
    time_ms ${big} NOT NULL,
    principal TEXT,
    namespace TEXT,
    operation TEXT,
    permission TEXT,
    resource TEXT,
    decision TEXT NOT NULL,
    rule_id TEXT,
    status INTEGER,
    record TEXT NOT NULL,
    ${ADDED_COLUMNS.map(([name, type]) => `${name} ${type === 'big' ? big : type}`).join(',\n    ')},
    UNIQUE (writer, seq)`;
}

/** Columns added after the first schemas (usage): created with new tables, added to old ones by {@link addedColumnStatements}. */
export const ADDED_COLUMNS: ReadonlyArray<readonly [string, 'TEXT' | 'big']> = [
  ['model', 'TEXT'],
  ...TOKEN_COLUMNS.map(([column]) => [column, 'big'] as const),
];

/** ALTER TABLE statements for the added columns a table lacks (`existing`: its column names). */
export function addedColumnStatements(table: string, dialect: 'sqlite' | 'postgres', existing: ReadonlySet<string>): string[] {
  const big = dialect === 'sqlite' ? 'INTEGER' : 'BIGINT';
  return ADDED_COLUMNS.filter(([name]) => !existing.has(name)).map(
    ([name, type]) => `ALTER TABLE ${table} ADD COLUMN ${name} ${type === 'big' ? big : type}`,
  );
}

/**
 * The usage summary over the same one-record-per-request set as queries:
 * grouped by `groupBy`, requests counted, tokens summed, biggest spenders
 * first. Group names come from {@link SUMMARY_GROUPS} only (never from input).
 */
export function usageSummarySql(table: string, groupBy: readonly SummaryGroup[], where: string): string {
  const groups = groupBy.filter((g) => (SUMMARY_GROUPS as readonly string[]).includes(g));
  if (groups.length === 0) throw new TypeError('group by at least one of principal, namespace, model');
  const inner = [...groups.map((g) => `e.${g}`), ...TOKEN_COLUMNS.map(([c]) => `e.${c}`)].join(', ');
  const sums = TOKEN_COLUMNS.map(([c]) => `COALESCE(SUM(${c}), 0) AS ${c}`).join(', ');
  const list = groups.join(', ');
  return `SELECT ${list}, COUNT(*) AS requests, ${sums} FROM (${recordsSql(table, inner, where)}) r GROUP BY ${list} ORDER BY total_tokens DESC, requests DESC, ${list}`;
}

/** A row of {@link usageSummarySql} (either driver: sums may be strings from PostgreSQL) → UsageSummaryRow. */
export function toUsageSummaryRow(row: Record<string, unknown>, groupBy: readonly SummaryGroup[]): UsageSummaryRow {
  const out: Record<string, unknown> = {};
  for (const g of groupBy) out[g] = row[g] ?? null;
  return {
    ...out,
    requests: Number(row.requests),
    promptTokens: Number(row.prompt_tokens),
    candidatesTokens: Number(row.candidates_tokens),
    thoughtsTokens: Number(row.thoughts_tokens),
    cachedTokens: Number(row.cached_tokens),
    toolTokens: Number(row.tool_tokens),
    totalTokens: Number(row.total_tokens),
  };
}

/** The table listing decision entries whose final entry is not written yet. */
export function openTable(table: string): string {
  return `${table}_open`;
}

/** Filter indexes, final entries only; each with time for range scans. */
const FINAL_INDEXES = [
  ['f_time', 'time_ms'],
  ['f_principal', 'principal, time_ms'],
  ['f_namespace', 'namespace, time_ms'],
  ['f_permission', 'permission, time_ms'],
  ['f_resource', 'resource, time_ms'],
  ['f_rule', 'rule_id, time_ms'],
] as const;

/**
 * The schema, idempotent: entries, the open-decision table (keyed by request
 * id for the final entry's delete; the entry id makes a repeated request id
 * harmless), the partial filter indexes, and the retention index.
 */
export function schemaStatements(table: string, dialect: 'sqlite' | 'postgres'): string[] {
  const big = dialect === 'sqlite' ? 'INTEGER' : 'BIGINT';
  return [
    `CREATE TABLE IF NOT EXISTS ${table} (${tableColumns(dialect)})`,
    `CREATE TABLE IF NOT EXISTS ${openTable(table)} (request_id TEXT NOT NULL, id ${big} NOT NULL, PRIMARY KEY (request_id, id))${dialect === 'sqlite' ? ' WITHOUT ROWID' : ''}`,
    ...FINAL_INDEXES.map(([name, columns]) => `CREATE INDEX IF NOT EXISTS ${table}_${name} ON ${table} (${columns}) WHERE phase = 'final'`),
    `CREATE INDEX IF NOT EXISTS ${table}_written ON ${table} (written_ms)`,
  ];
}

/** The index whose presence marks a store of the first schema (full indexes on every entry, no open table). */
export function legacyMarkerIndex(table: string): string {
  return `${table}_request`;
}

/**
 * From the first schema: list the decision entries that have no final entry as
 * open (the marker index makes that look-up cheap, so it runs before the old
 * indexes go), then drop the old full indexes. Run after
 * {@link schemaStatements}, in the same transaction.
 */
export function legacyMigrationStatements(table: string): string[] {
  return [
    `INSERT INTO ${openTable(table)} (request_id, id) SELECT e.request_id, e.id FROM ${table} e WHERE e.phase = 'decision' AND NOT EXISTS (SELECT 1 FROM ${table} f WHERE f.request_id = e.request_id AND f.phase = 'final')`,
    ...['time', 'principal', 'namespace', 'permission', 'resource', 'rule', 'request'].map(
      (name) => `DROP INDEX IF EXISTS ${table}_${name}`,
    ),
  ];
}

/** After retention deleted entries: open rows whose decision entry is gone. */
export function pruneOpenStatement(table: string): string {
  return `DELETE FROM ${openTable(table)} WHERE NOT EXISTS (SELECT 1 FROM ${table} e WHERE e.id = ${openTable(table)}.id)`;
}

/** Whether appending this entry takes a decision off the open list (only allowed requests ever have a decision entry). */
export function closesDecision(entry: ChainedEntry): boolean {
  return entry.phase === 'final' && entry.columns.decision === 'allow';
}

export const INSERT_COLUMNS = ['writer', 'seq', 'phase', 'written_ms', 'prev_hash', 'hash', ...COLUMN_NAMES, 'record'] as const;

export function insertValues(entry: ChainedEntry): unknown[] {
  const c = entry.columns;
  return [
    entry.writer,
    entry.seq,
    entry.phase,
    entry.writtenMs,
    entry.prevHash,
    entry.hash,
    c.request_id,
    c.time_ms,
    c.principal,
    c.namespace,
    c.operation,
    c.permission,
    c.resource,
    c.decision,
    c.rule_id,
    c.status,
    c.model,
    c.prompt_tokens,
    c.candidates_tokens,
    c.thoughts_tokens,
    c.cached_tokens,
    c.tool_tokens,
    c.total_tokens,
    entry.recordJson,
  ];
}

/** A stored row (either driver's shape: numbers may come back as strings from PostgreSQL BIGINT) → StoredEntry. */
export function rowToEntry(row: Record<string, unknown>): StoredEntry {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    id: Number(row.id),
    writer: String(row.writer),
    seq: Number(row.seq),
    phase: row.phase as EntryPhase,
    writtenMs: Number(row.written_ms),
    prevHash: String(row.prev_hash),
    hash: String(row.hash),
    recordJson: String(row.record),
    columns: {
      request_id: String(row.request_id),
      time_ms: Number(row.time_ms),
      principal: (row.principal as string | null) ?? null,
      namespace: (row.namespace as string | null) ?? null,
      operation: (row.operation as string | null) ?? null,
      permission: (row.permission as string | null) ?? null,
      resource: (row.resource as string | null) ?? null,
      decision: String(row.decision),
      rule_id: (row.rule_id as string | null) ?? null,
      status: num(row.status),
      model: (row.model as string | null) ?? null,
      prompt_tokens: num(row.prompt_tokens),
      candidates_tokens: num(row.candidates_tokens),
      thoughts_tokens: num(row.thoughts_tokens),
      cached_tokens: num(row.cached_tokens),
      tool_tokens: num(row.tool_tokens),
      total_tokens: num(row.total_tokens),
    },
  };
}
