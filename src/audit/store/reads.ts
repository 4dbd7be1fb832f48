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
  writersSql,
} from './sql.js';
import { rollupSummarySql, rollupTableName, rollupUsageSummarySql } from './rollup.js';
import type { AuditStore, EntryPhase, RecordPage, StoredEntry } from './types.js';
import { verifyPaged, type EntryPager } from './verify.js';

export type StoreReads = Pick<AuditStore, 'query' | 'summary' | 'usageSummary' | 'verify'>;

export function storeReads(dialect: Dialect, table: string): StoreReads {
  /**
   * verify's pages: one writer's chain after the other, each in seq order
   * through the (writer, seq) key, a page never more than that key's range
   * scan. Of a written-time range: each writer's first and last seq in the
   * range (from the written_chain index alone), then that stretch of its
   * chain — never the entries before or after the range. An entry inside the
   * stretch whose write time falls outside the range (the writer's clock was
   * set back) is read and checked too: it is a link between two entries of
   * the range, and leaving it out would look like an entry removed from the
   * chain. Of the whole store: the writers (one index look-up each),
   * then each whole chain. A single keyset over (writer, seq) with the
   * time conditions, or ordered by writer in byte order, is what PostgreSQL
   * answers by reading and sorting everything after the key for every page.
   */
  const chainPager = (range: { from?: number; to?: number }): EntryPager => {
    const ranged = range.from !== undefined || range.to !== undefined;
    let stretches: Array<{ writer: string; lo?: number; hi?: number }> | undefined;
    const findStretches = async () => {
      const { params, param } = parameters(dialect);
      if (!ranged) {
        const writers = await dialect.all(writersSql(table, dialect.byteOrder), []);
        return writers.map((r) => ({ writer: String(r.writer) }));
      }
      const where = [
        ...(range.from === undefined ? [] : [`written_ms >= ${param(range.from)}`]),
        ...(range.to === undefined ? [] : [`written_ms < ${param(range.to)}`]),
      ].join(' AND ');
      const rows = await dialect.all(
        `SELECT writer, MIN(seq) AS lo, MAX(seq) AS hi FROM ${table} WHERE ${where} GROUP BY writer ORDER BY writer${dialect.byteOrder}`,
        params,
      );
      return rows.map((r) => ({ writer: String(r.writer), lo: Number(r.lo), hi: Number(r.hi) }));
    };
    return async (after, limit) => {
      stretches ??= await findStretches();
      const out: StoredEntry[] = [];
      let index = after === undefined ? 0 : stretches.findIndex((b) => b.writer === after.writer);
      let from = after?.seq;
      while (index >= 0 && index < stretches.length && out.length < limit) {
        const b = stretches[index] as { writer: string; lo?: number; hi?: number };
        const { params, param } = parameters(dialect);
        const conditions = [`writer = ${param(b.writer)}`];
        if (from !== undefined) conditions.push(`seq > ${param(from)}`);
        else if (b.lo !== undefined) conditions.push(`seq >= ${param(b.lo)}`);
        if (b.hi !== undefined) conditions.push(`seq <= ${param(b.hi)}`);
        const wanted = limit - out.length;
        const where = conditions.join(' AND ');
        const rows = await dialect.all(`SELECT * FROM ${table} WHERE ${where} ORDER BY seq LIMIT ${param(wanted)}`, params);
        for (const row of rows) {
          const entry = rowToEntry(row);
          out.push(entry);
          from = entry.seq;
        }
        // Fewer than asked for: this writer's stretch is done. Otherwise the page is full.
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
      return verifyPaged(chainPager(range), range, async () =>
        (await dialect.all(`SELECT id FROM ${openDecisionsTableName(table)}`, [])).map((r) => Number(r.id)),
      );
    },
  };
}
