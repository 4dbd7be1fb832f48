/**
 * The V8 garbage-collector flags `serve` sets for itself, before the proxy
 * loads its configuration and starts listening. Node.js refuses V8 flags in
 * NODE_OPTIONS (the process would not start); set from here, these hold
 * however the proxy is started (the image, the chart, `npx kube-vertex-proxy
 * serve`), with no node command line of its own. A flag given on node's own
 * command line, either way (`--flag` or `--no-flag`, dashes or underscores),
 * wins and is left as it is.
 * Process-wide, so worker threads started afterwards have them too.
 *
 * - `--external-memory-accounted-in-global-limit` (on): memory Node.js holds
 *   outside V8's heap (Buffers: the HTTP parser's copy of a request body,
 *   undici's socket reads of an answer) counts in V8's global allocation
 *   limit, instead of V8's separate external-memory limit. With the separate
 *   limit (V8's default in Node.js 24), every 64 MiB or so of external
 *   memory allocated since the last collection starts a full mark-compact,
 *   however small the JavaScript heap is and however soon those Buffers die:
 *   moving 1 MiB bodies, the proxy ran one about every 300 ms, each marking
 *   the whole heap, about half of its CPU per request (docs/operations.md).
 *   Counted in the global limit, external memory grows that limit's budget
 *   like heap memory does and the Buffers are freed by the young-generation
 *   collections that already run.
 * - `--allocation-site-pretenuring` (off): with it, once objects from one
 *   allocation site were seen to outlive a young-generation collection, V8
 *   allocates that site's objects straight into the old generation. Under
 *   load a request's objects (undici's response-header buffers, timers, the
 *   request's own state) are still in flight at a collection often enough to
 *   trip it, though they die milliseconds later; allocated old, only full
 *   mark-compacts free them, and those ran about twice as often
 *   (docs/operations.md has the figures).
 *
 * Not here: `--initial-old-space-size`, the old-generation size below which
 * V8 runs no full mark-compact. V8 reads it once, when it creates the heap,
 * before any JavaScript runs, so setting it from here would do nothing; the
 * image's ENTRYPOINT and the chart's container command put it on node's
 * command line (values.yaml `initialHeapMiB`, docs/operations.md).
 *
 * @module
 */
import { setFlagsFromString } from 'node:v8';

/** V8's flags (without `--`) and the value `serve` gives each. */
export const GC_FLAGS = {
  'external-memory-accounted-in-global-limit': true,
  'allocation-site-pretenuring': false,
} as const;

export type GcFlag = keyof typeof GC_FLAGS;

function givenOnCommandLine(flag: string, execArgv: readonly string[]): boolean {
  return execArgv.some((arg) => {
    const name = arg.replace(/_/g, '-').split('=')[0];
    return name === `--${flag}` || name === `--no-${flag}`;
  });
}

/**
 * Sets each of {@link GC_FLAGS} that node's command line (`execArgv`) did not
 * set; returns the flags it set, with their values.
 */
export function tuneGarbageCollector(execArgv: readonly string[] = process.execArgv): Partial<Record<GcFlag, boolean>> {
  const set: Partial<Record<GcFlag, boolean>> = {};
  for (const [flag, on] of Object.entries(GC_FLAGS) as [GcFlag, boolean][]) {
    if (givenOnCommandLine(flag, execArgv)) continue;
    setFlagsFromString(on ? `--${flag}` : `--no-${flag}`);
    set[flag] = on;
  }
  return set;
}
