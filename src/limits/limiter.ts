/**
 * Admission under the limit rules: before a request is forwarded, every rule
 * that applies to it is checked in one atomic store call; when it ends, its
 * tokens are charged and its concurrency slots freed.
 *
 * - Requests per minute and concurrency count the request at admission.
 * - Token limits are checked against what is already charged and charged
 *   from the response's reported usage when it ends: an admitted stream is
 *   never cut, the next request is refused.
 * - Dry-run rules are counted and reported like the others but never refuse.
 * - A refusal is {@link limitExceeded}: 429 RESOURCE_EXHAUSTED with
 *   google.rpc.QuotaFailure and google.rpc.RetryInfo, and `Retry-After`.
 * - When the store cannot answer: `failClosed` refuses (503
 *   ERR_LIMIT_STORE_UNAVAILABLE), `failOpen` admits uncounted.
 *
 * @module
 * @throws ProxyError ERR_LIMIT_EXCEEDED (429), ERR_LIMIT_STORE_UNAVAILABLE (503)
 */
import { ProxyError } from '../errors.js';
import type { PolicyAction, PolicySubject } from '../policy/decision.js';
import { applicableLimits, checksFor, TOKEN_KINDS, type CompiledLimit, type LimitCheck, type LimitKind } from './rules.js';
import type { LimitStore, StoreCheck } from './store.js';
import { LEASE_MS } from './store.js';

export type LimitResult = 'allowed' | 'refused' | 'dry_run_refused' | 'store_unavailable';

/** Where admissions are reported (metrics). */
export interface LimitObserver {
  decision(rule: string, result: LimitResult): void;
  /** What is left of a limit in the bucket the request was counted in. */
  remaining(rule: string, kind: LimitKind, remaining: number, subject: PolicySubject): void;
  /** A finished request's tokens or slots could not be written (store unavailable). */
  settleFailed(): void;
}

/** A refused request: the error to answer with, and what the audit record says. */
export interface Refusal {
  readonly error: ProxyError;
  readonly rules: readonly string[];
  /** The enforced rule that refused; undefined when the store was unavailable (fail closed). */
  readonly rule: string | undefined;
  readonly dryRunRefusals: readonly string[];
}

/** An admitted request: what applied, and how to close its account. */
export interface Admission {
  readonly rules: readonly string[];
  readonly dryRunRefusals: readonly string[];
  /** Called once when the response has ended, with the tokens to charge. */
  settle(this: void, tokens: number): void;
}

export interface LimiterOptions {
  readonly rules: readonly CompiledLimit[];
  readonly store: LimitStore;
  readonly onUnavailable: 'failClosed' | 'failOpen';
  readonly observer: LimitObserver;
  readonly now?: () => number;
}

/** Counters outlive their window by this much (clock skew between replicas). */
const WINDOW_MARGIN_MS = 60_000;
const TOKEN_KIND_SET: ReadonlySet<LimitKind> = new Set(TOKEN_KINDS);

function storeType(kind: LimitKind): StoreCheck['type'] {
  if (kind === 'concurrentRequests') return 'c';
  return kind === 'requestsPerMinute' ? 'r' : 't';
}

function ttlOf(check: LimitCheck, nowMs: number): number {
  return check.windowEndMs === undefined ? LEASE_MS * 2 : check.windowEndMs - nowMs + WINDOW_MARGIN_MS;
}

