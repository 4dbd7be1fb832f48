import { describe, expect, it } from 'vitest';
import { InFlightLimiter } from './in-flight.js';

describe('InFlightLimiter', () => {
  it('admits up to the cap per key, refuses the next, and frees a slot on release', () => {
    const limiter = new InFlightLimiter(2);
    const a1 = limiter.tryAcquire('a');
    const a2 = limiter.tryAcquire('a');
    expect(a1).toBeTypeOf('function');
    expect(a2).toBeTypeOf('function');
    expect(limiter.tryAcquire('a')).toBeUndefined();
    // Another caller is not affected.
    expect(limiter.tryAcquire('b')).toBeTypeOf('function');
    a1?.();
    expect(limiter.inFlight('a')).toBe(1);
    expect(limiter.tryAcquire('a')).toBeTypeOf('function');
  });

  it('a release called twice gives back one slot only, and idle callers hold no memory', () => {
    const limiter = new InFlightLimiter(1);
    const release = limiter.tryAcquire('a') as () => void;
    const other = limiter.tryAcquire('b') as () => void;
    release();
    release();
    expect(limiter.inFlight('a')).toBe(0);
    other();
    expect(limiter.size).toBe(0);
  });

  it('0 turns the cap off', () => {
    const limiter = new InFlightLimiter(0);
    for (let i = 0; i < 1000; i++) expect(limiter.tryAcquire('a')).toBeTypeOf('function');
    expect(limiter.size).toBe(0);
  });
});
