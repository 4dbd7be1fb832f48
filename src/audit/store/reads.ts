/**
 * The read side of an audit store — query, summaries, verify — written once
 * over a {@link Dialect}: a backend supplies how to run a statement, and
 * gets the same answers as every other backend.
 *
 * @module
 */
import type { Dialect } from './dialect.js';
import {
  decodeCursor,
  encodeCursor,
  openDecisionsTableName,
  parameters,
  parseRecord,
  queryConditions,
  recordsSql,
  rowToEntry,
  summarySql,
  toSummaryRow,
  toUsageSummaryRow,
  usageSummarySql,
} from './sql.js';
import { rollupSummarySql, rollupTableName, rollupUsageSummarySql } from './rollup.js';
import type { AuditStore, EntryPhase, RecordPage, StoredEntry } from './types.js';
import { verifyPaged, type EntryPager } from './verify.js';

export type StoreReads = Pick<AuditStore, 'query' | 'summary' | 'usageSummary' | 'verify'>;

export function storeReads(dialect: Dialect, table: string): StoreReads {
  const pager: EntryPager = async (after, limit, { from, to }) => {
    const { params, param } = parameters(dialect);
    const conditions: string[] = [];
    if (after !== undefined) {
      const w = param(after.writer);
      conditions.push(`(writer${dialect.byteOrder} > ${w} OR (writer = ${w} AND seq > ${param(after.seq)}))`);
    }
    if (from !== undefined) conditions.push(`written_ms >= ${param(from)}`);
    if (to !== undefined) conditions.push(`written_ms < ${param(to)}`);
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const rows = await dialect.all(
      `SELECT * FROM ${table} ${where} ORDER BY writer${dialect.byteOrder}, seq LIMIT ${param(limit)}`,
      params,
    );
    return rows.map(rowToEntry);
  };

  /**
   * Verify of a written-time range: each writer's first and last seq in the
   * range (from the written_chain index alone), then that stretch of each
   * chain in seq order through the (writer, seq) key — never the entries
   * before or after the range. Entries of the stretch written outside the
   * range (a clock set back) are left out here, not in SQL: with the time
   * conditions in the page's statement PostgreSQL reads the writer's whole
   * rest of the range through the written_chain index and sorts it for each
   * page, so a day's verify grew with the square of the writer's entries.
   */
  const rangedPager = (range: { from?: number; to?: number }): EntryPager => {
    let bounds: Array<{ writer: string; lo: number; hi: number }> | undefined;
    const inRange = (entry: StoredEntry) =>
      (range.from === undefined || entry.writtenMs >= range.from) && (range.to === undefined || entry.writtenMs < range.to);
    return async (after, limit) => {
      if (bounds === undefined) {
        const { params, param } = parameters(dialect);
        const where = [
          ...(range.from === undefined ? [] : [`written_ms >= ${param(range.from)}`]),
          ...(range.to === undefined ? [] : [`written_ms < ${param(range.to)}`]),
        ].join(' AND ');
        const rows = await dialect.all(
          `SELECT writer, MIN(seq) AS lo, MAX(seq) AS hi FROM ${table} WHERE ${where} GROUP BY writer ORDER BY writer${dialect.byteOrder}`,
          params,
        );
        bounds = rows.map((r) => ({ writer: String(r.writer), lo: Number(r.lo), hi: Number(r.hi) }));
      }
      const out: StoredEntry[] = [];
      let index = after === undefined ? 0 : bounds.findIndex((b) => b.writer === after.writer);
      let from = after?.seq;
      while (index >= 0 && index < bounds.length && out.length < limit) {
        const b = bounds[index] as { writer: string; lo: number; hi: number };
        const { params, param } = parameters(dialect);
        const seq = from === undefined ? `seq >= ${param(b.lo)}` : `seq > ${param(from)}`;
        const wanted = limit - out.length;
        const where = `writer = ${param(b.writer)} AND ${seq} AND seq <= ${param(b.hi)}`;
        const rows = await dialect.all(`SELECT * FROM ${table} WHERE ${where} ORDER BY seq LIMIT ${param(wanted)}`, params);
        for (const row of rows) {
          const entry = rowToEntry(row);
          if (inRange(entry)) out.push(entry);
          from = entry.seq;
        }
        // Fewer than asked for: this writer's stretch is done. Otherwise (all asked for read, some maybe left out) read on.
        if (rows.length < wanted) {
          index += 1;
          from = undefined;
        }
      }
      return out;
    };
  };

  /**
   * Whether the rollup exists: a reader that does not migrate (the CLI, read-only) may meet a store the proxy has not upgraded
   * yet, and then counts the entries. Created and filled in one transaction, so once it exists it is complete; only that is cached.
   */
  let rollupSeen = false;
  const hasRollup = async (): Promise<boolean> => {
    if (rollupSeen) return true;
    try {
      await dialect.all(`SELECT 1 FROM ${rollupTableName(table)} LIMIT 1`, []);
      rollupSeen = true;
    } catch {
      // No rollup table (yet).
    }
    return rollupSeen;
  };

  return {
    async query(query, limit, cursor): Promise<RecordPage> {
      const { where, params, param } = queryConditions(query, cursor === undefined ? undefined : decodeCursor(cursor), dialect);
      // The page's ids first, from the filter index alone (SQLite: the row id is in every index), then only their records:
      // sorting the matches by id must not carry every matching record along.
      const ids = `${recordsSql(table, 'e.id', where)} ORDER BY 1 DESC LIMIT ${param(limit + 1)}`;
      const sql = `SELECT e.id, e.phase, e.record FROM ${table} e WHERE e.id IN (${ids}) ORDER BY e.id DESC`;
      const rows = await dialect.all(sql, params);
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        records: page.map((r) => parseRecord(String(r.record), r.phase as EntryPhase)),
        nextCursor: rows.length > limit && last !== undefined ? encodeCursor(Number(last.id)) : undefined,
      };
    },
    // Summaries: through the hourly rollup when it can answer (rollup.ts), else from the entries; the same rows either way.
    async summary(query) {
      const rolled = parameters(dialect);
      const sql = (await hasRollup()) ? rollupSummarySql(table, query, rolled.param) : undefined;
      if (sql !== undefined) return (await dialect.all(sql, rolled.params)).map(toSummaryRow);
      const { where, params } = queryConditions(query, undefined, dialect);
      return (await dialect.all(summarySql(table, where), params)).map(toSummaryRow);
    },
    async usageSummary(query, groupBy) {
      const rolled = parameters(dialect);
      const sql = (await hasRollup()) ? rollupUsageSummarySql(table, groupBy, query, rolled.param) : undefined;
      if (sql !== undefined) return (await dialect.all(sql, rolled.params)).map((r) => toUsageSummaryRow(r, groupBy));
      const { where, params } = queryConditions(query, undefined, dialect);
      return (await dialect.all(usageSummarySql(table, groupBy, where), params)).map((r) => toUsageSummaryRow(r, groupBy));
    },
    verify(range = {}) {
      const ranged = range.from !== undefined || range.to !== undefined;
      return verifyPaged(ranged ? rangedPager(range) : pager, range, async () =>
        (await dialect.all(`SELECT id FROM ${openDecisionsTableName(table)}`, [])).map((r) => Number(r.id)),
      );
    },
  };
}
