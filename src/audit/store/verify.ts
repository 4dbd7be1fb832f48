/**
 * `verify`: walks every writer's hash chain page by page, recomputing each
 * entry's hash from its content and checking its link to the one before,
 * and stops at the first broken link. Storage-independent: a store supplies
 * an {@link EntryPager}.
 *
 * @module
 */
import { entryProblem } from './chain.js';
import type { StoredEntry, VerifyResult } from './types.js';

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
  let next = page(undefined, PAGE, range);
  for (;;) {
    const rows = await next;
    // The next page is read while this one is hashed (PostgreSQL: the server works while this process does).
    const full = rows.length === PAGE;
    if (full) {
      const last = rows[rows.length - 1] as StoredEntry;
      next = page({ writer: last.writer, seq: last.seq }, PAGE, range);
      // Not awaited when a broken link ends the walk early; its failure then matters to no one.
      next.catch(() => undefined);
    }
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
    if (!full) return (open === undefined ? undefined : unlisted()) ?? { ok: true, writers, entries };
  }
}
