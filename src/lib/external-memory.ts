/**
 * Counts the memory Node.js holds outside V8's heap (Buffers: the HTTP
 * parser's copy of a request body, undici's socket reads of an answer) in
 * V8's global allocation limit, instead of V8's separate external-memory
 * limit.
 *
 * With the separate limit (V8's default in Node.js 24), every 64 MiB or so of
 * external memory allocated since the last collection starts a full
 * mark-compact, however small the JavaScript heap is and however soon those
 * Buffers die: moving 1 MiB bodies, the proxy ran one about every 300 ms, each
 * marking the whole heap on V8's worker threads, about half of the proxy's CPU
 * per request (docs/benchmark.md). Counted in the global limit, external
 * memory grows that limit's budget like heap memory does and the Buffers are
 * freed by the young-generation collections that already run.
 *
 * V8's flag `--external-memory-accounted-in-global-limit` does this, but Node.js
 * refuses V8 flags in NODE_OPTIONS (the process would not start), so `serve`
 * sets it itself, before it starts listening. A command line with
 * `--no-external-memory-accounted-in-global-limit` keeps V8's default.
 *
 * @module
 */
import { setFlagsFromString } from 'node:v8';

/** The V8 flag; `--no-` + its name on node's command line turns {@link accountExternalMemoryInGlobalLimit} off. */
export const EXTERNAL_MEMORY_FLAG = 'external-memory-accounted-in-global-limit';

/**
 * Turns the flag on unless node's command line (`execArgv`) turned it off; returns whether it is on.
 * Process-wide, so worker threads started afterwards have it too.
 */
export function accountExternalMemoryInGlobalLimit(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((arg) => arg.replace(/_/g, '-') === `--no-${EXTERNAL_MEMORY_FLAG}`)) return false;
  setFlagsFromString(`--${EXTERNAL_MEMORY_FLAG}`);
  return true;
}
