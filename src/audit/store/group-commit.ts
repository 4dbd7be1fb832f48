/**
 * Group commit: callers `submit` entries and wait; while a transaction runs,
 * everything that arrives queues up and goes into the next one — one
 * transaction, one fsync, many decisions. Hashes are computed when a batch
 * starts, from the chain head, so the chain order is exactly the order in
 * which entries were submitted.
 *
 * Pipelining (`maxInFlight` > 1, PostgreSQL): the next batch may start while
 * the previous one's commit is in flight, once as many entries wait as that
 * one holds. Its chain continues the previous
 * batch's, so the store must not commit it before the previous one has
 * committed, and must not commit it at all if that one failed: `write` is
 * handed the previous batch's outcome for that. A failed batch therefore
 * fails its own callers and every later batch in flight; the head is then
 * read again from the store once nothing is in flight, and what is still
 * queued is chained onto it, so a failure leaves no gap.
 *
 * Commit delay (`delayMs` > 0): entries no caller waits on (phase `final`: a
 * relaxed record, a strict record's completion) wait up to `delayMs` for
 * company before a batch starts, as Kafka's `linger.ms` does. Without it,
 * below saturation each request's record was a transaction (and an fsync) of
 * its own, because a commit takes less time than the gap between requests. A
 * decision entry (its request waits for the commit), a full batch, or
 * `idle()` starts the batch at once, and the entries waiting go with it.
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
  /** Batches in flight at once (default 1: the next batch starts when the previous one has committed or failed). */
  readonly maxInFlight?: number;
  /** The chain head as stored (read lazily, and again after a failed batch once nothing is in flight). */
  readonly loadHead: () => Promise<ChainLink | undefined>;
  /**
   * Writes one batch in one transaction; resolves once it is durable. `previous` is the commit of the batch before
   * this one when that one is still in flight (pipelining; always undefined when `maxInFlight` is 1): this batch
   * must not become durable before `previous` resolves, and must not become durable at all, and reject, if it
   * rejects.
   */
  readonly write: (entries: ChainedEntry[], previous: Promise<void> | undefined) => Promise<void>;
  /** How long entries no caller waits on may wait for a batch (default 0: a batch starts in the turn they arrive). */
  readonly delayMs?: number;
  /** How a flush is started (default: a microtask, so everything submitted in this turn of the event loop joins). */
  readonly schedule?: (run: () => void) => void;
  readonly onBatch?: (size: number, seconds: number, ok: boolean) => void;
}

export class GroupCommitter {
  readonly #pending: Pending[] = [];
  readonly #options: GroupCommitOptions;
  readonly #schedule: (run: () => void) => void;
  readonly #maxInFlight: number;
  readonly #delayMs: number;
  #scheduled = false;
  /** A decision entry is queued: its request waits, so the next batch starts without delay. */
  #urgent = false;
  /** The commit delay of the entries queued has passed (or `idle()` asked for them). */
  #delayOver = false;
  #delayTimer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #loadingHead = false;
  /** How many entries the newest batch started holds. */
  #tailSize = 0;
  /** The commit of the newest batch in flight: the next batch chains onto it. */
  #tail: Promise<void> | undefined;
  /** The head after the newest batch started; undefined: not known (at start, after a failure), read from the store. */
  #head: { readonly link: ChainLink | undefined } | undefined;
  #idleWaiters: Array<() => void> = [];

