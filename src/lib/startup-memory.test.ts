import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { releaseStartupMemory, releaseStartupMemoryWhenReady, type ReleasedMemory } from './startup-memory.js';

describe('releaseStartupMemory', () => {
  it('runs a collection and leaves no gc function behind on this or new contexts', () => {
    const hadGlobalGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
    const released = releaseStartupMemory();
    expect(released).toBeDefined();
    expect(released?.rssBefore).toBeGreaterThan(0);
    expect(released?.rssAfter).toBeGreaterThan(0);
    expect(released?.ms).toBeGreaterThanOrEqual(0);
    expect(typeof (globalThis as { gc?: unknown }).gc === 'function').toBe(hadGlobalGc);
    // The flag is off again: a context created now has no gc.
    if (!hadGlobalGc) expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});

describe('releaseStartupMemoryWhenReady', () => {
  it('waits for readiness, then releases once', async () => {
    let ready = false;
    let checks = 0;
    const calls: Array<ReleasedMemory | undefined> = [];
    const done = new Promise<void>((resolve) => {
      releaseStartupMemoryWhenReady({
        pollMs: 2,
        ready: () => {
          checks++;
          return ready;
        },
        onReleased: (released) => {
          calls.push(released);
          resolve();
        },
      });
    });
    while (checks < 3) await new Promise((r) => setTimeout(r, 2));
    expect(calls).toHaveLength(0);
    ready = true;
    await done;
    const checksAfter = checks;
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toHaveLength(1);
    // Stopped looking once released.
    expect(checks).toBe(checksAfter);
  });

  it('stops without releasing when stopped first', async () => {
    let checks = 0;
    let released = false;
    const stop = releaseStartupMemoryWhenReady({
      pollMs: 2,
      ready: () => {
        checks++;
        return false;
      },
      onReleased: () => {
        released = true;
      },
    });
    while (checks < 2) await new Promise((r) => setTimeout(r, 2));
    stop();
    const checksAtStop = checks;
    await new Promise((r) => setTimeout(r, 20));
    expect(checks).toBe(checksAtStop);
    expect(released).toBe(false);
  });
});
