/**
 * Group commit: callers `submit` entries and wait; while one transaction
 * runs, everything that arrives queues up and goes into the next one — one
 * transaction, one fsync, many decisions. Hashes are computed at flush time
 * from the chain head, and the head only moves when the transaction
 * committed, so a failed batch leaves no gap.
 *
 * @module
 */
import type { AuditRecord } from '../record.js';
import { chainEntries } from './chain.js';
import type { ChainedEntry, ChainLink, EntryPhase } from './types.js';

interface Pending {
  readonly phase: EntryPhase;
  readonly record: AuditRecord;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export interface GroupCommitOptions {
  readonly writer: string;
  readonly maxBatch: number;
  /** The chain head as stored (read lazily, and again after a failed batch). */
  readonly loadHead: () => Promise<ChainLink | undefined>;
  /** Writes one batch in one transaction; resolves once it is durable. */
  readonly write: (entries: ChainedEntry[]) => Promise<void>;
  /** How a flush is started (default: a microtask, so everything submitted in this turn of the event loop joins). */
  readonly schedule?: (run: () => void) => void;
  readonly onBatch?: (size: number, seconds: number, ok: boolean) => void;
}

export class GroupCommitter {
  readonly #pending: Pending[] = [];
  #flushing = false;
  #idleWaiters: Array<() => void> = [];
  #head: ChainLink | undefined;
  readonly #options: GroupCommitOptions;
  readonly #schedule: (run: () => void) => void;

  constructor(options: GroupCommitOptions) {
    this.#options = options;
    this.#schedule = options.schedule ?? ((run) => queueMicrotask(run));
  }

  submit(entries: ReadonlyArray<{ phase: EntryPhase; record: AuditRecord }>): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    const done = entries.map(
      (entry) =>
        new Promise<void>((resolve, reject) => {
          this.#pending.push({ phase: entry.phase, record: entry.record, resolve, reject });
        }),
    );
    if (!this.#flushing) {
      this.#flushing = true;
      this.#schedule(() => void this.#flush());
    }
    return entries.length === 1 ? (done[0] as Promise<void>) : Promise.all(done).then(() => undefined);
  }

  /** Resolves when everything submitted so far has been committed or failed. */
  idle(): Promise<void> {
    if (!this.#flushing) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async #flush(): Promise<void> {
    const { writer, maxBatch, loadHead, write, onBatch } = this.#options;
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, maxBatch);
      const started = process.hrtime.bigint();
      const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
      try {
        // Read the head lazily and again after a failure: another process may have written since (restart on the same store).
        this.#head ??= await loadHead();
        const chained = chainEntries(this.#head, writer, Date.now(), batch);
        await write(chained.entries);
        this.#head = chained.head;
        onBatch?.(batch.length, seconds(), true);
        for (const item of batch) item.resolve();
      } catch (error) {
        this.#head = undefined;
        onBatch?.(batch.length, seconds(), false);
        for (const item of batch) item.reject(error);
      }
    }
    this.#flushing = false;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