  constructor(options: GroupCommitOptions) {
    this.#options = options;
    this.#schedule = options.schedule ?? ((run) => queueMicrotask(run));
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 1);
    this.#delayMs = Math.max(0, options.delayMs ?? 0);
  }

  submit(entries: ReadonlyArray<{ phase: EntryPhase; record: AuditRecord }>): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    const done = entries.map(
      (entry) =>
        new Promise<void>((resolve, reject) => {
          this.#pending.push({ phase: entry.phase, record: entry.record, resolve, reject });
        }),
    );
    if (entries.some((entry) => entry.phase === 'decision')) this.#urgent = true;
    this.#kick();
    return entries.length === 1 ? (done[0] as Promise<void>) : Promise.all(done).then(() => undefined);
  }

  /** Resolves when everything submitted so far has been committed or failed. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    // Whoever waits for idle (closing the store) must not wait out the commit delay.
    this.#delayOver = true;
    this.#kick();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Whether the entries queued may start a batch now rather than wait for company. */
  #due(): boolean {
    return this.#delayMs === 0 || this.#urgent || this.#delayOver || this.#pending.length >= this.#options.maxBatch;
  }

  /** Starts a batch in this turn when one is due and there is room for it; else waits out the commit delay. */
  #kick(): void {
    if (this.#scheduled || this.#pending.length === 0) return;
    // The delay runs from the first entry's arrival, also while a batch is in flight.
    if (!this.#due()) {
      this.#armDelay();
      return;
    }
    if (this.#inFlight >= this.#maxInFlight || this.#loadingHead) return;
    this.#scheduled = true;
    this.#schedule(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  #armDelay(): void {
    if (this.#delayTimer !== undefined) return;
    this.#delayTimer = setTimeout(() => {
      this.#delayTimer = undefined;
      this.#delayOver = true;
      this.#kick();
    }, this.#delayMs);
  }

  #isIdle(): boolean {
    return this.#pending.length === 0 && this.#inFlight === 0 && !this.#loadingHead && !this.#scheduled && this.#delayTimer === undefined;
  }

  /** Starts batches while there is room in flight and the head is known. */
  #pump(): void {
    while (this.#pending.length > 0 && this.#inFlight < this.#maxInFlight && !this.#loadingHead) {
      if (this.#head === undefined) {
        // Read only once nothing is in flight: a batch still in flight may yet commit (or fail) and move the head.
        if (this.#inFlight === 0) this.#readHead();
        break;
      }
      // Behind a batch in flight, the next one starts only once as many entries wait as that batch holds (the queue
      // grows faster than batches commit). Sooner, it would commit a few entries at the cost of a whole commit of its
      // own, and leave the batch after it as large as without pipelining: fewer entries per commit, so less throughput.
      if (this.#inFlight > 0 && this.#pending.length < this.#tailSize) break;
      if (!this.#due()) break;
      const batch = this.#pending.splice(0, this.#options.maxBatch);
      this.#tailSize = batch.length;
      // What is left (more than a batch holds) has waited as long as what was taken.
      this.#urgent = this.#pending.some((item) => item.phase === 'decision');
      if (this.#pending.length === 0) this.#delayOver = false;
      this.#start(this.#head.link, batch);
    }
    if (this.#pending.length > 0 && !this.#due()) this.#armDelay();
    if (this.#pending.length === 0 && this.#delayTimer !== undefined) {
      clearTimeout(this.#delayTimer);
      this.#delayTimer = undefined;
    }
    this.#settleIdle();
  }

  #readHead(): void {
    this.#loadingHead = true;
    // Another process may have written since (a restart on the same store), so the head comes from the store.
    this.#options.loadHead().then(
      (link) => {
        this.#loadingHead = false;
        this.#head = { link };
        this.#pump();
      },
      (error: unknown) => {
        this.#loadingHead = false;
        // The store cannot even be read: the next batch fails with that, as its write would.
        const batch = this.#pending.splice(0, this.#options.maxBatch);
        this.#options.onBatch?.(batch.length, 0, false);
        for (const item of batch) item.reject(error);
        this.#pump();
      },
    );
  }

  #start(head: ChainLink | undefined, batch: Pending[]): void {
    const { writer, write, onBatch } = this.#options;
    const started = process.hrtime.bigint();
    let chained: ReturnType<typeof chainEntries>;
    try {
      chained = chainEntries(head, writer, Date.now(), batch);
    } catch (error) {
      // A record that cannot be serialized: nothing was written and the head has not moved.
      onBatch?.(batch.length, 0, false);
      for (const item of batch) item.reject(error);
      return;
    }
    const previous = this.#tail;
    this.#head = { link: chained.head };
    this.#inFlight += 1;
    let commit: Promise<void>;
    try {
      commit = write(chained.entries, previous);
    } catch (error) {
      commit = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    this.#tail = commit;
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    commit.then(
      () => {
        onBatch?.(batch.length, seconds(), true);
        for (const item of batch) item.resolve();
        this.#finished(commit);
      },
      (error: unknown) => {
        // Every later batch in flight is chained onto this one and fails with it; the head is read again after them.
        this.#head = undefined;
        onBatch?.(batch.length, seconds(), false);
        for (const item of batch) item.reject(error);
        this.#finished(commit);
      },
    );
  }

  #finished(commit: Promise<void>): void {
    this.#inFlight -= 1;
    if (this.#tail === commit) this.#tail = undefined;
    this.#pump();
  }

  #settleIdle(): void {
    if (!this.#isIdle() || this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
