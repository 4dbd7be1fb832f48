/**
 * The load generator: its own process (pinned to its own core by the
 * orchestrator), driving one target over keep-alive connections with undici.
 * Latencies are kept per request in microseconds (autocannon's histogram
 * rounds to whole milliseconds, too coarse for sub-millisecond targets).
 *
 * Protocol (IPC with the orchestrator):
 *   ← `{ type: 'run', spec: LoadSpec }`
 *   → `{ type: 'warm' }` after the warm-up phase; ← `{ type: 'go' }`
 *   → `{ type: 'result', result: LoadResult }` after the measured phase
 *
 * Tokens (when given) are taken in order, one per request, never reused
 * within a phase unless `cycleTokens` is set; the warm-up uses its own list.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { Pool, type Dispatcher } from 'undici';

export interface LoadSpec {
  readonly origin: string;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Body: a file to send as-is on every request. */
  readonly bodyFile?: string;
  /** One bearer token per line; each request takes the next one. */
  readonly tokensFile?: string;
  /** Tokens for the warm-up phase (never the measured ones). */
  readonly warmupTokensFile?: string;
  /** Go round the token list again when it runs out (the cached-token cycle); else stop. */
  readonly cycleTokens?: boolean;
  /** A fixed bearer token when no token file is given. */
  readonly token?: string;
  readonly connections: number;
  readonly warmupMs: number;
  /** End the warm-up after this many requests (e.g. one pass over a token list). */
  readonly warmupMaxRequests?: number;
  readonly durationMs: number;
  /** Stop the measured phase after this many requests. */
  readonly maxRequests?: number;
  /**
   * Open loop: send this many requests per second in total, spread evenly
   * over the connections, instead of each connection sending again as soon as
   * its answer is in (closed loop, which runs the target at saturation).
   */
  readonly ratePerSecond?: number;
  /** Stream responses: record time to first body byte, count chunks. */
  readonly streaming?: boolean;
}

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  /** Status code → count (non-2xx are errors). */
  readonly statuses: Record<string, number>;
  readonly elapsedMs: number;
  readonly rps: number;
  /** Latency to the end of the response, µs. */
  readonly latencyUs: Percentiles;
  /** Time to the first body byte, µs (streaming only). */
  readonly ttfbUs?: Percentiles;
  readonly bytesIn: number;
  /** Server-sent events (`data:` lines) received per second (streaming only). */
  readonly eventsPerSecond?: number;
  readonly firstError?: string;
  /** Open loop only: the rate asked for, requests per second. */
  readonly offeredRps?: number;
  /**
   * Open loop only: requests that went out behind their schedule because every
   * connection was still waiting for an answer at their due time (timed from
   * the schedule, as every request). Many of them mean the target could not
   * keep up with the rate.
   */
  readonly lateStarts?: number;
  /** What the load generator itself did meanwhile: a stalled generator adds its stall to every latency it measures. */
  readonly generator?: GeneratorHealth;
}

