/**
 * Bounded audit storage for requests that never became anyone's: requests
 * refused before a caller was authenticated (no token, a bad token, a
 * malformed request or path). Anyone who can reach the port can send them,
 * thousands per second; stored one record each (~2 KB), they would fill the
 * store's volume (and then evict the pod, or make strict mode refuse
 * everyone).
 *
 * Per client address and reason, the first such request of each minute is
 * stored whole; the others of that minute are counted, and one summary record
 * (`aggregated: { count, firstAt, lastAt }`) is stored when the minute is over
 * (or at shutdown). A flood thus costs at most two records per address and
 * reason per minute, and at most {@link MAX_KEYS} addresses × reasons are
 * tracked at once (past that, further ones share one `clientIp: undefined`
 * entry per reason). Authenticated requests pass straight through. Every
 * request, stored whole or counted, is still counted in the metrics, which
 * see every record before this step.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { AuditRecord } from './record.js';

/** Most (address, reason) pairs aggregated at once. */
export const MAX_KEYS = 10_000;
const WINDOW_MS = 60_000;

interface Window {
  readonly minute: number;
  readonly first: AuditRecord;
  count: number;
  firstAt: number;
  lastAt: number;
}

export interface FloodAggregatorOptions {
  /** Where records go on (the durable store). */
  readonly emit: (record: AuditRecord) => void;
  readonly now?: () => number;
  /** Window length; one minute unless a test says otherwise. */
  readonly windowMs?: number;
}

/** Whether a record is of a request no authenticated caller is accountable for. */
export function isUnauthenticated(record: AuditRecord): boolean {
  return record.principal === undefined && record.decision === 'deny';
}

export class FloodAggregator {
  readonly #emit: (record: AuditRecord) => void;
  readonly #now: () => number;
  readonly #windowMs: number;
  readonly #windows = new Map<string, Window>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: FloodAggregatorOptions) {
    this.#emit = options.emit;
    this.#now = options.now ?? Date.now;
    this.#windowMs = options.windowMs ?? WINDOW_MS;
  }

  /** Starts the periodic flush of finished windows. */
  start(): void {
    this.#timer = setInterval(() => this.flush(false), Math.min(this.#windowMs, 10_000));
    this.#timer.unref();
  }

  /** Tracked (address, reason) pairs. */
  get size(): number {
    return this.#windows.size;
  }

  /** One record of a finished request: passed on, or counted into its window. */
  offer(record: AuditRecord): void {
    if (!isUnauthenticated(record)) {
      this.#emit(record);
      return;
    }
    const now = this.#now();
    const minute = Math.floor(now / this.#windowMs);
    let address = record.clientIp;
    let key = `${address ?? ''}\u0000${record.reason}`;
    let window = this.#windows.get(key);
    if (window !== undefined && window.minute !== minute) {
      this.#close(key, window);
      window = undefined;
    }
    if (window === undefined && this.#windows.size >= MAX_KEYS) {
      // Too many addresses at once (a spread-out flood): share one entry per reason.
      address = undefined;
      key = `\u0000${record.reason}`;
      window = this.#windows.get(key);
      if (window !== undefined && window.minute !== minute) {
        this.#close(key, window);
        window = undefined;
      }
    }
    if (window === undefined) {
      this.#windows.set(key, { minute, first: record, count: 0, firstAt: now, lastAt: now });
      this.#emit(record);
      return;
    }
    window.count += 1;
    window.lastAt = now;
  }

  /** Writes the summaries of finished windows (all of them when `all`: at shutdown). */
  flush(all: boolean): void {
    const minute = Math.floor(this.#now() / this.#windowMs);
    for (const [key, window] of this.#windows) if (all || window.minute !== minute) this.#close(key, window);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.flush(true);
  }

  #close(key: string, window: Window): void {
    this.#windows.delete(key);
    if (window.count === 0) return;
    const { first } = window;
    this.#emit(summaryRecord(first, window));
  }
}

/** The record standing for a window's requests after its first: what they shared, and how many there were. */
function summaryRecord(first: AuditRecord, window: Window): AuditRecord {
  return {
    ...first,
    requestId: randomUUID(),
    time: new Date(window.firstAt).toISOString(),
    traceId: undefined,
    spanId: undefined,
    traceSampled: undefined,
    latencyMs: 0,
    upstreamLatencyMs: undefined,
    requestBytes: 0,
    responseBytes: 0,
    aggregated: { count: window.count, firstAt: new Date(window.firstAt).toISOString(), lastAt: new Date(window.lastAt).toISOString() },
  };
}
