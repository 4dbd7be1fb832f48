/**
 * The load generator's open-loop mode (bench/load.ts), driven over its IPC
 * protocol as bench/run.ts drives it, against a loopback server that stalls
 * its first answer. Open loop times each request from when it was due, so
 * the requests queued behind the stall are charged for the wait
 * (coordinated omission corrected, as wrk2 does). The bounds asserted follow
 * from the stall itself, whatever the machine's speed.
 */
import { fork } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadResult, LoadSpec } from '../../bench/load.js';

const LOAD = join(resolve(import.meta.dirname, '../..'), 'dist-bench', 'bench', 'load.js');
const STALL_MS = 300;

let server: Server;
let origin: string;
let answered = 0;

beforeAll(async () => {
  if (!existsSync(LOAD)) throw new Error(`${LOAD} is missing: run npm run build:bench (npm test does)`);
  server = createServer((req, res) => {
    req.resume();
    // The first request of each run stalls; the rest are answered at once.
    const delay = answered++ === 0 ? STALL_MS : 0;
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), delay);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((done) => server.close(() => done()));
});

function runLoad(spec: LoadSpec): Promise<LoadResult> {
  answered = 0;
  const child = fork(LOAD, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const result = new Promise<LoadResult>((resolveResult, reject) => {
    child.on('message', (message: { type: string; result?: LoadResult; message?: string }) => {
      if (message.type === 'warm') child.send({ type: 'go' });
      else if (message.type === 'result' && message.result) resolveResult(message.result);
      else reject(new Error(message.message));
    });
    child.once('exit', (code) => reject(new Error(`load generator exited (${code})`)));
    child.send({ type: 'run', spec });
  });
  // It exits by itself after the result; stopped here whatever happened.
  return result.finally(() => child.kill());
}

const spec = (extra: Partial<LoadSpec>): LoadSpec => ({
  origin: '',
  method: 'GET',
  path: '/',
  headers: {},
  token: 'x',
  connections: 1,
  warmupMs: 0,
  durationMs: 800,
  ...extra,
});

describe('bench/load.ts open loop', () => {
  it('times the requests due during a stalled answer from their schedule, and counts them as sent late', async () => {
    // One connection, one request due every 20 ms; the first answer takes 300 ms.
    const result = await runLoad(spec({ origin, ratePerSecond: 50 }));
    expect(result.errors).toBe(0);
    expect(result.offeredRps).toBe(50);
    // Due at 20, 40, …, 140 ms: none can go before the stalled answer is in (≥ 300 ms).
    expect(result.lateStarts).toBeGreaterThanOrEqual(7);
    // The one due at 20 ms waited at least 280 ms for its turn; closed-loop timing would have said ~0.
    const requests = result.requests;
    expect(requests).toBeGreaterThanOrEqual(8);
    expect(result.latencyUs.max).toBeGreaterThanOrEqual(STALL_MS * 1000);
    // At least 7 of at most 41 requests took ≥ 160 ms counted from their schedule: above the 99th percentile's rank.
    expect(result.latencyUs.p99).toBeGreaterThanOrEqual(160_000);
  });

  it('keeps one schedule for the pool: a stalled answer delays only its own request while another connection is free', async () => {
    // Ten connections, one request due every 20 ms; the first answer takes 300 ms, the rest go out on the other connections
    // (enough of them that a pause of this process or the generator's leaves some free).
    const result = await runLoad(spec({ origin, ratePerSecond: 50, connections: 10 }));
    expect(result.errors).toBe(0);
    // Seven fall due during the stall: on the stalled connection's own schedule all would wait; here (nearly) none does.
    expect(result.lateStarts).toBeLessThan(7);
    expect(result.latencyUs.max).toBeGreaterThanOrEqual(STALL_MS * 1000);
    // Only the stalled one: the median request was answered at once (far under the stall, whatever the machine).
    expect(result.latencyUs.p50).toBeLessThan(STALL_MS * 1000);
    // The generator's own lateness is reported beside (how much it is depends on the machine).
    expect(result.generator?.sendLagP99Us).toBeGreaterThanOrEqual(0);
  });

  it('closed loop reports neither an offered rate nor late starts', async () => {
    const result = await runLoad(spec({ origin, durationMs: 400 }));
    expect(result.errors).toBe(0);
    expect(result.offeredRps).toBeUndefined();
    expect(result.lateStarts).toBeUndefined();
  });
});
