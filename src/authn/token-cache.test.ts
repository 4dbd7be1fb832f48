import { describe, expect, it } from 'vitest';
import { TokenCache, tokenKey } from './token-cache.js';

describe('TokenCache', () => {
  it('keys by a SHA-256 of the token, never the token itself', () => {
    const key = tokenKey('header.payload.signature');
    expect(key).not.toContain('payload');
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(tokenKey('header.payload.signature')).toBe(key);
  });

  it('returns an entry until its expiry and never after', () => {
    const cache = new TokenCache<string>(10);
    cache.set('k', 'v', 1_000);
    expect(cache.get('k', 999)).toBe('v');
    expect(cache.get('k', 1_000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('holds at most maxEntries and evicts the least recently used', () => {
    const cache = new TokenCache<number>(3);
    cache.set('a', 1, 10_000);
    cache.set('b', 2, 10_000);
    cache.set('c', 3, 10_000);
    expect(cache.get('a', 0)).toBe(1); // a is now most recent
    cache.set('d', 4, 10_000);
    expect(cache.size).toBe(3);
    expect(cache.get('b', 0)).toBeUndefined();
    expect(cache.get('a', 0)).toBe(1);
    expect(cache.get('d', 0)).toBe(4);
  });

  it('never evicts an entry used again within half the bound of placements, and leaves the order alone for newer hits', () => {
    const cache = new TokenCache<number>(10);
    cache.set('hot', 0, 10_000);
    for (let i = 1; i <= 100; i++) {
      cache.set(`cold-${i}`, i, 10_000);
      if (i % 4 === 0) expect(cache.get('hot', 0)).toBe(0);
    }
    expect(cache.size).toBe(10);
    expect(cache.get('cold-90', 0)).toBeUndefined();
    expect(cache.get('cold-92', 0)).toBe(92);
    // A hit in the newer half does not reorder: 'a' (two placements old, bound 6) still goes before 'b' and 'c'.
    const order = new TokenCache<number>(6);
    for (const key of ['a', 'b', 'c']) order.set(key, 1, 10_000);
    expect(order.get('a', 0)).toBe(1);
    for (const key of ['d', 'e', 'f', 'g']) order.set(key, 1, 10_000);
    expect(order.get('a', 0)).toBeUndefined();
    expect(order.get('b', 0)).toBe(1);
  });

  it('a bound of 0 disables caching', () => {
    const cache = new TokenCache<number>(0);
    cache.set('a', 1, 10_000);
    expect(cache.get('a', 0)).toBeUndefined();
  });

  it('sweep drops expired entries', () => {
    const cache = new TokenCache<number>(10);
    cache.set('a', 1, 100);
    cache.set('b', 2, 300);
    expect(cache.sweep(200)).toBe(1);
    expect(cache.size).toBe(1);
  });
});
