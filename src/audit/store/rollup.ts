/**
 * The hourly rollup: final entries counted and their tokens summed per hour
 * (of `time_ms`, UTC epoch hours) × principal × namespace × permission ×
 * decision × model, so a summary over a week reads a few thousand rollup
 * rows per hour instead of every entry of the week.
 *
 * Kept by triggers on the entries table, so it changes in the same
 * transaction as the entries (group commit, retention) whatever process
 * writes them — including a replica of an older version during a rolling
 * upgrade, which knows nothing of the rollup. The migration that creates it
 * fills it from the entries already stored ({@link rollupStatements}).
 *
 * Key columns are NOT NULL (a primary key must compare NULLs as equal): a
 * NULL is stored as '' with its bit set in `nulls`, so '' and NULL stay
 * apart. Reads turn them back ({@link rollupSummarySql}).
 *
 * A summary uses the rollup only when every filter is on a rollup column
 * (principal, namespace, permission, decision, range); whole hours come from
 * the rollup, the part of the range before the first and after the last
 * whole hour from the entries, and in-flight requests (open decision
 * entries) from the open list, so the answer equals the one computed from
 * the entries alone, for any range (also half-hour time zones).
 *
 * @module
 */
import type { SqlDialect } from './dialect.js';
import { openDecisionsTableName, whereClause } from './sql.js';
import { SUMMARY_GROUPS, TOKEN_COLUMNS, type AuditQuery, type SummaryGroup } from './types.js';

export const HOUR_MS = 3_600_000;

/** The rollup table of an entries table (`<table>_hourly`). */
export function rollupTableName(table: string): string {
  return `${table}_hourly`;
}

/** Nullable key columns and their bit in `nulls`. */
const NULLABLE = [
  ['principal', 1],
  ['namespace', 2],
  ['permission', 4],
  ['model', 8],
] as const;

const KEY = ['hour_ms', 'principal', 'namespace', 'permission', 'decision', 'model', 'nulls'] as const;
const SUMS = ['requests', ...TOKEN_COLUMNS.map(([c]) => c)] as const;

/** The hour (floor, also before 1970) of an epoch-ms expression. */
function hourOf(ms: string): string {
  return `(${ms} - (((${ms} % ${HOUR_MS}) + ${HOUR_MS}) % ${HOUR_MS}))`;
}

/** The rollup's key and sums of one entry row (alias `r`, e.g. NEW/OLD in a trigger), with `sign` 1 or -1. */
function rowValues(r: string, sign: 1 | -1): string[] {
  const s = sign === 1 ? '' : '-';
  const mask = NULLABLE.map(([c, bit]) => `CASE WHEN ${r}.${c} IS NULL THEN ${bit} ELSE 0 END`).join(' + ');
  return [
    hourOf(`${r}.time_ms`),
    `COALESCE(${r}.principal, '')`,
    `COALESCE(${r}.namespace, '')`,
    `COALESCE(${r}.permission, '')`,
    `${r}.decision`,
    `COALESCE(${r}.model, '')`,
    `(${mask})`,
    `${s}1`,
    ...TOKEN_COLUMNS.map(([c]) => `${s}COALESCE(${r}.${c}, 0)`),
  ];
}

function upsertTail(rollup: string): string {
  return `ON CONFLICT (${KEY.join(', ')}) DO UPDATE SET ${SUMS.map((c) => `${c} = ${rollup}.${c} + excluded.${c}`).join(', ')}`;
}

/**
 * The aggregated rollup rows of a set of entries (`source`, alias `e`): grouped by the key, sorted (PostgreSQL then upserts in
 * key order, so two replicas never lock the same rows in opposite orders).
 */
function aggregateSelect(source: string, sign: 1 | -1, named = false): string {
  const values = rowValues('e', 1);
  const s = sign === 1 ? '' : '-';
  const key = values.slice(0, KEY.length);
  const sums = [`${s}COUNT(*)`, ...TOKEN_COLUMNS.map(([c]) => `${s}COALESCE(SUM(e.${c}), 0)`)];
  const ordinals = KEY.map((_, i) => i + 1).join(', ');
  const names = [...KEY, ...SUMS];
  return (
    `SELECT ${[...key, ...sums].map((v, i) => (named ? `${v} AS ${names[i] as string}` : v)).join(', ')} FROM ${source} e ` +
    `WHERE e.phase = 'final' GROUP BY ${ordinals} ORDER BY ${ordinals}`
  );
}

/**
 * The rollup table, its triggers, and (`backfill`: the table is new on an existing store) the rollup of the entries already
 * stored. Run in the migration's transaction; PostgreSQL first locks the entries against writers of another version.
 */
