/**
 * The dashboard and the alert rules the chart ships: every query is valid
 * PromQL (promtool) and selects only metrics a running proxy exposes (its
 * real /metrics), the rules pass `promtool check rules` and their unit tests
 * (`promtool test rules`), the committed dashboard JSON and the docs' panel
 * table are what the dashboard module generates, and the chart renders both
 * from these very files.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDashboard, DASHBOARD_ROWS, panelTable } from '../../src/metrics/dashboard.js';
import { parseKubeYaml, validateKubeObjects } from '../helpers/kube-validate.js';
import { exposedNames, metricNames } from '../helpers/promql.js';
import { REPO_ROOT } from '../helpers/proxy-process.js';
import { findHelm, runTool } from '../helpers/tools.js';
import { startWorld, type World } from '../helpers/world.js';

const CHART = join(REPO_ROOT, 'helm', 'kube-vertex-proxy');
const RULES = join(CHART, 'rules', 'kube-vertex-proxy.rules.yaml');
const RULE_TESTS = join(REPO_ROOT, 'test', 'alerts', 'kube-vertex-proxy.rules.test.yaml');
const DASHBOARD = join(CHART, 'dashboards', 'kube-vertex-proxy.json');
const DOC = join(REPO_ROOT, 'docs', 'operations-observability.md');

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string; annotations?: Record<string, string> }> }>;
}

const rules = parse(readFileSync(RULES, 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules);
const panels = DASHBOARD_ROWS.flatMap((row) => row.panels.map((panel) => ({ row: row.title, ...panel })));

/** Grafana's variables, as a PromQL parser cannot take them. */
function concrete(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$namespace', '.*').replaceAll('$job', '.*');
}

describe('PromQL helpers', () => {
  it('reads the metric names of an expression, not its functions, labels, ranges or keywords', () => {
    expect(
      metricNames(
        'sum by (le, operation) (rate(a_bucket{x="y{z}", job=~"$job"}[$__rate_interval])) / on (job) group_left (pod) ' +
          'b_total and c offset 5m > 1e-9 or histogram_quantile(0.5, d)',
      ),
    ).toEqual(['a_bucket', 'b_total', 'c', 'd']);
  });

  it('lists what an exposition can contain, histograms expanded', () => {
    const names = exposedNames('# HELP h x\n# TYPE h histogram\n# TYPE c_total counter\nc_total 1\n');
    expect([...names].sort()).toEqual(['c_total', 'h', 'h_bucket', 'h_count', 'h_sum']);
  });
});

describe('against a running proxy', () => {
  let world: World;
  let exposed: Set<string>;
  beforeAll(async () => {
    // A limit rule, so the limit metrics (limit_decisions_total, limit_store_available) are exposed too.
    world = await startWorld({
      config: (defaults) => ({
        ...defaults,
        limits: { rules: [{ id: 'ml-requests', subjects: { namespaces: ['ml'] }, requestsPerMinute: 1000 }] },
      }),
    });
    exposed = exposedNames(await (await fetch(`${world.proxy.adminUrl}/metrics`)).text());
  });
  afterAll(async () => {
    await world?.close();
  });

  it.each(panels.map((p) => [`${p.row} / ${p.title}`, p] as const))('dashboard panel %s selects only exposed metrics', (_name, panel) => {
    expect(panel.queries.length).toBeGreaterThan(0);
    for (const query of panel.queries) {
      const names = metricNames(concrete(query.expr));
      expect(names.length, query.expr).toBeGreaterThan(0);
      for (const name of names) expect(exposed.has(name), `${name} (in ${query.expr}) is not on /metrics`).toBe(true);
    }
  });

  it.each(alerts.map((r) => [r.alert as string, r] as const))('alert %s selects only exposed metrics', (_name, rule) => {
    const names = metricNames(rule.expr);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(exposed.has(name), `${name} (in ${rule.alert}) is not on /metrics`).toBe(true);
  });
});

