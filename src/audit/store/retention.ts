/**
 * Retention: which entries a sweep deletes. Each writer's chain loses
 * entries from its oldest end only: its oldest run of entries written before
 * the cutoff, up to (not including) its first entry written at or after it.
 * The chain that remains is a contiguous stretch, whose first entry is its
 * anchor (chain.ts), so `verify` still accepts it.
 *
 * Deleting by write time alone would not keep that promise when a writer's
 * clock was set back: an entry stamped before the cutoff between two younger
 * ones would go, and every later whole-store `verify` would report the hole
 * as entries removed, a tamper alarm no one could clear. Here such an entry
 * stays until the entries before it expire, and no entry written after the
 * cutoff is ever deleted.
 *
 * In: the storage's three steps (below). Out: how many entries went.
 * Storage-independent; the steps' failures reject the sweep (the next one
 * starts again from each chain's oldest entry).
 *
 * @module
 */
import type { Dialect, SqlDialect } from './dialect.js';
import { writersSql } from './sql.js';

/** What retention needs of a store. */
export interface RetentionSteps {
  /** The writers that have entries. */
  writers(): Promise<string[]>;
  /** A writer's oldest `limit` entries, in seq order. */
  oldest(writer: string, limit: number): Promise<ReadonlyArray<{ readonly seq: number; readonly writtenMs: number }>>;
  /** Deletes a writer's entries with seq ≤ `seq` (one statement); returns how many went. */
  deleteThrough(writer: string, seq: number): Promise<number>;
}

/**
 * The seq that ends the run of entries written before `beforeMs` at the start
 * of `oldest` (undefined: its first entry is not), and whether that run may go
 * on past them (all of them were before the cutoff, and there were `limit`).
 */
export function oldestRunEnd(
  oldest: ReadonlyArray<{ readonly seq: number; readonly writtenMs: number }>,
  beforeMs: number,
  limit: number,
): { readonly through: number | undefined; readonly more: boolean } {
  let through: number | undefined;
  let i = 0;
  for (; i < oldest.length; i++) {
    const entry = oldest[i] as { seq: number; writtenMs: number };
    if (entry.writtenMs >= beforeMs) break;
    through = entry.seq;
  }
  return { through, more: i === oldest.length && oldest.length === limit };
}

/** Deletes each writer's oldest run of entries written before `beforeMs`, at most `batch` per statement. */
export async function deleteOldestRuns(steps: RetentionSteps, beforeMs: number, batch: number): Promise<number> {
  let total = 0;
  for (const writer of await steps.writers()) {
    for (;;) {
      const { through, more } = oldestRunEnd(await steps.oldest(writer, batch), beforeMs, batch);
      if (through === undefined) break;
      total += await steps.deleteThrough(writer, through);
      if (!more) break;
    }
  }
  return total;
}

/** The reading steps, on a store's read connection. */
export function retentionReads(dialect: Dialect, table: string): Pick<RetentionSteps, 'writers' | 'oldest'> {
  return {
    writers: async () => (await dialect.all(writersSql(table, ''), [])).map((row) => String(row.writer)),
    oldest: async (writer, limit) =>
      (
        await dialect.all(
          `SELECT seq, written_ms FROM ${table} WHERE writer = ${dialect.placeholder(1)} ORDER BY seq LIMIT ${dialect.placeholder(2)}`,
          [writer, limit],
        )
      ).map((row) => ({ seq: Number(row.seq), writtenMs: Number(row.written_ms) })),
  };
}

/** {@link RetentionSteps.deleteThrough}'s statement: a writer's entries up to a seq, through the (writer, seq) key. */
export function deleteThroughSql(table: string, dialect: SqlDialect): string {
  return `DELETE FROM ${table} WHERE writer = ${dialect.placeholder(1)} AND seq <= ${dialect.placeholder(2)}`;
}
