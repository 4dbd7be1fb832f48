/**
 * Availability regression (attacker review, case 4, medium): every
 * unauthenticated request wrote a ~2.3 KB record to the audit store; 5,000
 * of them added 11.4 MB, so a flood filled the chart's 1 GiB emptyDir after
 * ~470k requests (the pod is then evicted, losing a per-pod SQLite trail, or
 * strict mode answers 503 to everyone).
 *
 * Now requests refused before anyone was authenticated are stored per client
 * address and reason per minute: the first whole, the rest as one summary
 * record with their count. Every one is still counted in the metrics, and
 * authenticated requests are stored one record each as before.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { StoredRecord } from '../../../src/audit/store.js';
import { runCli } from '../../helpers/proxy-process.js';
import { PREDICT_PATH, startWorld, type World } from '../../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const FLOOD = 300;

let world: World;
let configPath: string;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvp-flood-'));
  configPath = join(dir, 'config.yaml');
  world = await startWorld({
    config: (d) => ({
      ...d,
      audit: { durability: 'strict', sinks: [{ type: 'stdout' }, { type: 'sqlite', path: join(dir, 'audit.db') }] },
    }),
    writeConfig: (config) => {
      writeFileSync(configPath, stringify(config));
      return configPath;
    },
  });
});
afterAll(async () => {
  await world?.close();
});

async function burst(count: number, headers: Record<string, string>): Promise<void> {
  for (let sent = 0; sent < count; sent += 50) {
    const statuses = await Promise.all(
      Array.from({ length: Math.min(50, count - sent) }, () =>
        world.raw('POST', PREDICT_PATH, { token: null, headers, body: '{}' }).then((r) => r.status),
      ),
    );
    expect(new Set(statuses)).toEqual(new Set([401]));
  }
}

function metricValue(text: string, pattern: RegExp): number {
  return text
    .split('\n')
    .filter((l) => pattern.test(l))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

describe('a flood of unauthenticated requests', () => {
  it('costs a bounded number of store records (first of each minute whole, the rest counted), while metrics count every one', async () => {
    await burst(FLOOD, {});
    await burst(FLOOD, { authorization: 'Bearer not.a.jwt' });
    // Control: authenticated requests keep one record each.
    for (let i = 0; i < 3; i++)
      expect((await world.call(PREDICT_PATH, { token: world.token('ml', 'trainer'), body: '{}' })).status).toBe(200);

    const metrics = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
    expect(metricValue(metrics, /^kube_vertex_proxy_requests_total\{.*decision="deny".*code="401"/)).toBeGreaterThanOrEqual(2 * FLOOD);

    // Shutdown writes the summaries of the open minute.
    expect(await world.proxy.stop('SIGTERM')).toBe(0);
    const result = await runCli(['audit', 'query', '--config', configPath, '--limit', '10000', '--format', 'json']);
    expect(result.stderr).toBe('');
    const records = result.stdout
      .trim()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as StoredRecord);

    for (const reason of ['missing-token', 'malformed-token']) {
      const ofReason = records.filter((r) => r.principal === undefined && r.reason === reason);
      // One whole record and one summary per minute window; the burst may straddle one minute boundary.
      expect(ofReason.length).toBeGreaterThanOrEqual(2);
      expect(ofReason.length).toBeLessThanOrEqual(4);
      const whole = ofReason.filter((r) => r.aggregated === undefined);
      const summaries = ofReason.filter((r) => r.aggregated !== undefined);
      expect(whole.length).toBeGreaterThanOrEqual(1);
      expect(whole.length + summaries.reduce((sum, r) => sum + (r.aggregated?.count ?? 0), 0)).toBe(FLOOD);
      for (const s of summaries) expect(s).toMatchObject({ decision: 'deny', status: 401, clientIp: '127.0.0.1', reason });
    }
    expect(records.filter((r) => r.principal === 'system:serviceaccount:ml:trainer' && r.status === 200)).toHaveLength(3);

    // The trail still verifies with the summary records in it.
    const verify = await runCli(['audit', 'verify', '--config', configPath]);
    expect(verify.code).toBe(0);
  });
});
