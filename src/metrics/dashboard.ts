/**
 * The Grafana dashboard the chart ships, as data: rows of panels, each with
 * its PromQL. `buildDashboard()` turns it into Grafana's dashboard JSON
 * (written to `helm/kube-vertex-proxy/dashboards/kube-vertex-proxy.json` by
 * `--write`), `panelTable()` into the docs' table of panels. A test checks
 * the committed JSON against this output and every query's metric names
 * against a scrape of a running proxy.
 *
 * A new panel is one entry in {@link DASHBOARD_ROWS}; a new row, one entry
 * with its panels.
 *
 * In: nothing. Out: JSON / Markdown; no error codes.
 *
 * @module
 */
import { writeFileSync } from 'node:fs';

export interface PanelQuery {
  /** PromQL. `$sel` stands for the dashboard's namespace/job filter, `$__rate_interval` is Grafana's. */
  readonly expr: string;
  readonly legend: string;
}

export interface PanelSpec {
  readonly title: string;
  readonly description: string;
  /** Grafana unit id: `reqps`, `s`, `percentunit`, `short`, `ops`, `bool`. */
  readonly unit: string;
  readonly queries: readonly PanelQuery[];
}

export interface RowSpec {
  readonly title: string;
  readonly panels: readonly PanelSpec[];
}

