/**
 * Where limit counters live. Two operations, each atomic over all the
 * counters it names, so that concurrent requests (on one replica or many)
 * can never both take the last unit of a limit:
 *
 * - `acquire`: check every counter; when no enforced one is exhausted, count
 *   the request (requests per minute) and take a concurrency slot. Token
 *   counters are only read: tokens are charged when the response has ended.
 * - `settle`: charge a finished request's tokens, and free its slots.
 *
 * The memory store is this process's; the Redis store (redis-store.ts) is
 * shared by every replica.
 *
 * @module
 */

/** One counter in an `acquire`. */
/** How long a concurrency slot lives without renewal (the Redis store's lease; here so the limiter need not load the Redis client). */
export const LEASE_MS = 60_000;

export interface StoreCheck {
  readonly key: string;
  /** `r` requests in a window, `t` tokens in a window, `c` requests in flight. */
  readonly type: 'r' | 't' | 'c';
  readonly limit: number;
  /** A dry-run check never blocks (but is counted). */
  readonly enforce: boolean;
  /** How long the counter must outlive now (window end + margin). */
  readonly ttlMs: number;
}

export interface AcquireResult {
  /** Index of the first enforced check that is exhausted; -1 when admitted. */
  readonly blocked: number;
  /** Per check: whether it had room. */
  readonly ok: readonly boolean[];
  /** Per check: the counter after this request was counted (or as found, when blocked). */
  readonly used: readonly number[];
}

export interface SettleCharge {
  readonly key: string;
  readonly tokens: number;
  readonly ttlMs: number;
}

export interface LimitStore {
  readonly kind: 'memory' | 'redis';
  /** `member` names this request's concurrency slots (unique per request). @throws when the store cannot answer */
  acquire(checks: readonly StoreCheck[], member: string, nowMs: number): Promise<AcquireResult> | AcquireResult;
  /** @throws when the store cannot answer (the charge is then lost; counted by the caller) */
  settle(charges: readonly SettleCharge[], slots: readonly string[], member: string): Promise<void> | void;
  /** Whether the store answered last time (memory: always). */
  available(): boolean;
  close(): Promise<void>;
}

/** Counters in this process. Expired windows are swept every minute. */
export function createMemoryStore(now: () => number = Date.now): LimitStore {
  const counters = new Map<string, { value: number; expiresAt: number }>();
  const slots = new Map<string, Set<string>>();
  const sweep = setInterval(() => {
    const t = now();
    for (const [key, counter] of counters) if (counter.expiresAt <= t) counters.delete(key);
  }, 60_000);
  sweep.unref();
  const read = (key: string, t: number): number => {
    const counter = counters.get(key);
    return counter === undefined || counter.expiresAt <= t ? 0 : counter.value;
  };
  return {
    kind: 'memory',
    acquire(checks, member, nowMs) {
      const ok: boolean[] = [];
      const used: number[] = [];
      let blocked = -1;
      checks.forEach((check, i) => {
        const value = check.type === 'c' ? (slots.get(check.key)?.size ?? 0) : read(check.key, nowMs);
        ok.push(value < check.limit);
        used.push(value);
        if (!ok[i] && check.enforce && blocked === -1) blocked = i;
      });
      if (blocked === -1) {
        checks.forEach((check, i) => {
          if (check.type === 'r') {
            const value = read(check.key, nowMs) + 1;
            counters.set(check.key, { value, expiresAt: nowMs + check.ttlMs });
            used[i] = value;
          } else if (check.type === 'c') {
            let set = slots.get(check.key);
            if (set === undefined) slots.set(check.key, (set = new Set()));
            set.add(member);
            used[i] = set.size;
          }
        });
      }
      return { blocked, ok, used };
    },
    settle(charges, slotKeys, member) {
      const t = now();
      for (const charge of charges) {
        if (charge.tokens <= 0) continue;
        counters.set(charge.key, { value: read(charge.key, t) + charge.tokens, expiresAt: t + charge.ttlMs });
      }
      for (const key of slotKeys) {
        const set = slots.get(key);
        if (set === undefined) continue;
        set.delete(member);
        if (set.size === 0) slots.delete(key);
      }
    },
    available: () => true,
    // eslint-disable-next-line @typescript-eslint/require-await -- the store interface is async; keep a throw a rejection
    async close() {
      clearInterval(sweep);
    },
  };
}
