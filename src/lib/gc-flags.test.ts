import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { GcFlag } from './gc-flags.js';

const MODULE = new URL('./gc-flags.ts', import.meta.url).pathname;

/** What the function set, and how many full collections the workload caused. */
interface Outcome {
  readonly set: Partial<Record<GcFlag, boolean>>;
  readonly majors: number;
}

/**
 * In a child process (the flags are process-wide, and a flag given to node is passed as `nodeArgs` so it is in
 * execArgv): calls the function, runs `workload`, and counts V8's full (major) collections during it.
 */
function majorCollections(workload: string, nodeArgs: readonly string[] = []): Outcome {
  const script = `
    import { PerformanceObserver, constants } from 'node:perf_hooks';
    const { tuneGarbageCollector } = await import(${JSON.stringify(MODULE)});
    const set = tuneGarbageCollector();
    let majors = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) if (entry.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
    }).observe({ entryTypes: ['gc'] });
    const live = [];
    for (let i = 0; i < 100_000; i++) live.push({ i });
    ${workload}
    await new Promise((resolve) => setTimeout(resolve, 50));
    process.stdout.write(JSON.stringify({ set, majors, live: live.length }));
  `;
  const child = spawnSync(
    process.execPath,
    ['--max-semi-space-size=4', ...nodeArgs, '--input-type=module', '--no-warnings', '-e', script],
    { encoding: 'utf8' },
  );
  expect(child.stderr).toBe('');
  return JSON.parse(child.stdout) as Outcome;
}

/**
 * `workload` as `serve` runs it (the function sets `flag` to `served`) and with V8's default for `flag` put back on
 * node's command line (the function leaves it alone).
 */
function servedAndDefault(flag: GcFlag, served: boolean, workload: string): { served: Outcome; v8Default: Outcome } {
  const asServed = majorCollections(workload);
  const asDefault = majorCollections(workload, [served ? `--no-${flag}` : `--${flag}`]);
  expect(asServed.set[flag]).toBe(served);
  expect(asDefault.set).not.toHaveProperty(flag);
  return { served: asServed, v8Default: asDefault };
}

/** 1,024 short-lived 1 MiB Buffers next to a small live heap. */
const BIG_BUFFERS = `
  for (let i = 0; i < 1024; i++) {
    Buffer.allocUnsafeSlow(1 << 20).fill(i);
    if (i % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
`;

/**
 * Small objects from one allocation site, each alive while the next ~10,000 are made (about one young generation's
 * worth at 4 MiB), then garbage: what a request's state looks like to the collector under load.
 */
const IN_FLIGHT_OBJECTS = `
  const make = (i) => ({ id: i, parts: [i, i + 1, i + 2], meta: { x: i, y: String(i) } });
  const inFlight = [];
  for (let i = 0; i < 3_000_000; i++) {
    inFlight.push(make(i));
    if (inFlight.length > 10_000) inFlight.shift();
    if (i % 50_000 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
`;

describe('tuneGarbageCollector', () => {
  it('counts external memory in the global limit: short-lived Buffers no longer start full collections', () => {
    const { served: on, v8Default: off } = servedAndDefault('external-memory-accounted-in-global-limit', true, BIG_BUFFERS);
    // V8's own external-memory limit starts a full collection every 64 MiB or so: over a dozen for 1 GiB (12–15 seen).
    // Counted in the global limit, the count depends on how the heap grew (1–6 seen), but stays well below.
    expect(off.majors).toBeGreaterThanOrEqual(8);
    expect(on.majors).toBeLessThan(off.majors - 4);
  });

  it('turns allocation-site pretenuring off: objects that outlive one young collection are not allocated old', () => {
    const { served: off, v8Default: on } = servedAndDefault('allocation-site-pretenuring', false, IN_FLIGHT_OBJECTS);
    // Pretenured, they fill the old generation: 15 full collections seen; young-allocated, they die young: 2 seen.
    expect(on.majors).toBeGreaterThanOrEqual(8);
    expect(off.majors).toBeLessThan(on.majors - 5);
  });

  it('leaves a flag given on the command line as it is, either way, with underscores too', () => {
    const { set } = majorCollections('', ['--no-external_memory_accounted_in_global_limit', '--no-allocation-site-pretenuring']);
    expect(set).toEqual({});
  });
});
