import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConcurrencyLimit, LimitExceeded } from './concurrency-limit.js';

/** A task that finishes when told to. */
function gate<T>(value: T) {
  let open!: () => void;
  const done = new Promise<T>((resolve) => {
    open = () => resolve(value);
  });
  return { task: () => done, open };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
});

describe('ConcurrencyLimit', () => {
  it('runs at most `limit` tasks at once and starts the waiting ones first come, first served', async () => {
    const limit = new ConcurrencyLimit({ limit: 2, maxWaiting: 10, maxWaitMs: 60_000 });
    const gates = [gate('a'), gate('b'), gate('c'), gate('d')];
    const started: string[] = [];
    const results = gates.map((g, i) =>
      limit.run(() => {
        started.push('abcd'[i] as string);
        return g.task();
      }),
    );
    await tick();
    expect(started).toEqual(['a', 'b']);
    expect([limit.active, limit.waiting]).toEqual([2, 2]);
    gates[1]?.open();
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    gates[0]?.open();
    gates[2]?.open();
    await tick();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    gates[3]?.open();
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c', 'd']);
    expect([limit.active, limit.waiting]).toEqual([0, 0]);
  });

  it('frees the slot when a task fails', async () => {
    const limit = new ConcurrencyLimit({ limit: 1, maxWaiting: 10, maxWaitMs: 60_000 });
    await expect(limit.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await limit.run(() => Promise.resolve(7))).toBe(7);
    expect(limit.active).toBe(0);
  });

  it('refuses at once when the waiting line is full, without running the task', async () => {
    const limit = new ConcurrencyLimit({ limit: 1, maxWaiting: 1, maxWaitMs: 60_000 });
    const first = gate(1);
    const running = limit.run(first.task);
    const waiting = limit.run(() => Promise.resolve(2));
    const task = vi.fn(() => Promise.resolve(3));
    await expect(limit.run(task)).rejects.toEqual(new LimitExceeded('queue-full'));
    expect(task).not.toHaveBeenCalled();
    first.open();
    expect([await running, await waiting]).toEqual([1, 2]);
  });

  it('gives up on a wait longer than maxWaitMs, and the task it gave up on never runs', async () => {
    vi.useFakeTimers();
    const limit = new ConcurrencyLimit({ limit: 1, maxWaiting: 10, maxWaitMs: 1000 });
    const first = gate(1);
    const running = limit.run(first.task);
    const task = vi.fn(() => Promise.resolve(2));
    const waiting = limit.run(task);
    const outcome = expect(waiting).rejects.toEqual(new LimitExceeded('wait-timeout'));
    await vi.advanceTimersByTimeAsync(999);
    expect(limit.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await outcome;
    expect(limit.waiting).toBe(0);
    first.open();
    expect(await running).toBe(1);
    expect(task).not.toHaveBeenCalled();
    expect(limit.active).toBe(0);
  });
});
