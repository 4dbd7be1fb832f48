/**
 * `node dist-bench/bench/commit-latency.js [--builds DIR,DIR] [--store sqlite|postgres] [--rate 700] [--seconds 3]
 * [--busy-us 500] [--rounds 3]`: strict audit's decision commit alone, in one process on one core (run it under
 * `taskset -c N`), before → after a change. Each build (a checkout with `dist/`, default this one) opens a fresh store;
 * requests arrive on a fixed schedule, each first takes `--busy-us` of this thread's CPU (standing in for the proxy's
 * own work per request, which the writer thread or the server competes with on the core), then appends its decision
 * entry and waits for it, then appends its final entry without waiting (as the proxy does after the response). Out, per
 * build and round: the decision wait from the request's due time (p50 / p99 / max, µs), the process's CPU per request,
 * transactions per request. Builds alternate within each round.
 *
 * PostgreSQL: a throw-away server (the tests' helper, fsync on) on the core this process runs on.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { AuditRecord } from '../src/audit/record.js';
import type { AuditStore } from '../src/audit/store.js';
import { startTestPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { percentiles } from './load.js';
import { cpuSample, processTree } from './proc.js';

const { values } = parseArgs({
  options: {
    builds: { type: 'string', default: resolve(import.meta.dirname, '../..') },
    store: { type: 'string', default: 'sqlite' },
    rate: { type: 'string', default: '700' },
    seconds: { type: 'string', default: '3' },
    'busy-us': { type: 'string', default: '500' },
    rounds: { type: 'string', default: '3' },
  },
});
const builds = values.builds.split(',').map((d) => resolve(d));
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const busyUs = Number(values['busy-us']);

function auditRecord(i: number): AuditRecord {
  return {
    time: new Date().toISOString(),
    requestId: `req-${i}`,
    direction: 'outbound',
    traceId: undefined,
    spanId: undefined,
    traceSampled: undefined,
    principal: 'system:serviceaccount:ml:trainer',
    issuer: 'cluster',
    namespace: 'ml',
    namespaceLabels: { team: 'ml', env: 'prod' },
    serviceAccount: 'trainer',
    pod: 'trainer-0',
    podUid: undefined,
    tokenId: undefined,
    operation: 'endpoints.predict',
    methodName: 'google.cloud.aiplatform.v1.PredictionService.Predict',
    permission: 'aiplatform.endpoints.predict',
    permissionType: 'DATA_READ',
    resource: 'projects/p/locations/us-central1/endpoints/1234567890',
    project: 'p',
    location: 'us-central1',
    decision: 'allow',
    ruleId: 'ml-predict',
    reason: 'allowed-by-rule',
    errorCode: undefined,
    policyVersion: 'v1',
    httpMethod: 'POST',
    path: '/v1/projects/p/locations/us-central1/endpoints/1234567890:predict',
    status: 200,
    upstreamStatus: 200,
    upstreamError: undefined,
    upstreamRequestId: undefined,
    longRunningName: undefined,
    latencyMs: 3,
    upstreamLatencyMs: 2,
    requestBytes: 120,
    responseBytes: 200,
    clientIp: '127.0.0.1',
    userAgent: 'bench',
  };
}

function spin(us: number): void {
  const until = performance.now() + us / 1000;
  while (performance.now() < until) {
    // the proxy's own work on this thread
  }
}

interface Outcome {
  readonly waitUs: Float64Array;
  readonly cpuUsPerRequest: number;
  readonly transactionsPerRequest: number;
}

/** Requests on a fixed schedule (due n / rate), each busy, then its decision appended and awaited, then its final appended. */
async function drive(store: AuditStore, count: () => number, durationMs: number, first: number): Promise<Outcome> {
  const waits = new Float64Array(Math.ceil((durationMs / 1000) * rate) + 1);
  let n = 0;
  let done = 0;
  const begin = performance.now();
  const total = Math.floor((durationMs / 1000) * rate);
  const cpu = process.cpuUsage();
  const transactions = count();
  await new Promise<void>((resolveAll) => {
    // One request per turn of the event loop at most: the answers (the writer's, the server's) come in between, as
    // they do between the proxy's requests.
    const tick = (): void => {
      {
        if (n >= total) return;
        const due = begin + (n * 1000) / rate;
        const now = performance.now();
        if (due > now) {
          if (due - now >= 2) setTimeout(tick, Math.floor(due - now) - 1);
          else setImmediate(tick);
          return;
        }
        const i = n++;
        spin(busyUs);
        const r = auditRecord(first + i);
        store.append([{ phase: 'decision', record: r }]).then(
          () => {
            waits[i] = (performance.now() - due) * 1000;
            void store.append([{ phase: 'final', record: r }]);
            if (++done === total) resolveAll();
          },
          (error: unknown) => {
            throw error;
          },
        );
        setImmediate(tick);
      }
    };
    tick();
  });
  const used = process.cpuUsage(cpu);
  return {
    waitUs: waits.subarray(0, total),
    cpuUsPerRequest: (used.user + used.system) / total,
    transactionsPerRequest: (count() - transactions) / total,
  };
}

