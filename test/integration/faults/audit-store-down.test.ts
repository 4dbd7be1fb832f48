/**
 * Fault: the audit store (PostgreSQL) goes down while the proxy serves.
 *
 * - strict (the default): 503, nothing forwarded, recovery when the store is
 *   back — proven in test/integration/audit.test.ts ("strict mode when the
 *   store is down"), against the same throw-away PostgreSQL.
 * - relaxed: requests keep being served; records wait in the bounded queue
 *   (`audit.maxQueue`) and are retried; what does not fit is dropped and
 *   counted (`kube_vertex_proxy_audit_records_dropped_total`); when the store
 *   is back, the queued records are written. Every record of the outage is
 *   either stored or counted as dropped, none silently lost.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { until } from '../../helpers/poll.js';
import { startTestPostgres, type TestPostgres } from '../../helpers/postgres.js';
import { PREDICT_PATH, startWorld, type World } from '../../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const MAX_QUEUE = 5;
const SENT = 20;

let store: TestPostgres;
let world: World;
beforeAll(async () => {
  store = await startTestPostgres({ fsync: false });
  world = await startWorld({
    config: (d) => ({
      ...d,
      audit: { durability: 'relaxed', maxQueue: MAX_QUEUE, sinks: [{ type: 'stdout' }, { type: 'postgres', url: store.url }] },
    }),
  });
});
afterAll(async () => {
  await world?.close();
  await store?.stop();
});

async function dropped(): Promise<number> {
  const text = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('kube_vertex_proxy_audit_records_dropped_total'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

async function storedFor(principal: string): Promise<number> {
  const client = new pg.Client({ connectionString: store.url });
  await client.connect();
  try {
    const result = await client.query<{ n: string }>(
      "SELECT count(*) AS n FROM kvp_audit_records WHERE principal = $1 AND phase = 'final'",
      [principal],
    );
    return Number(result.rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

describe('relaxed mode with the audit store down', () => {
  it('serves every request, queues up to maxQueue, counts the drops, and writes the queue once the store is back', async () => {
    expect((await world.call(PREDICT_PATH, { body: '{}' })).status).toBe(200);
    await store.pause();
    const droppedBefore = await dropped();
    const token = world.token('ml', 'during-outage');
    const statuses = await Promise.all(
      Array.from({ length: SENT }, () => world.call(PREDICT_PATH, { token, body: '{}' }).then((r) => r.status)),
    );
    expect(statuses).toEqual(Array.from({ length: SENT }, () => 200));
    // Records beyond the queue are dropped and counted, not held without bound.
    await until(async () => ((await dropped()) - droppedBefore >= SENT - MAX_QUEUE ? true : undefined), 'the drops to be counted');
    // Readiness follows the store's last write, which fails once a queued record is tried.
    await until(
      async () => ((await fetch(`${world.proxy.adminUrl}/readyz`)).status === 503 ? true : undefined),
      'readiness to report the store down',
    );

    await store.start();
    const principal = 'system:serviceaccount:ml:during-outage';
    const settled = await until(
      async () => {
        const lost = (await dropped()) - droppedBefore;
        const kept = await storedFor(principal).catch(() => -1);
        return kept >= 1 && kept + lost === SENT ? { kept, lost } : undefined;
      },
      'every record of the outage to be stored or counted as dropped',
      30_000,
    );
    expect(settled.kept).toBeLessThanOrEqual(MAX_QUEUE);
    await until(
      async () => ((await fetch(`${world.proxy.adminUrl}/readyz`)).status === 200 ? true : undefined),
      'readiness after the store is back',
    );
  });
});
