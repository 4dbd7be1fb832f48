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
 *
 * The old generation's maximum is pinned: V8 derives it from the machine's memory otherwise (4 GiB on 24 GiB), and
 * how far the old generation's limit grows after a collection depends on it and on the collector's measured speed.
 * With 4 GiB and the other core busy (CI runs test files in parallel), pretenured objects fitted in a grown limit and
 * the pretenuring workload ran 1–3 full collections either way; with 512 MiB, 39–40 against 6, busy or idle.
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
    ['--max-semi-space-size=4', '--max-old-space-size=512', ...nodeArgs, '--input-type=module', '--no-warnings', '-e', script],
    { encoding: 'utf8' },
  );
  expect(child.stderr).toBe('');
  return JSON.parse(child.stdout) as Outcome;
}

/**
 * `workload` as `serve` runs it (the function sets `flag` to `served`) and with V8's default for `flag` put back on
 * node's command line (the function leaves it alone). V8's default is run up to `tries` times, until it has run
 * `atLeast` full collections, and the run with the most is returned: where V8's own heuristics decide whether the
 * default shows its cost at all, one run that shows it is the evidence, and one that does not is not a failure of
 * the function under test.
 */
function servedAndDefault(
  flag: GcFlag,
  served: boolean,
  workload: string,
  { atLeast, tries }: { atLeast: number; tries: number },
): { served: Outcome; v8Default: Outcome } {
  const asServed = majorCollections(workload);
  expect(asServed.set[flag]).toBe(served);
  let asDefault: Outcome | undefined;
  for (let i = 0; i < tries && (asDefault?.majors ?? -1) < atLeast; i++) {
    const run = majorCollections(workload, [served ? `--no-${flag}` : `--${flag}`]);
    expect(run.set).not.toHaveProperty(flag);
    if (!asDefault || run.majors > asDefault.majors) asDefault = run;
  }
  return { served: asServed, v8Default: asDefault! };
}

/** 4,096 short-lived 1 MiB Buffers next to a small live heap. */
const BIG_BUFFERS = `
  for (let i = 0; i < 4096; i++) {
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
    const { served: on, v8Default: off } = servedAndDefault('external-memory-accounted-in-global-limit', true, BIG_BUFFERS, {
      atLeast: 24,
      tries: 1,
    });
    // V8's own external-memory limit starts a full collection every 64 MiB or so: 43–55 for 4 GiB, idle or with both
    // cores busy. Counted in the global limit: 6 in every run. With 1 GiB, CI once saw 6 against 10, which the margin
    // this test had then (4) did not cover; hence 4 GiB and a ratio.
    expect(off.majors, `full collections: ${JSON.stringify({ on, off })}`).toBeGreaterThanOrEqual(24);
    expect(on.majors * 3, `full collections: ${JSON.stringify({ on, off })}`).toBeLessThanOrEqual(off.majors);
  });

  it('turns allocation-site pretenuring off: objects that outlive one young collection are not allocated old', () => {
    // Whether V8 pretenures them depends on how far the young generation had grown when their site's survival was
    // judged, which depends on timing: idle, every run did (38–40 full collections); with both cores busy, some did
    // not (2 in 8 seen: 6 full collections, as if young-allocated). Young-allocated, they die young in every run: 6.
    const { served: off, v8Default: on } = servedAndDefault('allocation-site-pretenuring', false, IN_FLIGHT_OBJECTS, {
      atLeast: 20,
      tries: 5,
    });
    expect(on.majors, `full collections: ${JSON.stringify({ on, off })}`).toBeGreaterThanOrEqual(20);
    expect(off.majors * 2, `full collections: ${JSON.stringify({ on, off })}`).toBeLessThanOrEqual(on.majors);
  });

  it('leaves a flag given on the command line as it is, either way, with underscores too', () => {
    const { set } = majorCollections('', ['--no-external_memory_accounted_in_global_limit', '--no-allocation-site-pretenuring']);
    expect(set).toEqual({});
  });
});
