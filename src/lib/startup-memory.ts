/**
 * Gives back the memory that start-up used and no longer needs: one
 * memory-reducing garbage collection, once, when the proxy first becomes
 * ready.
 *
 * Start-up (loading a thousand modules, compiling the config schema and the
 * policy, the first namespace list) allocates far more than survives. V8 grows
 * the young generation to its maximum (`--max-semi-space-size`, twice: from-
 * and to-space) while it does, and keeps the old generation's freed pages;
 * nothing shrinks them while the process is idle, because V8 only does so
 * after a collection that runs when allocation is slow or memory is asked
 * back, and an idle process runs no collection. Measured with the chart's
 * defaults (`npm run bench`, scenario full-watch): the young generation holds
 * 7 MiB (the chart's 4 MiB semi-space) or 32 MiB (16 MiB) of which under 1 MiB is live.
 * A memory-reducing collection (V8's `CollectAllAvailableGarbage`, what
 * `Isolate::LowMemoryNotification` runs) shrinks both; under load the young
 * generation grows back to what the load needs.
 *
 * It runs when the proxy first turns ready (before that a pod gets no
 * traffic), on its own event-loop turn, and holds the event loop for about
 * 80 ms of CPU (the heap is some 30 MiB then; 140–490 ms wall-clock on the
 * loaded 2-core build machine). V8 offers it to JavaScript only through the `gc`
 * function of `--expose-gc`; the flag is turned on only while one new `vm`
 * context is created to take that function from, so no `gc` appears on this
 * program's global object (jest-leak-detector takes it the same way).
 *
 * @module
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's `gc` extension (`--expose-gc`); `flavor: 'last-resort'` is CollectAllAvailableGarbage. */
type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

export interface ReleasedMemory {
  /** Resident set size before and after, bytes. */
  readonly rssBefore: number;
  readonly rssAfter: number;
  /** How long the collection held the event loop. */
  readonly ms: number;
}

function gcFunction(): GcFunction | undefined {
  const global = (globalThis as { gc?: unknown }).gc;
  // Started with --expose-gc: use it and leave the flag as it was.
  if (typeof global === 'function') return global as GcFunction;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as GcFunction) : undefined;
  } catch {
    return undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/** Runs the memory-reducing collection now (synchronously); undefined when this V8 offers none. */
export function releaseStartupMemory(): ReleasedMemory | undefined {
  const gc = gcFunction();
  if (gc === undefined) return undefined;
  const rssBefore = process.memoryUsage.rss();
  const startedAt = performance.now();
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return { rssBefore, rssAfter: process.memoryUsage.rss(), ms: performance.now() - startedAt };
}

export interface ReleaseWhenReadyOptions {
  /** Whether the proxy is ready (every readiness check passes). */
  readonly ready: () => boolean;
  /** How often to look, ms. */
  readonly pollMs?: number;
  /** Called once the collection ran (or could not: undefined). */
  readonly onReleased?: (released: ReleasedMemory | undefined) => void;
}

/**
 * Watches for the first readiness and then releases start-up memory once.
 * Returns a stop function (shutdown before readiness). The timer never keeps
 * the process alive.
 */
export function releaseStartupMemoryWhenReady(options: ReleaseWhenReadyOptions): () => void {
  let timer: NodeJS.Timeout | undefined = setInterval(() => {
    if (!options.ready()) return;
    stop();
    // A turn of its own: whatever made the proxy ready finishes first.
    setImmediate(() => options.onReleased?.(releaseStartupMemory()));
  }, options.pollMs ?? 100);
  timer.unref();
  function stop(): void {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  }
  return stop;
}
