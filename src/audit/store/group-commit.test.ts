import { afterEach, describe, expect, it, vi } from 'vitest';
import { record } from '../../../test/helpers/audit-store-conformance.js';
import { GENESIS_HASH, entryProblem } from './chain.js';
import { GroupCommitter } from './group-commit.js';
import type { ChainedEntry } from './types.js';

/** Every stored entry links to the one before it, from the genesis hash: no gap, no reordering. */
function expectWholeChain(stored: readonly ChainedEntry[]): void {
  expect(stored.map((e) => e.seq)).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
  if (stored.length > 0) expect(stored[0]?.prevHash).toBe(GENESIS_HASH);
  stored.forEach((entry, i) => {
    expect(entryProblem({ ...entry, id: i + 1 }, i === 0 ? undefined : { ...(stored[i - 1] as ChainedEntry), id: i })).toBeUndefined();
  });
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A store whose batches the test commits or fails by hand, and which keeps the pipelining contract: a batch becomes
 * durable only after the batch before it did, and never when that one failed.
 */
function manualStore() {
  const stored: ChainedEntry[] = [];
  const batches: Array<{ entries: ChainedEntry[]; commit: () => void; fail: (error: Error) => void }> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const headReads: number[] = [];
  return {
    stored,
    batches,
    headReads,
    maxInFlight: () => maxInFlight,
    loadHead: () => {
      headReads.push(inFlight);
      const last = stored[stored.length - 1];
      return Promise.resolve(last === undefined ? undefined : { seq: last.seq, hash: last.hash });
    },
    write: (entries: ChainedEntry[], previous: Promise<void> | undefined) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let decide!: (error: Error | undefined) => void;
      const own = new Promise<Error | undefined>((resolve) => (decide = resolve));
      batches.push({ entries, commit: () => decide(undefined), fail: (error) => decide(error) });
      return (async () => {
        try {
          const error = await own;
          if (error !== undefined) throw error;
          // The commit waits for the previous batch's; a failed previous batch rolls this one back.
          await previous;
          stored.push(...entries);
        } finally {
          inFlight -= 1;
        }
      })();
    },
  };
}

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
    expectWholeChain(stored);
    expect(stored).toHaveLength(251);
    expect(JSON.parse(stored[250]?.recordJson ?? '{}')).toMatchObject({ requestId: 'req-301' });
  });

  it('pipelined: starts the next batch while the previous one is in flight, at most maxInFlight, chained in submit order', async () => {
    const store = manualStore();
    const committer = new GroupCommitter({ writer: 'w', maxBatch: 100, maxInFlight: 2, loadHead: store.loadHead, write: store.write });
    const done: Array<Promise<void>> = [];
    // Three turns: the first two each start a batch at once, the third waits for room.
    for (let turn = 0; turn < 3; turn++) {
      done.push(committer.submit([{ phase: 'final', record: record(turn) }]));
      await nextTurn();
    }
    expect(store.batches).toHaveLength(2);
    // The second batch's chain continues the first's although the first has not committed.
    expect(store.batches[1]?.entries[0]?.prevHash).toBe(store.batches[0]?.entries[0]?.hash);
    store.batches[1]?.commit();
    await nextTurn();
    // Committed in order: the second waits for the first.
    expect(store.stored).toEqual([]);
    store.batches[0]?.commit();
    await Promise.all(done.slice(0, 2));
    await nextTurn();
    expect(store.batches).toHaveLength(3);
    store.batches[2]?.commit();
    await Promise.all(done);
    await committer.idle();
    expect(store.maxInFlight()).toBe(2);
    expect(store.stored.map((e) => (JSON.parse(e.recordJson) as { requestId: string }).requestId)).toEqual(['req-0', 'req-1', 'req-2']);
    expectWholeChain(store.stored);
  });

  it('pipelined: behind a batch in flight, the next one starts only once as many entries wait as that batch holds', async () => {
    const store = manualStore();
    const committer = new GroupCommitter({ writer: 'w', maxBatch: 100, maxInFlight: 2, loadHead: store.loadHead, write: store.write });
    const submit = (i: number) => committer.submit([{ phase: 'final', record: record(i) }]);
    const done = [submit(0), submit(1), submit(2)];
    await nextTurn();
    expect(store.batches.map((b) => b.entries.length)).toEqual([3]);
    done.push(submit(3), submit(4));
    await nextTurn();
    // Two waiting behind three in flight: they wait for more, or for the batch in flight.
    expect(store.batches).toHaveLength(1);
    done.push(submit(5));
    await nextTurn();
    expect(store.batches.map((b) => b.entries.length)).toEqual([3, 3]);
    store.batches[0]?.commit();
    store.batches[1]?.commit();
    await Promise.all(done);
    expectWholeChain(store.stored);
  });

  it.each([
    { failing: 0, label: 'the first' },
    { failing: 1, label: 'a middle' },
  ])(
    'pipelined: when $label batch in flight fails, it and every later batch in flight fail, nothing acknowledged is missing, ' +
      'and what was queued is chained onto the stored head once nothing is in flight',
    async ({ failing }) => {
      const store = manualStore();
      const committer = new GroupCommitter({ writer: 'w', maxBatch: 100, maxInFlight: 3, loadHead: store.loadHead, write: store.write });
      const outcomes = new Map<string, 'acked' | 'failed'>();
      const submit = (i: number) => {
        void committer.submit([{ phase: 'final', record: record(i) }]).then(
          () => outcomes.set(`req-${i}`, 'acked'),
          () => outcomes.set(`req-${i}`, 'failed'),
        );
      };
      // Three batches in flight, and one more queued behind them.
      for (let i = 0; i < 4; i++) {
        submit(i);
        await nextTurn();
      }
      expect(store.batches).toHaveLength(3);
      store.batches.forEach((batch, i) => (i === failing ? batch.fail(new Error('connection lost')) : batch.commit()));
      await nextTurn();
      await nextTurn();
      // The queued record went in a fresh batch, chained onto what the store holds, read once nothing was in flight.
      expect(store.batches).toHaveLength(4);
      expect(store.headReads).toEqual([0, 0]);
      store.batches[3]?.commit();
      await committer.idle();

      const expected = Array.from({ length: 3 }, (_, i) => (i < failing ? 'acked' : 'failed'));
      expect([0, 1, 2].map((i) => outcomes.get(`req-${i}`))).toEqual(expected);
      expect(outcomes.get('req-3')).toBe('acked');
      const stored = store.stored.map((e) => (JSON.parse(e.recordJson) as { requestId: string }).requestId);
      // Acknowledged ⇔ stored: nothing acknowledged is lost, nothing failed was kept.
      expect(stored).toEqual([...outcomes].filter(([, o]) => o === 'acked').map(([id]) => id));
      expectWholeChain(store.stored);
    },
  );

  it('pipelined: a batch that fails while the one before it is still in flight waits for that one before the head is read', async () => {
    const store = manualStore();
    const committer = new GroupCommitter({ writer: 'w', maxBatch: 100, maxInFlight: 2, loadHead: store.loadHead, write: store.write });
    const first = committer.submit([{ phase: 'final', record: record(0) }]);
    await nextTurn();
    const second = committer.submit([{ phase: 'final', record: record(1) }]);
    await nextTurn();
    const third = committer.submit([{ phase: 'final', record: record(2) }]);
    await nextTurn();
    // The second fails on its own (its insert was refused) while the first is still in flight.
    store.batches[1]?.fail(new Error('insert refused'));
    await expect(second).rejects.toThrow('insert refused');
    await nextTurn();
    // Not yet: the first may still commit and move the head.
    expect(store.batches).toHaveLength(2);
    store.batches[0]?.commit();
    await first;
    await nextTurn();
    expect(store.batches).toHaveLength(3);
    store.batches[2]?.commit();
    await third;
    expect(store.headReads).toEqual([0, 0]);
    expectWholeChain(store.stored);
    expect(store.stored).toHaveLength(2);
  });

  describe('commit delay', () => {
    // Only the delay's timer is faked: microtasks and setImmediate (nextTurn) run as they do in production.
    const withDelay = (maxBatch: number, delayMs: number) => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const store = manualStore();
      return { store, committer: new GroupCommitter({ writer: 'w', maxBatch, delayMs, loadHead: store.loadHead, write: store.write }) };
    };
    afterEach(() => {
      vi.useRealTimers();
    });
    const final = (n: number) => ({ phase: 'final' as const, record: record(n) });
    const decision = (n: number) => ({ phase: 'decision' as const, record: record(n) });
    const requestIds = (entries: readonly ChainedEntry[] | undefined) =>
      (entries ?? []).map((e) => (JSON.parse(e.recordJson) as { requestId: string }).requestId);

    it('entries no caller waits on wait for the delay and then share one batch', async () => {
      const { store, committer } = withDelay(100, 10);
      const done = [0, 1, 2].map((n) => committer.submit([final(n)]));
      await nextTurn();
      await nextTurn();
      expect(store.batches).toHaveLength(0);
      vi.advanceTimersByTime(9);
      await nextTurn();
      expect(store.batches).toHaveLength(0);
      vi.advanceTimersByTime(1);
      await nextTurn();
      expect(store.batches.map((b) => requestIds(b.entries))).toEqual([['req-0', 'req-1', 'req-2']]);
      store.batches[0]?.commit();
      await Promise.all(done);
      expectWholeChain(store.stored);
    });

    it('a decision starts a batch at once and takes the waiting entries along; no timer is left behind', async () => {
      const { store, committer } = withDelay(100, 1000);
      const waiting = [committer.submit([final(0)]), committer.submit([final(1)])];
      await nextTurn();
      expect(store.batches).toHaveLength(0);
      const decided = committer.submit([decision(2)]);
      await nextTurn();
      expect(store.batches.map((b) => requestIds(b.entries))).toEqual([['req-0', 'req-1', 'req-2']]);
      expect(vi.getTimerCount()).toBe(0);
      store.batches[0]?.commit();
      await Promise.all([...waiting, decided]);
      expectWholeChain(store.stored);
    });

    it('a full batch starts without waiting', async () => {
      const { store, committer } = withDelay(3, 1000);
      const done = committer.submit([final(0), final(1), final(2), final(3)]);
      await nextTurn();
      // Three go at once; the fourth waits for company (or the delay).
      expect(store.batches.map((b) => requestIds(b.entries))).toEqual([['req-0', 'req-1', 'req-2']]);
      store.batches[0]?.commit();
      await nextTurn();
      expect(store.batches).toHaveLength(1);
      vi.advanceTimersByTime(1000);
      await nextTurn();
      expect(store.batches.map((b) => requestIds(b.entries))).toEqual([['req-0', 'req-1', 'req-2'], ['req-3']]);
      store.batches[1]?.commit();
      await done;
      expectWholeChain(store.stored);
    });

    it('entries that arrive while a batch is in flight wait out their delay from arrival, not from that commit', async () => {
      const { store, committer } = withDelay(100, 10);
      const first = committer.submit([decision(0)]);
      await nextTurn();
      expect(store.batches).toHaveLength(1);
      const later = committer.submit([final(1)]);
      vi.advanceTimersByTime(10);
      await nextTurn();
      // The delay is over but the store takes one batch at a time: the next starts when the first has committed.
      expect(store.batches).toHaveLength(1);
      store.batches[0]?.commit();
      await first;
      await nextTurn();
      expect(store.batches.map((b) => requestIds(b.entries))).toEqual([['req-0'], ['req-1']]);
      store.batches[1]?.commit();
      await later;
      expectWholeChain(store.stored);
    });

    it('idle() does not wait out the delay (closing a store writes what is queued at once)', async () => {
      const { store, committer } = withDelay(100, 60_000);
      const done = committer.submit([final(0)]);
      const idle = committer.idle();
      await nextTurn();
      expect(store.batches).toHaveLength(1);
      store.batches[0]?.commit();
      await Promise.all([done, idle]);
      expect(vi.getTimerCount()).toBe(0);
      expect(store.stored).toHaveLength(1);
    });
  });
});