export function rollupStatements(table: string, dialect: SqlDialect, backfill: boolean): string[] {
  const rollup = rollupTableName(table);
  const big = dialect.bigint;
  const create =
    `CREATE TABLE IF NOT EXISTS ${rollup} (hour_ms ${big} NOT NULL, principal TEXT NOT NULL, namespace TEXT NOT NULL, ` +
    `permission TEXT NOT NULL, decision TEXT NOT NULL, model TEXT NOT NULL, nulls INTEGER NOT NULL, ` +
    `${SUMS.map((c) => `${c} ${big} NOT NULL`).join(', ')}, PRIMARY KEY (${KEY.join(', ')}))${dialect.keyedTableSuffix}`;
  const columns = `${rollup} (${[...KEY, ...SUMS].join(', ')})`;
  const fill = backfill ? [`INSERT INTO ${columns} ${aggregateSelect(table, 1)} ${upsertTail(rollup)}`] : [];
  if (dialect.kind === 'sqlite') {
    const keyMatch = (r: string) => KEY.map((c, i) => `${c} = ${rowValues(r, 1)[i] as string}`).join(' AND ');
    return [
      create,
      // One upsert per final entry, in C inside the insert's transaction.
      `CREATE TRIGGER IF NOT EXISTS ${rollup}_ins AFTER INSERT ON ${table} WHEN NEW.phase = 'final' BEGIN ` +
        `INSERT INTO ${columns} VALUES (${rowValues('NEW', 1).join(', ')}) ${upsertTail(rollup)}; END`,
      `CREATE TRIGGER IF NOT EXISTS ${rollup}_del AFTER DELETE ON ${table} WHEN OLD.phase = 'final' BEGIN ` +
        `UPDATE ${rollup} SET ${SUMS.map((c, i) => `${c} = ${c} + ${rowValues('OLD', -1)[KEY.length + i] as string}`).join(', ')} ` +
        `WHERE ${keyMatch('OLD')}; DELETE FROM ${rollup} WHERE ${keyMatch('OLD')} AND requests = 0; END`,
      ...fill,
    ];
  }
  // PostgreSQL: statement-level triggers over the transition table (one upsert per multi-row INSERT, not per row).
  const fn = (suffix: string, body: string) =>
    `CREATE OR REPLACE FUNCTION ${rollup}_${suffix}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN ${body} RETURN NULL; END $fn$`;
  return [
    `LOCK TABLE ${table} IN SHARE MODE`,
    create,
    fn('ins', `INSERT INTO ${columns} ${aggregateSelect('ins_rows', 1)} ${upsertTail(rollup)};`),
    // An UPDATE, not an upsert: a key the rollup lacks (an entry edited after it was written) is not made negative.
    fn(
      'del',
      `UPDATE ${rollup} h SET ${SUMS.map((c) => `${c} = h.${c} + d.${c}`).join(', ')} FROM (${aggregateSelect('del_rows', -1, true)}) d ` +
        `WHERE ${KEY.map((c) => `h.${c} = d.${c}`).join(' AND ')}; ` +
        `DELETE FROM ${rollup} WHERE requests <= 0 AND hour_ms >= (SELECT MIN(${hourOf('time_ms')}) FROM del_rows) ` +
        `AND hour_ms <= (SELECT MAX(time_ms) FROM del_rows);`,
    ),
    `DROP TRIGGER IF EXISTS ${rollup}_ins ON ${table}`,
    `DROP TRIGGER IF EXISTS ${rollup}_del ON ${table}`,
    `CREATE TRIGGER ${rollup}_ins AFTER INSERT ON ${table} REFERENCING NEW TABLE AS ins_rows FOR EACH STATEMENT EXECUTE FUNCTION ` +
      `${rollup}_ins()`,
    `CREATE TRIGGER ${rollup}_del AFTER DELETE ON ${table} REFERENCING OLD TABLE AS del_rows FOR EACH STATEMENT EXECUTE FUNCTION ` +
      `${rollup}_del()`,
    ...fill,
  ];
}

/** Filters the rollup can answer: all on its key columns. */
function rollupAnswers(query: AuditQuery): boolean {
  return query.operation === undefined && query.resource === undefined && query.status === undefined && query.rule === undefined;
}

/** The whole hours of a range: [lo, hi), either end open; undefined when the range holds no whole hour. */
function wholeHours(query: AuditQuery): { lo: number | undefined; hi: number | undefined } | undefined {
  const lo = query.from === undefined ? undefined : Math.ceil(query.from / HOUR_MS) * HOUR_MS;
  const hi = query.to === undefined ? undefined : Math.floor(query.to / HOUR_MS) * HOUR_MS;
  if (lo !== undefined && hi !== undefined && lo >= hi) return undefined;
  return { lo, hi };
}

