/**
 * What differs between the SQL backends, and nothing else: how a bound
 * parameter is written, the integer and id column types, byte-order
 * collation, and how a read runs. Everything built on a `Dialect` (schema,
 * queries, summaries, verify) is written once, in `sql.ts`, `schema.ts` and
 * `reads.ts`.
 *
 * @module
 */

export interface Dialect {
  readonly kind: 'sqlite' | 'postgres';
  /** The n-th (1-based) bound parameter: `?1` (SQLite) or `$1` (PostgreSQL). Numbered, because a query uses its conditions twice. */
  placeholder(n: number): string;
  /** An integer column wide enough for epoch milliseconds and sequence numbers. */
  readonly bigint: 'INTEGER' | 'BIGINT';
  /** The row id column's definition. */
  readonly idColumn: string;
  /** Appended to CREATE TABLE of the small keyed tables (SQLite: no separate rowid b-tree). */
  readonly keyedTableSuffix: string;
  /** Compares writer ids byte by byte, as the verify pager's keyset needs (PostgreSQL's default collation is locale-aware). */
  readonly byteOrder: string;
  /** Runs one read-only statement with bound parameters; numbers may come back as strings (PostgreSQL BIGINT). */
  all(sql: string, params: readonly unknown[]): Promise<Array<Record<string, unknown>>>;
}

/** The static parts of SQLite's dialect; the store adds `all`. */
export const SQLITE_SQL = {
  kind: 'sqlite',
  placeholder: (n: number) => `?${n}`,
  bigint: 'INTEGER',
  idColumn: 'id INTEGER PRIMARY KEY',
  keyedTableSuffix: ' WITHOUT ROWID',
  byteOrder: '',
} as const satisfies Omit<Dialect, 'all'>;

/** The static parts of PostgreSQL's dialect; the store adds `all`. */
export const POSTGRES_SQL = {
  kind: 'postgres',
  placeholder: (n: number) => `$${n}`,
  bigint: 'BIGINT',
  idColumn: 'id BIGSERIAL PRIMARY KEY',
  keyedTableSuffix: '',
  byteOrder: ' COLLATE "C"',
} as const satisfies Omit<Dialect, 'all'>;

export type SqlDialect = Omit<Dialect, 'all'>;
