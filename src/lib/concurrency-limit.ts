/**
 * At most `limit` tasks run at once; the others wait in arrival order, each
 * for at most `maxWaitMs`, and never more than `maxWaiting` of them. Past
 * either bound `run` rejects with {@link LimitExceeded}, which the caller
 * turns into its own refusal: a burst is smoothed, never queued without end.
 *
 * A task's slot is held until its promise settles, so the task itself must
 * be bounded in time (the callers give theirs a deadline).
 *
 * @module
 */

export class LimitExceeded extends Error {
  override readonly name = 'LimitExceeded';
  constructor(readonly why: 'queue-full' | 'wait-timeout') {
    super(why === 'queue-full' ? 'too many tasks waiting' : 'no free slot in time');
  }
}

export interface ConcurrencyLimitOptions {
  readonly limit: number;
  readonly maxWaiting: number;
  readonly maxWaitMs: number;
}

export class ConcurrencyLimit {
  readonly #options: ConcurrencyLimitOptions;
  #active = 0;
  /** A Set keeps insertion order (first come, first served) and lets a timed-out waiter leave from the middle. */
  readonly #waiting = new Set<() => void>();

  constructor(options: ConcurrencyLimitOptions) {
    this.#options = options;
  }

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#waiting.size;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.#acquire();
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  #acquire(): Promise<void> {
    if (this.#active < this.#options.limit) {
      this.#active += 1;
      return Promise.resolve();
    }
    if (this.#waiting.size >= this.#options.maxWaiting) return Promise.reject(new LimitExceeded('queue-full'));
    return new Promise((resolve, reject) => {
      const start = () => {
        clearTimeout(timer);
        this.#active += 1;
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiting.delete(start);
        reject(new LimitExceeded('wait-timeout'));
      }, this.#options.maxWaitMs);
      timer.unref();
      this.#waiting.add(start);
    });
  }

  #release(): void {
    this.#active -= 1;
    const next = this.#waiting.values().next();
    if (next.done === true) return;
    this.#waiting.delete(next.value);
    next.value();
  }
}
