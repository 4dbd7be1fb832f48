import { describe, expect, it } from 'vitest';
import { FloodAggregator, MAX_KEYS } from './flood.js';
import type { AuditRecord } from './record.js';

function record(fields: Partial<AuditRecord>): AuditRecord {
  return {
    requestId: 'r',
    time: new Date(0).toISOString(),
    decision: 'deny',
    reason: 'missing-token',
    status: 401,
    clientIp: '10.0.0.1',
    principal: undefined,
    ...fields,
  } as AuditRecord;
}

describe('FloodAggregator', () => {
  it(
    'passes authenticated records through; keeps the first unauthenticated one per address and reason per window whole and ' +
      'counts the rest',
    () => {
      let now = 0;
      const out: AuditRecord[] = [];
      const flood = new FloodAggregator({ emit: (r) => out.push(r), now: () => now, windowMs: 1000 });
      flood.offer(record({ principal: 'system:serviceaccount:ml:a', decision: 'allow', status: 200 }));
      for (let i = 0; i < 5; i++) flood.offer(record({}));
      flood.offer(record({ reason: 'malformed-token' }));
      flood.offer(record({ clientIp: '10.0.0.2' }));
      expect(out.map((r) => r.principal ?? r.reason)).toEqual([
        'system:serviceaccount:ml:a',
        'missing-token',
        'malformed-token',
        'missing-token',
      ]);
      // Next window: the finished one's summary, then a new first record.
      now = 1500;
      flood.offer(record({}));
      expect(out.at(-2)?.aggregated?.count).toBe(4);
      expect(out.at(-1)?.aggregated).toBeUndefined();
      flood.offer(record({}));
      flood.stop();
      expect(out.at(-1)?.aggregated?.count).toBe(1);
      expect(flood.size).toBe(0);
    },
  );

  it('tracks at most MAX_KEYS addresses × reasons; the rest share one entry per reason', () => {
    const out: AuditRecord[] = [];
    const flood = new FloodAggregator({ emit: (r) => out.push(r), now: () => 0 });
    for (let i = 0; i < MAX_KEYS + 500; i++) flood.offer(record({ clientIp: `ip-${i}` }));
    expect(flood.size).toBe(MAX_KEYS + 1);
    expect(out).toHaveLength(MAX_KEYS + 1);
    flood.stop();
    expect(out.at(-1)?.aggregated?.count).toBe(499);
  });
});