/** The load generator's own delays during the measured phase. */
export interface GeneratorHealth {
  /** Its event loop's delay (how late it ran what was due), µs: p99 and max. */
  readonly loopDelayP99Us: number;
  readonly loopDelayMaxUs: number;
  /** Its garbage collector's pauses: count, longest, total. */
  readonly gcPauses: number;
  readonly gcPauseMaxUs: number;
  readonly gcPauseTotalMs: number;
  /** Its own CPU time per request, µs. */
  readonly cpuUsPerRequest: number;
  /**
   * Open loop: how late it sent requests that had a connection free at their due time, µs (p99, max) — its timer and
   * its own stalls; the latency, timed from the due time, includes it.
   */
  readonly sendLagP99Us?: number;
  readonly sendLagMaxUs?: number;
}

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export function percentiles(values: Float64Array): Percentiles {
  if (values.length === 0) return { p50: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
  let sum = 0;
  for (const v of sorted) sum += v;
  const round = (v: number) => Math.round(v * 10) / 10;
  return {
    p50: round(at(0.5)),
    p99: round(at(0.99)),
    p999: round(at(0.999)),
    max: round(sorted[sorted.length - 1] as number),
    mean: round(sum / sorted.length),
  };
}

const EVENT = Buffer.from('data:');

/** `data:` fields in a chunk of an event stream (one per event from Vertex AI). */
function countEvents(chunk: Buffer): number {
  let n = 0;
  for (let at = chunk.indexOf(EVENT); at !== -1; at = chunk.indexOf(EVENT, at + EVENT.length)) n++;
  return n;
}

function readLines(file: string | undefined): string[] | undefined {
  if (file === undefined) return undefined;
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
}

class Samples {
  #values = new Float64Array(1 << 16);
  #length = 0;
  push(value: number): void {
    if (this.#length === this.#values.length) {
      const bigger = new Float64Array(this.#values.length * 2);
      bigger.set(this.#values);
      this.#values = bigger;
    }
    this.#values[this.#length++] = value;
  }
  get values(): Float64Array {
    return this.#values.subarray(0, this.#length);
  }
}

interface Phase {
  readonly tokens: string[] | undefined;
  readonly durationMs: number;
  readonly maxRequests: number;
  readonly cycle: boolean;
}

async function runPhase(pool: Pool, spec: LoadSpec, body: Buffer | undefined, phase: Phase, record: boolean): Promise<LoadResult> {
  const latency = new Samples();
  const ttfb = new Samples();
  const statuses: Record<string, number> = {};
  let started = 0;
  let requests = 0;
  let errors = 0;
  let bytesIn = 0;
  let events = 0;
  let firstError: string | undefined;
  let nextToken = 0;
  const begin = performance.now();
  const deadline = begin + phase.durationMs;

  const takeToken = (): string | undefined => {
    const list = phase.tokens;
    if (list === undefined || list.length === 0) return spec.token;
    if (nextToken >= list.length) {
      if (!phase.cycle) return undefined;
      nextToken = 0;
    }
    return list[nextToken++];
  };

  // Open loop: its own pacer (below), which keeps a schedule of its own rather than one per connection.
  if (spec.ratePerSecond !== undefined) {
    const fixed = fixedHeaders(spec, phase);
    const health = record ? watchGenerator() : undefined;
    const open = await runOpenLoop(pool, spec, body, phase, record, fixed ?? (() => headersWithToken(spec, takeToken())));
    const elapsedMs = performance.now() - begin;
    const generator = health?.stop(open.requests, open.sendLagUs);
    return {
      requests: open.requests,
      errors: open.errors,
      statuses: open.statuses,
      elapsedMs: Math.round(elapsedMs),
      rps: Math.round((open.requests / elapsedMs) * 1000),
      latencyUs: percentiles(open.latency.values),
      ...(spec.streaming ? { ttfbUs: percentiles(open.ttfb.values), eventsPerSecond: Math.round((open.events / elapsedMs) * 1000) } : {}),
      bytesIn: open.bytesIn,
      ...(open.firstError === undefined ? {} : { firstError: open.firstError }),
      offeredRps: spec.ratePerSecond,
      lateStarts: open.lateStarts,
      ...(generator === undefined ? {} : { generator }),
    };
  }

  async function worker(): Promise<void> {
    while (performance.now() < deadline && started < phase.maxRequests) {
      const headers = fixed ?? headersWithToken(spec, takeToken());
      if (headers === undefined) return;
      started++;
      const t0 = performance.now();
      try {
        const res = await pool.request({ method: spec.method, path: spec.path, headers, ...(body ? { body } : {}) });
        let first = 0;
        for await (const chunk of res.body) {
          if (first === 0) first = performance.now();
          bytesIn += (chunk as Buffer).length;
          if (spec.streaming) events += countEvents(chunk as Buffer);
        }
        const t1 = performance.now();
        requests++;
        const key = String(res.statusCode);
        statuses[key] = (statuses[key] ?? 0) + 1;
        if (res.statusCode >= 300) {
          errors++;
          firstError ??= `HTTP ${res.statusCode}`;
        }
        if (record) {
          latency.push((t1 - t0) * 1000);
          if (spec.streaming) ttfb.push(((first || t1) - t0) * 1000);
        }
      } catch (error) {
        requests++;
        errors++;
        firstError ??= (error as Error).message;
      }
    }
  }
  const fixed = fixedHeaders(spec, phase);

  const health = record ? watchGenerator() : undefined;
  await Promise.all(Array.from({ length: spec.connections }, () => worker()));
  const elapsedMs = performance.now() - begin;
  const generator = health?.stop(requests);
  return {
    requests,
    errors,
    statuses,
    elapsedMs: Math.round(elapsedMs),
    rps: Math.round((requests / elapsedMs) * 1000),
    latencyUs: percentiles(latency.values),
    ...(spec.streaming ? { ttfbUs: percentiles(ttfb.values), eventsPerSecond: Math.round((events / elapsedMs) * 1000) } : {}),
    bytesIn,
    ...(firstError === undefined ? {} : { firstError }),
    ...(generator === undefined ? {} : { generator }),
  };
}

/** One headers object for a fixed token (every open-loop scenario): no per-request allocation for it. */
function fixedHeaders(spec: LoadSpec, phase: Phase): Record<string, string> | undefined {
  return (phase.tokens === undefined || phase.tokens.length === 0) && spec.token !== undefined
    ? { ...spec.headers, authorization: `Bearer ${spec.token}` }
    : undefined;
}

function headersWithToken(spec: LoadSpec, token: string | undefined): Record<string, string> | undefined {
  return token === undefined ? undefined : { ...spec.headers, authorization: `Bearer ${token}` };
}

interface OpenLoopOutcome {
  readonly requests: number;
  readonly errors: number;
  readonly statuses: Record<string, number>;
  readonly latency: Samples;
  readonly ttfb: Samples;
  readonly sendLagUs: Samples;
  readonly bytesIn: number;
  readonly events: number;
  readonly lateStarts: number;
  readonly firstError: string | undefined;
}

/**
 * Below this much time to the next scheduled send the pacer polls (`setImmediate`, which also polls the sockets)
 * instead of arming a timer: libuv's timers count whole milliseconds of a clock read once per loop turn, so a
 * timer may fire up to a millisecond early or late, and every millisecond of lateness is charged to the target.
 */
const SPIN_MS = 2;

/**
 * Open loop as wrk2 runs it: request n is due at begin + n / rate, whatever happened to the requests before it, and its
 * latency is timed from when it was due, not from when it went out (coordinated omission:
 * https://github.com/giltene/wrk2#acknowledgements). So the generator's own lateness (its GC, its event loop) is charged
 * too; it is reported beside (`sendLag`). One schedule for the whole pool, not one per connection: a request whose due
 * time comes goes out on any idle connection, so a slow answer delays only its own request, as with independent
 * callers; it waits (and counts as a late start) only when all connections are busy. Per request the pacer allocates no
 * closure or promise: a fixed set of handler objects (one per connection) goes to undici's `dispatch`.
 */
function runOpenLoop(
  pool: Pool,
  spec: LoadSpec,
  body: Buffer | undefined,
  phase: Phase,
  record: boolean,
  headersFor: Record<string, string> | (() => Record<string, string> | undefined),
): Promise<OpenLoopOutcome> {
  const rate = spec.ratePerSecond as number;
  const gapMs = 1000 / rate;
  const latency = new Samples();
  const ttfb = new Samples();
  const sendLagUs = new Samples();
  const statusCounts = new Uint32Array(600);
  let requests = 0;
  let errors = 0;
  let bytesIn = 0;
  let events = 0;
  let lateStarts = 0;
  let firstError: string | undefined;
  let next = 0;
  let inFlight = 0;
  let stopped = false;
  let armed = false;
  /** The index of a request that found every connection busy at its due time. */
  let starved = -1;
  const begin = performance.now();
  const deadline = begin + phase.durationMs;
  const streaming = spec.streaming === true;

  return new Promise<OpenLoopOutcome>((resolveAll) => {
    let finished = false;
    const finish = (): void => {
      // A dispatch that fails at once answers inside pump, which may then finish twice.
      if (finished) return;
      finished = true;
      const statuses: Record<string, number> = {};
      statusCounts.forEach((count, code) => {
        if (count > 0) statuses[String(code)] = count;
      });
      resolveAll({ requests, errors, statuses, latency, ttfb, sendLagUs, bytesIn, events, lateStarts, firstError });
    };

    class Slot implements Dispatcher.DispatchHandler {
      due = 0;
      first = 0;
      status = 0;
      onRequestStart(): void {
        // nothing to note: the request's time was fixed by its schedule
      }
      onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
        this.status = statusCode;
      }
      onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
        if (this.first === 0) this.first = performance.now();
        bytesIn += chunk.length;
        if (streaming) events += countEvents(chunk);
      }
      onResponseEnd(): void {
        const t1 = performance.now();
        requests++;
        const code = Math.min(this.status, 599);
        statusCounts[code] = (statusCounts[code] ?? 0) + 1;
        if (this.status >= 300) {
          errors++;
          firstError ??= `HTTP ${this.status}`;
        }
        if (record) {
          latency.push((t1 - this.due) * 1000);
          if (streaming) ttfb.push(((this.first || t1) - this.due) * 1000);
        }
        this.done();
      }
      onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
        requests++;
        errors++;
        firstError ??= error.message;
        this.done();
      }
      done(): void {
        this.first = 0;
        this.status = 0;
        inFlight--;
        idle.push(this);
        pump();
      }
    }
    const idle: Slot[] = Array.from({ length: spec.connections }, () => new Slot());
    const options: Dispatcher.DispatchOptions = {
      method: spec.method,
      path: spec.path,
      headers: typeof headersFor === 'function' ? {} : headersFor,
      ...(body ? { body } : {}),
    };

    const wake = (): void => {
      armed = false;
      pump();
    };

    function pump(): void {
      while (!stopped) {
        const due = begin + next * gapMs;
        if (due >= deadline || next >= phase.maxRequests) {
          stopped = true;
          break;
        }
        const now = performance.now();
        if (due > now) {
          if (!armed) {
            armed = true;
            const wait = due - now;
            if (wait >= SPIN_MS) setTimeout(wake, Math.floor(wait) - 1);
            else setImmediate(wake);
          }
          return;
        }
        const slot = idle.pop();
        if (slot === undefined) {
          starved = next;
          return; // the next answer to come in calls pump again
        }
        if (typeof headersFor === 'function') {
          const headers = headersFor();
          if (headers === undefined) {
            idle.push(slot);
            stopped = true;
            break;
          }
          options.headers = headers;
        }
        if (record) {
          // Late for want of a connection: the target's doing. Otherwise any lateness is the generator's own.
          if (starved === next) lateStarts++;
          else sendLagUs.push((now - due) * 1000);
        }
        slot.due = due;
        next++;
        inFlight++;
        pool.dispatch(options, slot);
      }
      if (inFlight === 0) finish();
    }

    pump();
  });
}