/** The label filter every query carries (dashboard variables). */
const SEL = 'namespace=~"$namespace", job=~"$job"';
const R = '[$__rate_interval]';
const m = (name: string, extra = '') => `kube_vertex_proxy_${name}{${SEL}${extra === '' ? '' : `, ${extra}`}}`;
const rate = (name: string, extra = '') => `rate(${m(name, extra)}${R})`;
const quantiles = (histogram: string, by = '') =>
  [0.5, 0.9, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (le${by === '' ? '' : `, ${by}`}) (${rate(`${histogram}_bucket`)}))`,
    legend: `p${q * 100}${by === '' ? '' : ` {{${by}}}`}`,
  }));

export const DASHBOARD_ROWS: readonly RowSpec[] = [
  {
    title: 'Traffic',
    panels: [
      {
        title: 'Requests by decision',
        description: 'Requests per second, allowed and denied (denied includes unauthenticated and refused-before-policy).',
        unit: 'reqps',
        queries: [{ expr: `sum by (decision) (${rate('requests_total')})`, legend: '{{decision}}' }],
      },
      {
        title: 'Requests by operation',
        description: 'Requests per second by Vertex AI operation (callbacks as callback:<route>).',
        unit: 'reqps',
        queries: [{ expr: `sum by (operation) (${rate('requests_total')})`, legend: '{{operation}}' }],
      },
      {
        title: 'Responses by status code',
        description: 'What callers got back, by HTTP status code.',
        unit: 'reqps',
        queries: [{ expr: `sum by (code) (${rate('requests_total')})`, legend: '{{code}}' }],
      },
      {
        title: 'Upstream status classes',
        description: 'What Vertex AI (and callback backends) answered, by status class; `none`: no answer (unreachable, timeout).',
        unit: 'reqps',
        queries: [
          { expr: `sum by (direction, status_class) (${rate('upstream_responses_total')})`, legend: '{{direction}} {{status_class}}' },
        ],
      },
      {
        title: 'Vertex AI 5xx ratio',
        description: 'Share of upstream answers that were 5xx or none at all.',
        unit: 'percentunit',
        queries: [
          {
            expr:
              `sum(${rate('upstream_responses_total', 'status_class=~"5xx|none"')}) / clamp_min(sum(` +
              `${rate('upstream_responses_total')}), 1e-9)`,
            legend: '5xx or no answer',
          },
        ],
      },
    ],
  },
  {
    title: 'Latency: the proxy versus Vertex AI',
    panels: [
      {
        title: "Proxy's own time (forwarded requests)",
        description: 'Latency minus upstream latency: authentication, policy, the strict audit commit, forwarding.',
        unit: 's',
        queries: quantiles('overhead_duration_seconds'),
      },
      {
        title: 'Vertex AI time',
        description: 'From the forwarded request to the end of the upstream response.',
        unit: 's',
        queries: quantiles('upstream_duration_seconds'),
      },
      {
        title: 'End-to-end p99 by operation',
        description: 'Arrival to end of response, as the caller sees it.',
        unit: 's',
        queries: [
          {
            expr: `histogram_quantile(0.99, sum by (le, operation) (${rate('request_duration_seconds_bucket')}))`,
            legend: '{{operation}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Authentication',
    panels: [
      {
        title: 'Token-cache hit ratio',
        description:
          'Share of bearer tokens found in the verified-token cache; a miss costs a signature check (and a TokenReview, when on).',
        unit: 'percentunit',
        queries: [
          {
            expr:
              `sum(${rate('token_cache_hits_total')}) / clamp_min(sum(${rate('token_cache_hits_total')}) + sum(` +
              `${rate('token_cache_misses_total')}), 1e-9)`,
            legend: 'hit ratio',
          },
        ],
      },
      {
        title: 'Unauthenticated requests',
        description: 'Requests refused with 401 per second.',
        unit: 'reqps',
        queries: [{ expr: `sum(${rate('requests_total', 'code="401"')})`, legend: '401' }],
      },
      {
        title: 'JWKS fetches',
        description: 'Issuer key-set fetches by issuer and result.',
        unit: 'ops',
        queries: [{ expr: `sum by (issuer, result) (${rate('jwks_fetches_total')})`, legend: '{{issuer}} {{result}}' }],
      },
      {
        title: 'JWKS age',
        description: "Age of each issuer's key set; grows while the issuer is unreachable (the last good keys are kept).",
        unit: 's',
        queries: [{ expr: `max by (issuer) (${m('jwks_age_seconds')})`, legend: '{{issuer}}' }],
      },
      {
        title: 'TokenReviews',
        description: 'TokenReview calls by result (accepted, rejected, error, busy).',
        unit: 'ops',
        queries: [{ expr: `sum by (result) (${rate('token_reviews_total')})`, legend: '{{result}}' }],
      },
      {
        title: 'Google credential',
        description: 'Replicas holding a usable Google access token, and token refreshes by result.',
        unit: 'short',
        queries: [
          { expr: `sum(${m('google_token_available')})`, legend: 'replicas with a token' },
          { expr: `sum by (result) (increase(${m('google_token_refreshes_total')}${R}))`, legend: 'refresh {{result}}' },
        ],
      },
    ],
  },
  {
    title: 'Namespace labels',
    panels: [
      {
        title: 'Label-view age',
        description: "0 while the informer's watch is open; else seconds since it last was.",
        unit: 's',
        queries: [{ expr: `max by (resource) (${m('informer_view_age_seconds')})`, legend: '{{resource}}' }],
      },
      {
        title: 'Label view stale',
        description: '1 while the namespace-label view is past kubernetes.maxStaleness (label-dependent decisions are refused).',
        unit: 'short',
        queries: [{ expr: `max(${m('namespace_labels_stale')})`, legend: 'stale' }],
      },
      {
        title: 'Informer restarts',
        description: 'Informer restarts after errors, by resource.',
        unit: 'short',
        queries: [{ expr: `sum by (resource) (increase(${m('informer_restarts_total')}${R}))`, legend: '{{resource}}' }],
      },
    ],
  },
  {
    title: 'Audit',
    panels: [
      {
        title: 'Audit queue depth',
        description: 'Records accepted and not yet committed to the stores.',
        unit: 'short',
        queries: [{ expr: `sum(${m('audit_queue_depth')})`, legend: 'queued' }],
      },
      {
        title: 'Audit drops, refusals and write failures',
        description: 'Records lost, requests refused because the store could not take their decision (strict), failed store transactions.',
        unit: 'ops',
        queries: [
          { expr: `sum(${rate('audit_records_dropped_total')})`, legend: 'dropped' },
          { expr: `sum(${rate('audit_refusals_total')})`, legend: 'refused' },
          { expr: `sum by (store) (${rate('audit_write_failures_total')})`, legend: 'write failures {{store}}' },
        ],
      },
      {
        title: 'Audit commit latency',
        description: 'Duration of one store transaction (group commit), p50 and p99 by store.',
        unit: 's',
        queries: [0.5, 0.99].map((q) => ({
          expr: `histogram_quantile(${q}, sum by (le, store) (${rate('audit_write_duration_seconds_bucket')}))`,
          legend: `p${q * 100} {{store}}`,
        })),
      },
    ],
  },
  {
    title: 'Policy',
    panels: [
      {
        title: 'Policy reloads',
        description: 'Reloads by result, and replicas whose last reload was refused as invalid.',
        unit: 'short',
        queries: [
          { expr: `sum by (result) (increase(${m('policy_reloads_total')}${R}))`, legend: '{{result}}' },
          { expr: `sum(${m('policy_reload_failing')})`, legend: 'replicas failing' },
        ],
      },
      {
        title: 'Policy versions in force',
        description: 'Replicas per policy checksum (more than one line: a rollout or a failed reload).',
        unit: 'short',
        queries: [{ expr: `count by (version) (${m('policy_info')})`, legend: '{{version}}' }],
      },
    ],
  },
  {
    title: 'Usage and limits',
    panels: [
      {
        title: 'Tokens by model',
        description:
          'Tokens per second Vertex AI reported in its responses, by model and kind (prompt, candidates, thoughts, cached, tool).',
        unit: 'short',
        queries: [{ expr: `sum by (model, type) (${rate('model_tokens_total', 'type!="total"')})`, legend: '{{model}} {{type}}' }],
      },
      {
        title: 'Limit decisions',
        description:
          'Requests counted by limit rules, by rule and result (admitted, refused, dry-run refusals, store unavailable); ' +
          'present when limits are configured.',
        unit: 'reqps',
        queries: [{ expr: `sum by (rule, result) (${rate('limit_decisions_total')})`, legend: '{{rule}} {{result}}' }],
      },
      {
        title: 'Limit store available',
        description:
          '1 while the limit store (Redis, or memory) answers; 0 during an outage (requests a limit applies to are refused ' +
          'or admitted uncounted, per onUnavailable).',
        unit: 'bool',
        queries: [{ expr: `min(${m('limit_store_available')})`, legend: 'available' }],
      },
    ],
  },
];

const PANEL_WIDTH = 8;
const PANEL_HEIGHT = 8;

/** Grafana's dashboard JSON (schema version 39), with datasource, namespace and job variables. */
export function buildDashboard(): Record<string, unknown> {
  const panels: Array<Record<string, unknown>> = [];
  let id = 1;
  let y = 0;
  for (const row of DASHBOARD_ROWS) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    row.panels.forEach((panel, i) => {
      const x = (i % 3) * PANEL_WIDTH;
      if (i > 0 && i % 3 === 0) y += PANEL_HEIGHT;
      panels.push({
        id: id++,
        type: 'timeseries',
        title: panel.title,
        description: panel.description,
        datasource: { type: 'prometheus', uid: '${datasource}' },
        gridPos: { h: PANEL_HEIGHT, w: PANEL_WIDTH, x, y },
        fieldConfig: { defaults: { unit: panel.unit, custom: { fillOpacity: 10 } }, overrides: [] },
        options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
        targets: panel.queries.map((q, j) => ({
          refId: String.fromCharCode(65 + j),
          datasource: { type: 'prometheus', uid: '${datasource}' },
          expr: q.expr,
          legendFormat: q.legend,
          // Exemplars (trace ids, when tracing is on) link a latency point to its trace.
          exemplar: q.expr.includes('_bucket'),
        })),
      });
    });
    y += PANEL_HEIGHT;
  }
  const labelVariable = (name: string, label: string) => ({
    name,
    label,
    type: 'query',
    datasource: { type: 'prometheus', uid: '${datasource}' },
    query: { query: `label_values(kube_vertex_proxy_requests_total, ${name})`, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    definition: `label_values(kube_vertex_proxy_requests_total, ${name})`,
    includeAll: true,
    allValue: '.*',
    multi: true,
    current: { selected: true, text: ['All'], value: ['$__all'] },
    refresh: 2,
    sort: 1,
  });
  return {
    uid: 'kube-vertex-proxy',
    title: 'kube-vertex-proxy',
    description: 'Traffic, latency (the proxy versus Vertex AI), authentication, namespace labels, audit and policy of kube-vertex-proxy.',
    tags: ['kube-vertex-proxy', 'vertex-ai'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    templating: {
      list: [
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
        labelVariable('namespace', 'Namespace'),
        labelVariable('job', 'Job'),
      ],
    },
    annotations: { list: [] },
    panels,
  };
}

/** The docs' table of panels (Markdown). */
export function panelTable(): string {
  const lines = ['| Row | Panel | What it shows | Metrics |', '|---|---|---|---|'];
  for (const row of DASHBOARD_ROWS) {
    for (const panel of row.panels) {
      const names = [
        ...new Set(panel.queries.flatMap((q) => [...q.expr.matchAll(/kube_vertex_proxy_[a-z0-9_]+/g)].map((x) => `\`${x[0]}\``))),
      ];
      lines.push(`| ${row.title} | ${panel.title} | ${panel.description.replace(/\|/g, '\\|')} | ${names.join(', ')} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  const [flag, file] = process.argv.slice(2);
  if (flag === '--write' && file !== undefined) writeFileSync(file, `${JSON.stringify(buildDashboard(), null, 2)}\n`);
  else if (flag === '--table') process.stdout.write(panelTable());
  else {
    process.stderr.write('usage: dashboard.js --write helm/kube-vertex-proxy/dashboards/kube-vertex-proxy.json | --table\n');
    process.exitCode = 2;
  }
}
