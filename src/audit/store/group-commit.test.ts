import { describe, expect, it } from 'vitest';
import { record } from '../../../test/helpers/audit-store-conformance.js';
import { GENESIS_HASH, entryProblem } from './chain.js';
import { GroupCommitter } from './group-commit.js';
import type { ChainedEntry } from './types.js';

describe('GroupCommitter', () => {
  it('shares one write among everything submitted meanwhile, and a failed write leaves no hole in the chain', async () => {
    const stored: ChainedEntry[] = [];
    const writes: number[] = [];
    let failNext = false;
    const committer = new GroupCommitter({
      writer: 'w',
      maxBatch: 100,
      // The head as stored: after a failure the committer reads it again.
      loadHead: () => {
        const last = stored[stored.length - 1];
        return Promise.resolve(last === undefined ? undefined : { seq: last.seq, hash: last.hash });
      },
      write: async (entries) => {
        writes.push(entries.length);
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (failNext) {
          failNext = false;
          throw new Error('disk full');
        }
        stored.push(...entries);
      },
    });
    // 250 appends in one turn: one write of 100 starts, the rest wait for it and go in the next ones.
    await Promise.all(Array.from({ length: 250 }, (_, i) => committer.submit([{ phase: 'final', record: record(i) }])));
    expect(writes).toEqual([100, 100, 50]);

    failNext = true;
    await expect(committer.submit([{ phase: 'final', record: record(300) }])).rejects.toThrow('disk full');
    await committer.submit([{ phase: 'final', record: record(301) }]);
    await committer.idle();
    expect(stored.map((e) => e.seq)).toEqual(Array.from({ length: 251 }, (_, i) => i + 1));
    expect(stored[0]?.prevHash).toBe(GENESIS_HASH);
    stored.forEach((entry, i) => {
      expect(entryProblem({ ...entry, id: i + 1 }, i === 0 ? undefined : { ...(stored[i - 1] as ChainedEntry), id: i })).toBeUndefined();
    });
    expect(JSON.parse(stored[250]?.recordJson ?? '{}')).toMatchObject({ requestId: 'req-301' });
  });
});