const LOOP_SAMPLE_MS = 5;

const sendLag = (p: Percentiles) => ({ sendLagP99Us: p.p99, sendLagMaxUs: p.max });

/** Watches this process while it measures: event-loop delay, GC pauses, CPU time. */
function watchGenerator(): { stop(requests: number, sendLagUs?: Samples): GeneratorHealth } {
  // A sample every 5 ms: 600 a measured phase of 3 s, without waking the loop every millisecond (which costs CPU).
  const loop = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS });
  loop.enable();
  let gcPauses = 0;
  let gcMaxMs = 0;
  let gcTotalMs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcPauses += 1;
      gcTotalMs += entry.duration;
      gcMaxMs = Math.max(gcMaxMs, entry.duration);
    }
  });
  gc.observe({ entryTypes: ['gc'] });
  const cpu = process.cpuUsage();
  return {
    stop(requests, sendLagUs) {
      loop.disable();
      gc.disconnect();
      const used = process.cpuUsage(cpu);
      const round = (v: number) => Math.round(v * 10) / 10;
      return {
        // The histogram records the time between its timer's callbacks: the sampling period is not delay.
        loopDelayP99Us: round(Math.max(0, loop.percentile(99) / 1000 - LOOP_SAMPLE_MS * 1000)),
        loopDelayMaxUs: round(Math.max(0, loop.max / 1000 - LOOP_SAMPLE_MS * 1000)),
        gcPauses,
        gcPauseMaxUs: round(gcMaxMs * 1000),
        gcPauseTotalMs: round(gcTotalMs),
        cpuUsPerRequest: requests > 0 ? round((used.user + used.system) / requests) : 0,
        ...(sendLagUs === undefined ? {} : sendLag(percentiles(sendLagUs.values))),
      };
    },
  };
}

