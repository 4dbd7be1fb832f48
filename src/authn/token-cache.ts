/**
 * Bounded cache of verified tokens. The key is a SHA-256 of the token, never
 * the token itself, so a heap dump holds no bearer credential. An entry never
 * outlives the token's `exp`; the least recently used entry goes first when
 * the bound is reached.
 *
 * @module
 */
import { hash } from 'node:crypto';

export interface CacheEntry<V> {
  readonly value: V;
  /** Epoch ms after which the entry is invalid. */
  readonly expiresAt: number;
}

/** One-shot SHA-256 (no Hash object): the cheapest way to key the cache. */
export function tokenKey(token: string): string {
  return hash('sha256', token, 'base64url');
}

export class TokenCache<V> {
  readonly #max: number;
  readonly #entries = new Map<string, CacheEntry<V>>();

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  get maxEntries(): number {
    return this.#max;
  }

  get(key: string, now: number): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    // Re-insert to keep Map order = recency (LRU).
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V, expiresAt: number): void {
    if (this.#max === 0) return;
    this.#entries.delete(key);
    while (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { value, expiresAt });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Drops every entry whose value matches (revocation); returns how many went. */
  deleteWhere(predicate: (value: V) => boolean): number {
    let removed = 0;
    for (const [key, entry] of this.#entries) {
      if (predicate(entry.value)) {
        this.#entries.delete(key);
        removed++;
      }
    }
    return removed;
  }

  /** Drops expired entries; called periodically so idle memory is released. */
  sweep(now: number): number {
    let removed = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#entries.delete(key);
        removed++;
      }
    }
    return removed;
  }

  clear(): void {
    this.#entries.clear();
  }
}