/** The 429 for an exhausted limit, in Google's shape (QuotaFailure, RetryInfo) with `Retry-After`. */
export function limitExceeded(check: LimitCheck, nowMs: number): ProxyError {
  const retryAfter = check.windowEndMs === undefined ? 1 : Math.max(1, Math.ceil((check.windowEndMs - nowMs) / 1000));
  return new ProxyError(
    'ERR_LIMIT_EXCEEDED',
    'RESOURCE_EXHAUSTED',
    `Limit "${check.rule.id}" reached: ${check.kind} ${check.limit} for ${check.bucket}. Retry after ${retryAfter}s.`,
    {
      reason: 'limit-exceeded',
      headers: { 'retry-after': String(retryAfter) },
      metadata: { limit: check.rule.id, kind: check.kind },
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
          violations: [{ subject: `limit ${check.rule.id}, ${check.bucket}`, description: `${check.kind} ${check.limit} exhausted` }],
        },
        { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${retryAfter}s` },
      ],
    },
  );
}

function storeUnavailable(cause: unknown): ProxyError {
  return new ProxyError('ERR_LIMIT_STORE_UNAVAILABLE', 'UNAVAILABLE', 'The limit store is unavailable.', {
    cause,
    reason: 'limit-store-unavailable',
    headers: { 'retry-after': '1' },
  });
}

export class Limiter {
  readonly #rules: readonly CompiledLimit[];
  readonly #store: LimitStore;
  readonly #failOpen: boolean;
  readonly #observer: LimitObserver;
  readonly #now: () => number;

  constructor(options: LimiterOptions) {
    this.#rules = options.rules;
    this.#store = options.store;
    this.#failOpen = options.onUnavailable === 'failOpen';
    this.#observer = options.observer;
    this.#now = options.now ?? Date.now;
  }

  /** The rules that apply to a request (cheap; what `can-i` reports too). */
  applicable(subject: PolicySubject, action: PolicyAction): CompiledLimit[] {
    return this.#rules.length === 0 ? [] : applicableLimits(this.#rules, subject, action);
  }

  /**
   * Admits (an {@link Admission}) or refuses (a {@link Refusal} carrying
   * ERR_LIMIT_EXCEEDED or ERR_LIMIT_STORE_UNAVAILABLE). `rules` come from
   * {@link applicable} and must not be empty. Never rejects.
   */
  async admit(rules: readonly CompiledLimit[], subject: PolicySubject, member: string): Promise<Admission | Refusal> {
    const nowMs = this.#now();
    const checks = checksFor(rules, subject, nowMs);
    const ids = rules.map((r) => r.id);
    let result;
    try {
      result = await this.#store.acquire(
        checks.map((c) => ({ key: c.key, type: storeType(c.kind), limit: c.limit, enforce: c.rule.enforce, ttlMs: ttlOf(c, nowMs) })),
        member,
        nowMs,
      );
    } catch (error) {
      for (const id of ids) this.#observer.decision(id, 'store_unavailable');
      if (!this.#failOpen) return { error: storeUnavailable(error), rules: ids, rule: undefined, dryRunRefusals: [] };
      return this.#admission(rules, subject, [], member, []);
    }
    const dryRunRefusals = new Set<string>();
    const refusedBy = new Set<string>();
    checks.forEach((check, i) => {
      if (result.ok[i]) return;
      if (check.rule.enforce) refusedBy.add(check.rule.id);
      else dryRunRefusals.add(check.rule.id);
    });
    for (const rule of rules) {
      this.#observer.decision(rule.id, refusedBy.has(rule.id) ? 'refused' : dryRunRefusals.has(rule.id) ? 'dry_run_refused' : 'allowed');
    }
    checks.forEach((check, i) => {
      const used = result.used[i] as number;
      this.#observer.remaining(check.rule.id, check.kind, Math.max(0, check.limit - used), subject);
    });
    if (result.blocked !== -1) {
      const check = checks[result.blocked] as LimitCheck;
      return { error: limitExceeded(check, nowMs), rules: ids, rule: check.rule.id, dryRunRefusals: [...dryRunRefusals] };
    }
    const slots = checks.filter((c) => c.kind === 'concurrentRequests').map((c) => c.key);
    return this.#admission(rules, subject, slots, member, [...dryRunRefusals]);
  }

  #admission(
    rules: readonly CompiledLimit[],
    subject: PolicySubject,
    slots: readonly string[],
    member: string,
    dryRunRefusals: readonly string[],
  ): Admission {
    const tokenRules = rules.filter((r) => r.limits.some((l) => TOKEN_KIND_SET.has(l.kind)));
    let settled = false;
    return {
      rules: rules.map((r) => r.id),
      dryRunRefusals,
      settle: (tokens: number) => {
        if (settled) return;
        settled = true;
        if (slots.length === 0 && (tokens <= 0 || tokenRules.length === 0)) return;
        const nowMs = this.#now();
        const charges =
          tokens <= 0
            ? []
            : checksFor(tokenRules, subject, nowMs, TOKEN_KIND_SET).map((c) => ({ key: c.key, tokens, ttlMs: ttlOf(c, nowMs) }));
        try {
          const done = this.#store.settle(charges, slots, member);
          if (done instanceof Promise) done.catch(() => this.#observer.settleFailed());
        } catch {
          this.#observer.settleFailed();
        }
      },
    };
  }
}