async function openBuild(dir: string, where: { path: string } | { url: string; table: string }, onBatch: () => void): Promise<AuditStore> {
  if ('path' in where) {
    const { openSqliteStore } = (await import(
      pathToFileURL(join(dir, 'dist/audit/sqlite.js')).href
    )) as typeof import('../src/audit/sqlite.js');
    return openSqliteStore({ path: where.path, writer: 'bench', maxBatch: 500, onBatch: (_k, _s, _t, ok) => ok && onBatch() });
  }
  const { openPostgresStore } = (await import(
    pathToFileURL(join(dir, 'dist/audit/postgres.js')).href
  )) as typeof import('../src/audit/postgres.js');
  return openPostgresStore({
    url: where.url,
    table: where.table,
    maxConnections: 10,
    writer: 'bench',
    maxBatch: 500,
    onBatch: (_k, _s, _t, ok) => ok && onBatch(),
  });
}

async function main(): Promise<void> {
  let server: number | undefined;
  const postgres: TestPostgres | undefined =
    values.store === 'postgres' ? await startTestPostgres({ fsync: true, onProcess: (child) => (server = child.pid) }) : undefined;
  // The server's CPU (every backend): what a statement's parse and plan cost is spent there.
  const serverCpu = () => (server === undefined ? 0 : cpuSample(processTree(server)).cpuSeconds);
  const work = mkdtempSync(join(tmpdir(), 'kvp-commit-latency-'));
  const rows: string[] = [];
  try {
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const [b, dir] of builds.entries()) {
        let transactions = 0;
        const where =
          postgres === undefined ? { path: join(work, `r${round}-b${b}.db`) } : { url: postgres.url, table: `audit_r${round}_b${b}` };
        const store = await openBuild(dir, where, () => (transactions += 1));
        // Warm-up: the JIT, the statements, the file.
        await drive(store, () => transactions, 1000, 0);
        await store.append([]);
        const before = serverCpu();
        const out = await drive(store, () => transactions, seconds * 1000, 1_000_000);
        const serverUs = ((serverCpu() - before) * 1e6) / out.waitUs.length;
        await store.close();
        const p = percentiles(out.waitUs);
        const line =
          `round ${round + 1} build ${b} (${dir}): decision wait p50 ${p.p50} µs, p99 ${p.p99} µs, max ${p.max} µs, mean ${p.mean} µs; ` +
          `CPU ${out.cpuUsPerRequest.toFixed(0)} µs/request (${busyUs} of it the stand-in work); ` +
          `${out.transactionsPerRequest.toFixed(2)} transactions/request` +
          (server === undefined ? '' : `; server CPU ${serverUs.toFixed(0)} µs/request`);
        rows.push(line);
        process.stdout.write(`${line}\n`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    await postgres?.stop();
  }
}

await main();
