import { describe, expect, it } from 'vitest';
import { deleteOldestRuns, oldestRunEnd, type RetentionSteps } from './retention.js';

/** A store of chains as retention sees them: per writer, its entries' seq and write time, in seq order. */
function fakeStore(chains: Record<string, Array<[seq: number, writtenMs: number]>>): RetentionSteps & {
  statements: Array<[string, number]>;
  left(): Record<string, number[]>;
} {
  const statements: Array<[string, number]> = [];
  return {
    statements,
    writers: () => Promise.resolve(Object.keys(chains).filter((w) => (chains[w] ?? []).length > 0)),
    oldest: (writer, limit) => Promise.resolve((chains[writer] ?? []).slice(0, limit).map(([seq, writtenMs]) => ({ seq, writtenMs }))),
    deleteThrough(writer, seq) {
      statements.push([writer, seq]);
      const chain = chains[writer] ?? [];
      const kept = chain.filter(([s]) => s > seq);
      chains[writer] = kept;
      return Promise.resolve(chain.length - kept.length);
    },
    left: () => Object.fromEntries(Object.entries(chains).map(([w, c]) => [w, c.map(([s]) => s)])),
  };
}

describe('oldestRunEnd', () => {
  const rows = (...times: number[]) => times.map((writtenMs, i) => ({ seq: i + 10, writtenMs }));

  it('ends the run at the first entry written at or after the cutoff', () => {
    expect(oldestRunEnd(rows(1, 2, 5, 3), 5, 10)).toEqual({ through: 11, more: false });
  });

  it('has no run when the oldest entry is not before the cutoff, whatever follows it', () => {
    expect(oldestRunEnd(rows(7, 1, 1), 5, 10)).toEqual({ through: undefined, more: false });
    expect(oldestRunEnd([], 5, 10)).toEqual({ through: undefined, more: false });
  });

  it('may go on past a full page that is all before the cutoff, not past a short one', () => {
    expect(oldestRunEnd(rows(1, 2, 3), 5, 3)).toEqual({ through: 12, more: true });
    expect(oldestRunEnd(rows(1, 2, 3), 5, 4)).toEqual({ through: 12, more: false });
  });
});

describe('deleteOldestRuns', () => {
  it("deletes each writer's oldest run across statements of `batch` entries and keeps every chain contiguous", async () => {
    const store = fakeStore({
      a: [
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 9],
        [5, 1],
        [6, 9],
      ],
      b: [
        [7, 1],
        [8, 9],
      ],
      c: [[1, 9]],
    });
    expect(await deleteOldestRuns(store, 5, 2)).toBe(4);
    // a: seq 1-2, then 3 (the page [3, 4] ends the run); b: seq 7; c: nothing.
    expect(store.statements).toEqual([
      ['a', 2],
      ['a', 3],
      ['b', 7],
    ]);
    expect(store.left()).toEqual({ a: [4, 5, 6], b: [8], c: [1] });
  });

  it('deletes a whole chain written before the cutoff, and nothing of an empty store', async () => {
    const store = fakeStore({
      a: [
        [1, 1],
        [2, 2],
      ],
    });
    expect(await deleteOldestRuns(store, 5, 2)).toBe(2);
    expect(store.left()).toEqual({ a: [] });
    expect(await deleteOldestRuns(fakeStore({}), 5, 2)).toBe(0);
  });

  it('rejects with the failure of a step (the next sweep starts again from the oldest entries)', async () => {
    const store = fakeStore({ a: [[1, 1]] });
    store.deleteThrough = () => Promise.reject(new Error('disk full'));
    await expect(deleteOldestRuns(store, 5, 2)).rejects.toThrow('disk full');
  });
});
