/**
 * The schema, written once for every {@link SqlDialect}, and its migrations.
 * Each store runs {@link migrationPlan}'s statements in one transaction on
 * open, so a crash midway leaves the old schema, not half of each.
 *
 * Tables: the entries (append-only, never updated) and the open-decision
 * table (decision entries whose final entry is not written yet, keyed by
 * request id for the final entry's delete; the entry id makes a repeated
 * request id harmless). The open table is not part of the hash chain:
 * `verify` checks it against the chain.
 *
 * @module
 */
import type { SqlDialect } from './dialect.js';
import { rollupStatements } from './rollup.js';
import { openDecisionsTableName } from './sql.js';
import { TOKEN_COLUMNS } from './types.js';

/** Columns added after the first schemas (usage): created with new tables, added to old ones by {@link addedColumnStatements}. */
export const ADDED_COLUMNS: ReadonlyArray<readonly [string, 'TEXT' | 'big']> = [
  ['model', 'TEXT'],
  ...TOKEN_COLUMNS.map(([column]) => [column, 'big'] as const),
];

/** Column list of the entries table (types differ only in the id and integer widths). */
export function tableColumns(dialect: SqlDialect): string {
  const big = dialect.bigint;
  return `${dialect.idColumn},
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

/** ALTER TABLE statements for the added columns a table lacks (`existing`: its column names). */
export function addedColumnStatements(table: string, dialect: SqlDialect, existing: ReadonlySet<string>): string[] {
  return ADDED_COLUMNS.filter(([name]) => !existing.has(name)).map(
    ([name, type]) => `ALTER TABLE ${table} ADD COLUMN ${name} ${type === 'big' ? dialect.bigint : type}`,
  );
}

/**
 * Filter indexes, final entries only; each with time for range scans. The
 * time index also covers the summary's columns, so a week's summary reads
 * the index alone, not millions of rows.
 */
export const FINAL_INDEXES = [
  ['f_summary', 'time_ms, principal, permission, decision'],
  ['f_principal', 'principal, time_ms'],
  ['f_namespace', 'namespace, time_ms'],
  ['f_permission', 'permission, time_ms'],
  ['f_resource', 'resource, time_ms'],
  ['f_rule', 'rule_id, time_ms'],
] as const;

/**
 * The schema, idempotent: entries, the open-decision table, the partial
 * filter indexes, and the retention index.
 */
export function schemaStatements(table: string, dialect: SqlDialect): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${table} (${tableColumns(dialect)})`,
    `CREATE TABLE IF NOT EXISTS ${openDecisionsTableName(table)} (request_id TEXT NOT NULL, id ${dialect.bigint} NOT NULL, PRIMARY KEY ` +
      `(request_id, id))${dialect.keyedTableSuffix}`,
    ...FINAL_INDEXES.map(([name, columns]) => `CREATE INDEX IF NOT EXISTS ${table}_${name} ON ${table} (${columns}) WHERE phase = 'final'`),
    // Retention's range, and verify's of a time range: each writer's first and last seq in it, from the index alone.
    `CREATE INDEX IF NOT EXISTS ${table}_written_chain ON ${table} (written_ms, writer, seq)`,
  ];
}

/** Indexes of earlier schemas that the current ones replace (f_time by f_summary, written by written_chain). */
export const RETIRED_INDEXES = ['f_time', 'written'] as const;

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
    `INSERT INTO ${openDecisionsTableName(table)} (request_id, id) SELECT e.request_id, e.id FROM ${table} e WHERE e.phase = 'decision' ` +
      `AND NOT EXISTS (SELECT 1 FROM ${table} f WHERE f.request_id = e.request_id AND f.phase = 'final')`,
    ...['time', 'principal', 'namespace', 'permission', 'resource', 'rule', 'request'].map(
      (name) => `DROP INDEX IF EXISTS ${table}_${name}`,
    ),
  ];
}

/** What the store found on open: whether the first schema's marker index exists, and the entries table's columns (empty: no table yet). */
export interface SchemaState {
  readonly legacy: boolean;
  readonly columns: ReadonlySet<string>;
  /** Whether the hourly rollup table exists (`rollup.ts`); without it, the migration creates it and fills it from the entries. */
  readonly rollup: boolean;
}

/** Every statement that brings a store from `state` to the current schema, in order (one transaction). */
export function migrationPlan(table: string, dialect: SqlDialect, state: SchemaState): string[] {
  const created = schemaStatements(table, dialect);
  // A new table is created with every column; an old one gets what it lacks.
  const added = state.columns.size === 0 ? [] : addedColumnStatements(table, dialect, state.columns);
  const retired = RETIRED_INDEXES.map((name) => `DROP INDEX IF EXISTS ${table}_${name}`);
  const rollup = state.rollup ? [] : rollupStatements(table, dialect, state.columns.size > 0);
  return [...created, ...added, ...(state.legacy ? legacyMigrationStatements(table) : []), ...retired, ...rollup];
}

/** After retention deleted entries: open rows whose decision entry is gone. */
export function pruneOpenStatement(table: string): string {
  const open = openDecisionsTableName(table);
  return `DELETE FROM ${open} WHERE NOT EXISTS (SELECT 1 FROM ${table} e WHERE e.id = ${open}.id)`;
}