/**
 * A summary's input rows as a UNION ALL of (group columns…, n, token sums…):
 * rollup rows of the whole hours, final entries of the edges, open decision
 * entries of the whole range. Undefined when the rollup cannot answer (a
 * filter it does not have, or no whole hour in the range): then the caller
 * reads the entries as before.
 */
function rollupSource(table: string, query: AuditQuery, groups: readonly string[], param: (value: unknown) => string): string | undefined {
  if (!rollupAnswers(query)) return undefined;
  const hours = wholeHours(query);
  if (hours === undefined) return undefined;
  const rollup = rollupTableName(table);
  const sums = TOKEN_COLUMNS.map(([c]) => c);

  // Rollup rows: a NULL is '' with its bit set; filters see the value only where the bit is clear (NULL matches no filter).
  const bit = (c: string) => NULLABLE.find(([n]) => n === c)?.[1];
  const column = (c: string) => {
    const b = bit(c);
    return b === undefined ? `h.${c}` : `CASE WHEN (h.nulls & ${b}) <> 0 THEN NULL ELSE h.${c} END`;
  };
  const filters: string[] = [];
  const filter = (c: 'principal' | 'namespace' | 'permission', value: string | undefined) => {
    if (value === undefined) return;
    const cond = whereClause({ [c]: value }, param, 'h');
    filters.push(`${cond} AND (h.nulls & ${bit(c) as number}) = 0`);
  };
  filter('principal', query.principal);
  filter('namespace', query.namespace);
  filter('permission', query.permission);
  if (query.decision !== undefined) filters.push(`h.decision = ${param(query.decision)}`);
  if (hours.lo !== undefined) filters.push(`h.hour_ms >= ${param(hours.lo)}`);
  if (hours.hi !== undefined) filters.push(`h.hour_ms < ${param(hours.hi)}`);
  const fromRollup =
    `SELECT ${[...groups.map((g) => `${column(g)} AS ${g}`), 'h.requests AS n', ...sums.map((c) => `h.${c} AS ${c}`)].join(', ')} ` +
    `FROM ${rollup} h WHERE ${filters.length === 0 ? '1 = 1' : filters.join(' AND ')}`;

  const entryColumns = [...groups.map((g) => `e.${g}`), '1 AS n', ...sums.map((c) => `e.${c}`)].join(', ');
  const edges: string[] = [];
  const edge = (from: number, to: number) => {
    edges.push(`SELECT ${entryColumns} FROM ${table} e WHERE e.phase = 'final' AND ${whereClause({ ...query, from, to }, param)}`);
  };
  if (hours.lo !== undefined && query.from !== undefined && query.from < hours.lo) edge(query.from, hours.lo);
  if (hours.hi !== undefined && query.to !== undefined && hours.hi < query.to) edge(hours.hi, query.to);
  const open =
    `SELECT ${entryColumns} FROM ${openDecisionsTableName(table)} o JOIN ${table} e ON e.id = o.id ` + `WHERE ${whereClause(query, param)}`;
  return [fromRollup, ...edges, open].join(' UNION ALL ');
}

/** {@link summarySql}'s answer through the rollup, or undefined when the rollup cannot give it. */
export function rollupSummarySql(table: string, query: AuditQuery, param: (value: unknown) => string): string | undefined {
  const source = rollupSource(table, query, ['principal', 'permission', 'decision'], param);
  if (source === undefined) return undefined;
  return (
    `SELECT principal, permission, decision, SUM(n) AS count FROM (${source}) r GROUP BY principal, permission, decision ` +
    `HAVING SUM(n) > 0 ORDER BY count DESC, principal, permission, decision`
  );
}

/** {@link usageSummarySql}'s answer through the rollup, or undefined when the rollup cannot give it. */
export function rollupUsageSummarySql(
  table: string,
  groupBy: readonly SummaryGroup[],
  query: AuditQuery,
  param: (value: unknown) => string,
): string | undefined {
  const groups = groupBy.filter((g) => (SUMMARY_GROUPS as readonly string[]).includes(g));
  if (groups.length === 0) throw new TypeError('group by at least one of principal, namespace, model');
  const source = rollupSource(table, query, groups, param);
  if (source === undefined) return undefined;
  const sums = TOKEN_COLUMNS.map(([c]) => `COALESCE(SUM(${c}), 0) AS ${c}`).join(', ');
  const list = groups.join(', ');
  return (
    `SELECT ${list}, SUM(n) AS requests, ${sums} FROM (${source}) r GROUP BY ${list} HAVING SUM(n) > 0 ORDER BY ` +
    `total_tokens DESC, requests DESC, ${list}`
  );
}
