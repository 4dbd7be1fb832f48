/**
 * The query vocabulary as SQL, written once for every {@link Dialect}: the
 * filters, the one-record-per-request set, summaries, cursors, and the
 * mapping between entries and rows.
 *
 * One record per request: its `final` entry, or its `decision` entry while
 * that is listed in the open table (in flight, or the process died
 * mid-request). Only final entries are in the filter indexes (partial
 * indexes), so a strict request pays for one fully indexed row, not two.
 *
 * @module
 */
import type { AuditRecord } from '../record.js';
import type { SqlDialect } from './dialect.js';
import {
  COLUMN_NAMES,
  SUMMARY_GROUPS,
  TOKEN_COLUMNS,
  type AuditQuery,
  type ChainedEntry,
  type EntryPhase,
  type StoredEntry,
  type StoredRecord,
  type SummaryGroup,
  type SummaryRow,
  type UsageSummaryRow,
} from './types.js';

/** The name of the table listing decision entries whose final entry is not written yet (`<table>_open`). */
export function openDecisionsTableName(table: string): string {
  return `${table}_open`;
}

/** `*` → SQL LIKE `%`, with LIKE's own metacharacters escaped (ESCAPE '\'). */
export function likePattern(pattern: string): string {
  return pattern.replace(/[\\%_]/g, (c) => `\\${c}`).replaceAll('*', '%');
}

/**
 * The filters of a query as SQL conditions on the entries table (alias `e`).
 * `param(value)` adds a bound parameter and returns its placeholder.
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
 * Every writer of the entries table, one index look-up each through the (writer, seq) key (a recursive walk, not
 * DISTINCT, which reads the whole index), in `order` (the dialect's byte order for a keyset over writers, or nothing).
 */
export function writersSql(table: string, order: string): string {
  return (
    `WITH RECURSIVE w(writer) AS (SELECT MIN(writer) FROM ${table} UNION ALL SELECT (SELECT MIN(writer) FROM ${table} ` +
    `WHERE writer > w.writer) FROM w WHERE w.writer IS NOT NULL) SELECT writer FROM w WHERE writer IS NOT NULL ` +
    `ORDER BY writer${order}`
  );
}

/** A fresh parameter list and `param`, which adds a value to it and returns its placeholder. */
export function parameters(dialect: Pick<SqlDialect, 'placeholder'>): { params: unknown[]; param: (value: unknown) => string } {
  const params: unknown[] = [];
  return { params, param: (value: unknown) => dialect.placeholder(params.push(value)) };
}

/**
 * A query's filters plus the page cursor (`e.id < …`), with numbered
 * placeholders because {@link recordsSql} uses the conditions in both of its
 * branches. `param` adds more parameters.
 */
export function queryConditions(query: AuditQuery, before: number | undefined, dialect: Pick<SqlDialect, 'placeholder'>) {
  const { params, param } = parameters(dialect);
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
  return (
    `SELECT ${columns} FROM ${table} e WHERE e.phase = 'final' AND ${where} UNION ALL SELECT ${columns} FROM ` +
    `${openDecisionsTableName(table)} o JOIN ${table} e ON e.id = o.id WHERE ${where}`
  );
}

/** Counts by principal × permission × decision, biggest first. */
export function summarySql(table: string, where: string): string {
  return (
    `SELECT principal, permission, decision, COUNT(*) AS count FROM ` +
    `(${recordsSql(table, 'e.principal, e.permission, e.decision', where)}) r GROUP BY principal, permission, decision ORDER ` +
    `BY count DESC, principal, permission, decision`
  );
}

/** A row of {@link summarySql} (either driver: the count may be a string from PostgreSQL) → SummaryRow. */
export function toSummaryRow(row: Record<string, unknown>): SummaryRow {
  return {
    principal: (row.principal as string | null) ?? null,
    permission: (row.permission as string | null) ?? null,
    decision: String(row.decision),
    count: Number(row.count),
  };
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
  return (
    `SELECT ${list}, COUNT(*) AS requests, ${sums} FROM (${recordsSql(table, inner, where)}) r GROUP BY ${list} ORDER BY ` +
    `total_tokens DESC, requests DESC, ${list}`
  );
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

/** Parses stored record JSON (written by this program) back into a record. */
export function parseRecord(json: string, phase: EntryPhase): StoredRecord {
  return { ...(JSON.parse(json) as AuditRecord), complete: phase === 'final' };
}

/** Whether appending this entry takes a decision off the open list (only allowed requests ever have a decision entry). */
export function closesDecision(entry: ChainedEntry): boolean {
  return entry.phase === 'final' && entry.columns.decision === 'allow';
}

export const INSERT_COLUMNS = ['writer', 'seq', 'phase', 'written_ms', 'prev_hash', 'hash', ...COLUMN_NAMES, 'record'] as const;

/** An entry's values in {@link INSERT_COLUMNS} order. */
export function insertValues(entry: ChainedEntry): Array<string | number | null> {
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
  const text = (v: unknown) => (v as string | null | undefined) ?? null;
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
      principal: text(row.principal),
      namespace: text(row.namespace),
      operation: text(row.operation),
      permission: text(row.permission),
      resource: text(row.resource),
      decision: String(row.decision),
      rule_id: text(row.rule_id),
      status: num(row.status),
      model: text(row.model),
      prompt_tokens: num(row.prompt_tokens),
      candidates_tokens: num(row.candidates_tokens),
      thoughts_tokens: num(row.thoughts_tokens),
      cached_tokens: num(row.cached_tokens),
      tool_tokens: num(row.tool_tokens),
      total_tokens: num(row.total_tokens),
    },
  };
}
