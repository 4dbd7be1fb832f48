/**
 * Shutdown under load: SIGTERM to the real process in the middle of a steady
 * load (a few hundred requests per second, 24 keep-alive clients, Vertex AI
 * answering in ~20 ms). `/readyz` fails at once; requests keep being served
 * through `server.drainPeriod` (the clients keep sending for part of it, as
 * they would until the endpoint leaves the Service); requests in flight when
 * the listeners close finish; the audit store (relaxed: records queued after their response) is flushed; the process exits 0.
 * No request fails, and every request forwarded to Vertex AI has its complete
 * record in the store.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { StoredRecord } from '../../src/audit/store.js';
import { runCli } from '../helpers/proxy-process.js';
import { PREDICT_PATH, startWorld, type World } from '../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const CLIENTS = 24;

let world: World;
let configPath: string;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvp-shutdown-'));
  configPath = join(dir, 'config.yaml');
  world = await startWorld({
    config: (d) => ({
      ...d,
      server: { ...(d.server as object), drainPeriod: '2s', shutdownGrace: '10s' },
      audit: { durability: 'relaxed', sinks: [{ type: 'stdout' }, { type: 'sqlite', path: join(dir, 'audit.db') }] },
    }),
    writeConfig: (config) => {
      writeFileSync(configPath, stringify(config));
      return configPath;
    },
  });
  world.vertex.delayResponseMs = 5;
});
afterAll(async () => {
  await world?.close();
});

describe('SIGTERM under load', () => {
  it(
    'fails readiness at once, serves through the drain, finishes in-flight requests, flushes the store, exits 0; nothing ' +
      'fails, every forwarded request has its record',
    async () => {
      const tokens = Array.from({ length: CLIENTS }, (_, i) => world.token('ml', `load-${i}`));
      const outcomes: Array<number | string> = [];
      let sending = true;
      const started = Date.now();
      const clients = tokens.map(async (token) => {
        while (sending) {
          try {
            const response = await fetch(`${world.proxy.dataUrl}${PREDICT_PATH}`, {
              method: 'POST',
              headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
              body: '{"instances":[{"x":1}]}',
            });
            await response.arrayBuffer();
            outcomes.push(response.status);
          } catch (error) {
            outcomes.push(`error: ${(error as Error).message}`);
          }
        }
      });

      // Steady load first.
      await new Promise((r) => setTimeout(r, 1500));
      const beforeSignal = outcomes.length;
      const exited = new Promise<number | null>((resolve) => world.proxy.child.once('exit', (code) => resolve(code)));
      world.proxy.child.kill('SIGTERM');

      // Readiness fails at once (long before the 2 s drain is over).
      let readyz = 0;
      for (let i = 0; i < 40 && readyz !== 503; i++) {
        readyz = (await fetch(`${world.proxy.adminUrl}/readyz`)).status;
        if (readyz !== 503) await new Promise((r) => setTimeout(r, 25));
      }
      expect(readyz).toBe(503);

      // The clients keep sending for a while, as they would until the endpoint is removed everywhere; then stop.
      await new Promise((r) => setTimeout(r, 1000));
      sending = false;
      await Promise.all(clients);
      const code = await exited;
      const seconds = (Date.now() - started) / 1000;

      expect(code).toBe(0);
      const failed = outcomes.filter((o) => o !== 200);
      expect(failed).toEqual([]);
      expect(outcomes.length).toBeGreaterThan(beforeSignal);

      console.log(
        `shutdown under load: ${outcomes.length} requests in ${seconds.toFixed(1)} s (` +
          `${Math.round(outcomes.length / seconds)}/s), ${outcomes.length - beforeSignal} after SIGTERM`,
      );

      // Every request Vertex AI saw is in the store, complete (final entry written before exit).
      expect(world.vertex.requests.length).toBe(outcomes.length);
      const result = await runCli([
        'audit',
        'query',
        '--config',
        configPath,
        '--decision',
        'allow',
        '--limit',
        '100000',
        '--format',
        'json',
      ]);
      expect(result.stderr).toBe('');
      const records = result.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as StoredRecord)
        .filter((r) => r.principal?.startsWith('system:serviceaccount:ml:load-'));
      expect(records).toHaveLength(outcomes.length);
      expect(records.every((r) => r.complete && r.status === 200 && r.upstreamStatus === 200)).toBe(true);
    },
  );
});