async function run(spec: LoadSpec): Promise<LoadResult> {
  const pool = new Pool(spec.origin, { connections: spec.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const body = spec.bodyFile === undefined ? undefined : readFileSync(spec.bodyFile);
  const tokens = readLines(spec.tokensFile);
  const warmupTokens = readLines(spec.warmupTokensFile) ?? tokens;
  try {
    if (spec.warmupMs > 0) {
      await runPhase(
        pool,
        spec,
        body,
        { tokens: warmupTokens, durationMs: spec.warmupMs, maxRequests: spec.warmupMaxRequests ?? Infinity, cycle: true },
        false,
      );
    }
    // The warm-up's garbage collected now, not in the middle of the measured phase (the flag is set by bench/run.ts).
    (globalThis as { gc?: () => void }).gc?.();
    send({ type: 'warm' });
    await new Promise<void>((resolve) => {
      process.once('message', () => resolve());
    });
    return await runPhase(
      pool,
      spec,
      body,
      { tokens, durationMs: spec.durationMs, maxRequests: spec.maxRequests ?? Infinity, cycle: spec.cycleTokens ?? false },
      true,
    );
  } finally {
    await pool.close();
  }
}

function send(message: unknown): void {
  process.send?.(message);
}

if (process.send !== undefined) {
  process.once('message', (message: { type: 'run'; spec: LoadSpec }) => {
    run(message.spec).then(
      (result) => {
        send({ type: 'result', result });
        (process.disconnect as (() => void) | undefined)?.(); // undefined when not started with an IPC channel
      },
      (error: unknown) => {
        send({ type: 'error', message: (error as Error).stack ?? String(error) });
        (process.disconnect as (() => void) | undefined)?.(); // undefined when not started with an IPC channel
      },
    );
  });
}
