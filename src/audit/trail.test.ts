import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from './record.js';
import type { AuditSettings } from './settings.js';
import { openAuditTrail } from './trail.js';

const record = (i: number) =>
  ({ time: new Date(0).toISOString(), requestId: `r${i}`, decision: 'allow', status: 200 }) as unknown as AuditRecord;

describe('audit trail', () => {
  it('bounds the queue of records waiting for the store: overflow is dropped, counted and logged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvp-trail-'));
    const lines: string[] = [];
    const logger = pino(
      {},
      new Writable({
        write: (chunk: Buffer, _e, cb) => {
          lines.push(chunk.toString());
          cb();
        },
      }),
    );
    const counts = { dropped: 0, written: 0 };
    const settings: AuditSettings = {
      durability: 'relaxed',
      stdout: false,
      stores: [{ type: 'sqlite', path: join(dir, 'a.db') }],
      replicaId: 'w',
      retentionMs: 0,
      retentionIntervalMs: 3_600_000,
      maxBatch: 100,
      commitDelayMs: 10,
      maxQueue: 10,
    };
    const trail = await openAuditTrail(settings, logger, {
      batch: (_store, size, _s, ok) => ok && (counts.written += size),
      refused: () => undefined,
      dropped: (n) => (counts.dropped += n),
    });
    for (let i = 0; i < 50; i++) trail.recordFinal(record(i));
    expect(trail.queueDepth()).toBe(10);
    await trail.close();
    expect(counts).toEqual({ dropped: 40, written: 10 });
    expect(lines.some((l) => l.includes('audit records dropped') && l.includes('queue-full'))).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('strict mode: a store that cannot take the decision entry rejects it and counts a refusal; every commit wait is timed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvp-trail-'));
    let refused = 0;
    const commits: Array<[number, boolean]> = [];
    const trail = await openAuditTrail(
      {
        durability: 'strict',
        stdout: false,
        stores: [{ type: 'sqlite', path: join(dir, 'a.db') }],
        replicaId: 'w',
        retentionMs: 0,
        retentionIntervalMs: 3_600_000,
        maxBatch: 100,
        commitDelayMs: 10,
        maxQueue: 10,
      },
      pino({ level: 'silent' }),
      {
        batch: () => undefined,
        refused: () => (refused += 1),
        dropped: () => undefined,
        decisionCommit: (seconds, ok) => commits.push([seconds, ok]),
      },
    );
    await trail.recordDecision(record(1));
    // A record that cannot be stored (a circular value cannot be serialized) stands in for a failing store.
    const broken = record(2) as unknown as Record<string, unknown>;
    broken.self = broken;
    await expect(trail.recordDecision(broken as unknown as AuditRecord)).rejects.toThrow();
    expect(refused).toBe(1);
    expect(commits.map(([, ok]) => ok)).toEqual([true, false]);
    for (const [seconds] of commits) expect(seconds).toBeGreaterThan(0);
    await trail.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('retention deletes records older than the configured age when it sweeps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvp-trail-'));
    const base: AuditSettings = {
      durability: 'relaxed',
      stdout: false,
      stores: [{ type: 'sqlite', path: join(dir, 'a.db') }],
      replicaId: 'w',
      retentionMs: 0,
      retentionIntervalMs: 3_600_000,
      maxBatch: 100,
      commitDelayMs: 10,
      maxQueue: 100,
    };
    const silent = pino({ level: 'silent' });
    const metrics = { batch: () => undefined, refused: () => undefined, dropped: () => undefined };
    const keep = await openAuditTrail(base, silent, metrics);
    for (let i = 0; i < 5; i++) keep.recordFinal(record(i));
    await keep.close();
    await new Promise((r) => setTimeout(r, 20));
    // Reopened with a 10 ms retention: the sweep at start removes the five records written before.
    const sweeping = await openAuditTrail({ ...base, retentionMs: 10 }, silent, metrics);
    let left = 5;
    for (let i = 0; i < 100 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      left = (await sweeping.queryStore!.query({}, 10)).records.length;
    }
    expect(left).toBe(0);
    await sweeping.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
