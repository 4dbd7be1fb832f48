/**
 * A real Prometheus (the Debian `prometheus` package's server) scrapes a real
 * proxy with tracing on: it negotiates OpenMetrics, accepts the exposition,
 * stores the trace ids as exemplars (`exemplar-storage`), and evaluates every
 * dashboard query and alert expression without an error.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_ROWS } from '../../src/metrics/dashboard.js';
import { freeLoopbackPort } from '../../dev/standins/loopback.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { until } from '../helpers/poll.js';
import { REPO_ROOT } from '../helpers/proxy-process.js';
import { PREDICT_PATH, startWorld, type World } from '../helpers/world.js';

const RULES = join(REPO_ROOT, 'helm', 'kube-vertex-proxy', 'rules', 'kube-vertex-proxy.rules.yaml');

interface QueryAnswer {
  status: string;
  error?: string;
  data?: { result: Array<{ metric: Record<string, string>; value?: [number, string] }> };
}

let receiver: OtlpReceiver;
let world: World;
let prometheus: ChildProcess | undefined;
let prometheusUrl: string;
let prometheusLog = '';

async function query(expr: string): Promise<QueryAnswer> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query: expr }).toString()}`);
  return (await response.json()) as QueryAnswer;
}

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  world = await startWorld({
    env: { OTEL_BSP_SCHEDULE_DELAY: '50' },
    config: (defaults) => ({ ...defaults, tracing: { enabled: true, endpoint: receiver.url, sampleRatio: 1 } }),
  });
  const dir = mkdtempSync(join(tmpdir(), 'kvp-prometheus-'));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      scrape_configs: [{ job_name: 'kvp', static_configs: [{ targets: [new URL(world.proxy.adminUrl).host] }] }],
    }),
  );
  // Prometheus cannot report a port it picked itself: a free one is chosen just before it starts.
  const port = await freeLoopbackPort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--enable-feature=exemplar-storage',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prometheus.stdout?.on('data', (c: Buffer) => (prometheusLog += c.toString()));
  prometheus.stderr?.on('data', (c: Buffer) => (prometheusLog += c.toString()));
  await until(
    async () => (await fetch(`${prometheusUrl}/-/ready`).catch(() => undefined))?.status === 200,
    `Prometheus ready\n${prometheusLog}`,
    30_000,
  );
}, 60_000);

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus?.once('exit', resolve));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await world?.close();
  await receiver?.close();
});

describe('a real Prometheus scraping the proxy (tracing on)', () => {
  it("scrapes OpenMetrics and stores the request's trace id as an exemplar of the duration histogram", async () => {
    const traceId = 'abcdef0123456789abcdef0123456789';
    expect((await world.call(PREDICT_PATH, { body: '{}', headers: { traceparent: `00-${traceId}-0123456789abcdef-01` } })).status).toBe(
      200,
    );
    const target = await until(async () => {
      const answer = (await (await fetch(`${prometheusUrl}/api/v1/targets`)).json()) as {
        data: { activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string }> };
      };
      const t = answer.data.activeTargets[0];
      return t?.health === 'up' ? t : undefined;
    }, 'the proxy target up');
    expect(target.lastError).toBe('');
    const exemplars = await until(async () => {
      const query = new URLSearchParams({
        query: 'kube_vertex_proxy_request_duration_seconds_bucket',
        start: String(Date.now() / 1000 - 300),
        end: String(Date.now() / 1000 + 60),
      });
      const url = `${prometheusUrl}/api/v1/query_exemplars?${query.toString()}`;
      const answer = (await (await fetch(url)).json()) as { data: Array<{ exemplars: Array<{ labels: Record<string, string> }> }> };
      const all = answer.data.flatMap((series) => series.exemplars);
      return all.some((e) => e.labels.trace_id === traceId) ? all : undefined;
    }, `an exemplar with trace_id ${traceId}\n${prometheusLog}`);
    expect(exemplars.find((e) => e.labels.trace_id === traceId)?.labels.span_id).toMatch(/^[0-9a-f]{16}$/);
    // Counters arrive under their usual names (OpenMetrics `_total` handling).
    const requests = await query('kube_vertex_proxy_requests_total{decision="allow"}');
    expect(requests.data?.result.length).toBeGreaterThan(0);
  });

  it('evaluates every dashboard query and alert expression without an error', async () => {
    // Two scrapes at least, so rates have samples.
    await until(
      async () => Number((await query('count_over_time(up{job="kvp"}[1m])')).data?.result[0]?.value?.[1] ?? 0) >= 3 || undefined,
      'three scrapes',
    );
    const exprs = [
      ...DASHBOARD_ROWS.flatMap((row) =>
        row.panels.flatMap((p) =>
          p.queries.map((q) => q.expr.replaceAll('$__rate_interval', '1m').replaceAll('$namespace', '.*').replaceAll('$job', '.*')),
        ),
      ),
      ...(parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ expr: string }> }> }).groups.flatMap((g) =>
        g.rules.map((r) => r.expr),
      ),
    ];
    for (const expr of exprs) {
      const answer = await query(expr);
      expect(answer.status, `${expr}: ${answer.error ?? ''}`).toBe('success');
    }
    const decisions = await query(
      DASHBOARD_ROWS[0]!.panels[0]!.queries[0]!.expr.replaceAll('$__rate_interval', '1m')
        .replaceAll('$namespace', '.*')
        .replaceAll('$job', '.*'),
    );
    expect(decisions.data?.result.map((r) => r.metric.decision)).toContain('allow');
  });
});
