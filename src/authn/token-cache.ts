/**
 * Bounded cache of verified tokens. The key is a SHA-256 of the token, never
 * the token itself, so a heap dump holds no bearer credential. An entry never
 * outlives the token's `exp`; when the bound is reached, the entry that has
 * gone unused longest goes first.
 *
 * Recency is kept in the Map's insertion order, but a hit moves its entry to
 * the end only when it has fallen into the older half (more than half the
 * bound of placements since it was last placed). Moving it on every hit
 * (delete + set) made the Map rebuild its hash table every few hits of the
 * same token: garbage on every request, kept alive by the long-lived Map
 * into the old generation (measured: about 125 bytes a request promoted at
 * 6,000 requests/s, with one token). So an entry is evicted only after
 * going unused for at least half the bound of placements less one (strict
 * LRU: the bound less one); new tokens are what makes placements, so a busy
 * pod's token stays.
 *
 * @module
 */
import { hash } from 'node:crypto';

interface CacheEntry<V> {
  readonly value: V;
  /** Epoch ms after which the entry is invalid. */
  readonly expiresAt: number;
  /** The cache's placement count when this entry was last put at the end of the order. */
  placedAt: number;
}

/** One-shot SHA-256 (no Hash object): the cheapest way to key the cache. */
export function tokenKey(token: string): string {
  return hash('sha256', token, 'base64url');
}

export class TokenCache<V> {
  readonly #max: number;
  readonly #entries = new Map<string, CacheEntry<V>>();
  /** Placements at the end of the order so far (sets and moves). */
  #placements = 0;

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
    if (this.#placements - entry.placedAt > this.#max / 2) {
      this.#entries.delete(key);
      entry.placedAt = ++this.#placements;
      this.#entries.set(key, entry);
    }
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
    this.#entries.set(key, { value, expiresAt, placedAt: ++this.#placements });
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