describe('promtool', () => {
  it('checks the alert rules', () => {
    const result = runTool('promtool', ['check', 'rules', RULES]);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`SUCCESS: ${alerts.length} rules found`);
  });

  it("passes every alert's unit test, and every alert has one and a runbook", () => {
    const result = runTool('promtool', ['test', 'rules', RULE_TESTS]);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('SUCCESS');
    const tests = parse(readFileSync(RULE_TESTS, 'utf8')) as {
      tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
    };
    const doc = readFileSync(DOC, 'utf8');
    for (const rule of alerts) {
      const cases = tests.tests.flatMap((t) => t.alert_rule_test).filter((c) => c.alertname === rule.alert);
      // A firing case and a quiet case for each alert.
      expect(
        cases.some((c) => c.exp_alerts.length > 0),
        `${rule.alert} never fires in a test`,
      ).toBe(true);
      expect(
        cases.some((c) => c.exp_alerts.length === 0),
        `${rule.alert} is never quiet in a test`,
      ).toBe(true);
      const anchor = (rule.alert as string).toLowerCase();
      expect(rule.annotations?.runbook_url).toBe(`docs/operations-observability.md#${anchor}`);
      expect(doc, `no runbook section for ${rule.alert}`).toMatch(new RegExp(`^### ${rule.alert}$`, 'm'));
    }
  });

  it('finds every dashboard query valid PromQL', () => {
    const recording: RuleFile = {
      groups: [
        {
          name: 'dashboard',
          rules: panels.flatMap((p, i) => p.queries.map((q, j) => ({ record: `dashboard:panel_${i}_${j}`, expr: concrete(q.expr) }))),
        },
      ],
    };
    const file = join(mkdtempSync(join(tmpdir(), 'kvp-dashboard-')), 'dashboard.rules.yaml');
    writeFileSync(file, stringify(recording));
    const result = runTool('promtool', ['check', 'rules', file]);
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });
});

describe('generated and shipped', () => {
  it('the committed dashboard JSON is what src/metrics/dashboard.ts builds (node dist/metrics/dashboard.js --write …)', () => {
    expect(JSON.parse(readFileSync(DASHBOARD, 'utf8'))).toEqual(buildDashboard());
  });

  it('the docs list every panel (node dist/metrics/dashboard.js --table)', () => {
    expect(readFileSync(DOC, 'utf8')).toContain(panelTable());
  });

  it(
    'the chart renders the dashboard ConfigMap and the PrometheusRule from these files (valid Kubernetes objects), and ' +
      'neither by default',
    async () => {
      const helm = findHelm();
      const render = (args: string[]) => {
        const result = runTool(helm, ['template', 'kvp', CHART, '--namespace', 'vertex-system', ...args]);
        expect(result.status, result.stderr).toBe(0);
        return parseKubeYaml(result.stdout);
      };
      const defaults = render([]);
      expect(
        defaults.filter((o) => o.kind === 'PrometheusRule' || (o.kind === 'ConfigMap' && o.metadata?.name?.endsWith('-dashboard'))),
      ).toEqual([]);

      const on = render([
        '--set',
        'grafanaDashboard.enabled=true',
        '--set',
        'grafanaDashboard.folder=Vertex AI',
        '--set',
        'prometheusRule.enabled=true',
      ]);
      await validateKubeObjects(on);
      const dashboard = on.find((o) => o.kind === 'ConfigMap' && o.metadata?.name === 'kvp-kube-vertex-proxy-dashboard') as unknown as {
        metadata: { labels: Record<string, string> };
        data: Record<string, string>;
      };
      expect(dashboard.metadata.labels.grafana_dashboard).toBe('1');
      expect((dashboard.metadata as { annotations?: Record<string, string> }).annotations?.grafana_folder).toBe('Vertex AI');
      expect(JSON.parse(dashboard.data['kube-vertex-proxy.json'] as string)).toEqual(buildDashboard());
      const rule = on.find((o) => o.kind === 'PrometheusRule') as unknown as { spec: RuleFile };
      expect(rule.spec).toEqual(rules);

      const published = render([
        '--set',
        'prometheusRule.enabled=true',
        '--set',
        'prometheusRule.runbookBaseUrl=https://example.com/runbooks.md',
      ]);
      const urls = (published.find((o) => o.kind === 'PrometheusRule') as unknown as { spec: RuleFile }).spec.groups[0]!.rules.map(
        (r) => r.annotations?.runbook_url,
      );
      expect(urls).toEqual(alerts.map((r) => `https://example.com/runbooks.md#${(r.alert as string).toLowerCase()}`));
    },
  );
});
