/**
 * The console's pages as HTML: one layout, one function per view. Pure:
 * data in, {@link SafeHtml} out; every value escaped by the `html` tag.
 *
 * The markup is written for keyboard and screen-reader use: a skip link,
 * one `h1` per page, labelled fields, tables with captions and header
 * cells, the current page marked with `aria-current`, status messages in a
 * live region, and the chart's numbers also as a table.
 *
 * @module
 */
import type { StoredRecord, SummaryRow, UsageSummaryRow, VerifyResult } from '../audit/store.js';
import { CONSOLE_ICON, CONSOLE_SCRIPT, CONSOLE_STYLES } from './assets.js';
import { renderTimeline, type TimeBucket } from './chart.js';
import { html, type SafeHtml } from './html.js';
import { consoleUrl, type ConsoleParams } from './params.js';

export const BASE = '/audit/ui';

/** How the viewer signed in: behind IAP, with a Kubernetes token (page script), or not yet. */
export type AuthMode = 'iap' | 'token' | 'none';

export interface Viewer {
  readonly auth: AuthMode;
  /** The principal's name (email or `system:serviceaccount:…`); undefined before sign-in. */
  readonly name: string | undefined;
}

type Section = 'search' | 'summary' | 'chain' | undefined;

/* eslint-disable max-len -- the html`` templates from here on are the pages the console serves, kept one element per line as written */

export function page(viewer: Viewer, title: string, section: Section, body: SafeHtml, options: { nav?: boolean } = {}): string {
  const nav = options.nav ?? viewer.auth !== 'none';
  const link = (id: Section, href: string, text: string) =>
    html`<li><a href="${href}"${id === section ? html` aria-current="page"` : ''}>${text}</a></li>`;
  return `<!doctype html>\n${
    html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · kube-vertex-proxy audit</title>
<link rel="stylesheet" href="${BASE}/static/${CONSOLE_STYLES.name}">
<link rel="icon" href="${BASE}/static/${CONSOLE_ICON.name}" type="image/svg+xml">
<script src="${BASE}/static/${CONSOLE_SCRIPT.name}" defer></script>
</head>
<body data-auth="${viewer.auth}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<span class="brand">kube-vertex-proxy · audit</span>
${nav ? html`<nav aria-label="Views"><ul>${link('search', `${BASE}/`, 'Search')}${link('summary', `${BASE}/summary`, 'Summary')}${link('chain', `${BASE}/chain`, 'Chain')}</ul></nav>` : ''}
${viewer.name === undefined ? '' : html`<span class="who">Signed in as <strong>${viewer.name}</strong> (${viewer.auth === 'iap' ? 'Google, through IAP' : 'Kubernetes token'})${viewer.auth === 'token' ? html`<button type="button" id="sign-out" class="secondary">Sign out</button>` : ''}</span>`}
</header>
<main id="main">
<p id="status" role="status" aria-live="polite"></p>
${body}
</main>
</body>
</html>`.text
  }\n`;
}

function time(iso: string | undefined): SafeHtml {
  if (iso === undefined) return html``;
  return html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>`;
}

function badge(decision: string): SafeHtml {
  return html`<span class="badge ${decision === 'allow' ? 'allow' : 'deny'}">${decision}</span>`;
}

export function recordHref(record: Pick<StoredRecord, 'requestId' | 'time'>): string {
  return `${BASE}/records/${encodeURIComponent(record.requestId)}?at=${Date.parse(record.time)}`;
}

const FIELDS: ReadonlyArray<{ name: keyof ConsoleParams; label: string; hint?: string }> = [
  { name: 'principal', label: 'Principal', hint: 'system:serviceaccount:ml:* or an email' },
  { name: 'serviceAccount', label: 'Service account', hint: 'namespace/name, e.g. ml/*' },
  { name: 'namespace', label: 'Namespace' },
  { name: 'permission', label: 'Permission', hint: 'aiplatform.endpoints.*' },
  { name: 'operation', label: 'Operation', hint: 'endpoints.predict' },
  { name: 'resource', label: 'Resource', hint: 'projects/p/locations/l/endpoints/*' },
  { name: 'status', label: 'HTTP status' },
  { name: 'rule', label: 'Rule id' },
  { name: 'from', label: 'From', hint: '24h, 7d or 2026-12-01T00:00:00Z' },
  { name: 'to', label: 'To', hint: 'exclusive; empty: now' },
];

function filterForm(action: string, params: ConsoleParams, submit: string): SafeHtml {
  const fields = FIELDS.map(
    (f) =>
      html`<div><label for="f-${f.name}">${f.label}</label><input id="f-${f.name}" name="${f.name}" value="${params[f.name] ?? ''}"${f.hint ? html` aria-describedby="h-${f.name}"` : ''} autocomplete="off" spellcheck="false">${
        f.hint ? html`<span id="h-${f.name}" class="hint">${f.hint}</span>` : ''
      }</div>`,
  );
  const decision = params.decision ?? '';
  const option = (value: string, text: string) =>
    html`<option value="${value}"${decision === value ? html` selected` : ''}>${text}</option>`;
  return html`<form class="filters" method="get" action="${action}" role="search" aria-label="Filters">
${fields}
<div><label for="f-decision">Decision</label><select id="f-decision" name="decision">${option('', 'any')}${option('allow', 'allow')}${option('deny', 'deny')}</select></div>
<div class="actions"><button type="submit">${submit}</button><a href="${action}">Clear filters</a><span class="hint">* matches any run of characters.</span></div>
</form>`;
}

function errorNotice(message: string | undefined): SafeHtml {
  return message === undefined ? html`` : html`<p class="notice error" role="alert">${message}</p>`;
}

export interface SearchView {
  readonly params: ConsoleParams;
  readonly records: readonly StoredRecord[];
  readonly nextPageToken: string | undefined;
  readonly paged: boolean;
  readonly error?: string;
}

export function searchView(viewer: Viewer, view: SearchView): string {
  const { params, records } = view;
  const rows = records.map(
    (r) => html`<tr>
<td><a href="${recordHref(r)}">${time(r.time)}</a></td>
<td>${badge(r.decision)}</td>
<td class="num">${r.complete ? r.status : 'incomplete'}</td>
<td class="mono">${r.principal ?? '—'}</td>
<td class="mono">${r.operation ?? '—'}</td>
<td class="mono">${r.resource ?? r.path}</td>
<td class="mono">${r.ruleId ?? '—'}</td>
<td>${r.reason}</td>
</tr>`,
  );
  const body = html`<h1>Audit records</h1>
${filterForm(`${BASE}/`, params, 'Search')}
${errorNotice(view.error)}
<div class="toolbar">
<span>Export these filters (up to ${EXPORT_LIMIT.toLocaleString('en')} records):</span>
<a href="${consoleUrl(`${BASE}/export.csv`, params)}" data-download="audit-records.csv">CSV</a>
<a href="${consoleUrl(`${BASE}/export.json`, params)}" data-download="audit-records.jsonl">JSON lines</a>
<a href="${consoleUrl(`${BASE}/summary`, params)}">Summary of these filters</a>
</div>
<table>
<caption>${records.length === 0 ? 'No records match these filters.' : `${records.length} record${records.length === 1 ? '' : 's'}, newest first${view.paged ? ' (older page)' : ''}`}</caption>
<thead><tr><th scope="col">Time (UTC)</th><th scope="col">Decision</th><th scope="col" class="num">Status</th><th scope="col">Principal</th><th scope="col">Operation</th><th scope="col">Resource</th><th scope="col">Rule</th><th scope="col">Reason</th></tr></thead>
<tbody>${rows}</tbody>
</table>
<nav class="toolbar" aria-label="Pages">
${view.paged ? html`<a href="${consoleUrl(`${BASE}/`, params)}">Newest records</a>` : ''}
${view.nextPageToken === undefined ? '' : html`<a href="${consoleUrl(`${BASE}/`, params, { pageToken: view.nextPageToken })}" rel="next">Older records</a>`}
</nav>`;
  return page(viewer, 'Search', 'search', body);
}

/** Most records one export returns. */
export const EXPORT_LIMIT = 50_000;

export interface RecordView {
  readonly record: StoredRecord;
  /** The rule that decided, as it is in the policy now (undefined: no rule decided, or it is gone). */
  readonly rule: unknown;
  readonly policyVersion: string;
}

export function recordView(viewer: Viewer, { record, rule, policyVersion }: RecordView): string {
  const fields = Object.entries(record).map(
    ([name, value]) =>
      html`<dt>${name}</dt><dd>${value === undefined || value === null ? '—' : typeof value === 'object' ? JSON.stringify(value) : String(value)}</dd>`,
  );
  const changed = record.policyVersion !== undefined && record.policyVersion !== policyVersion;
  const ruleSection =
    record.ruleId === undefined
      ? html`<p>No rule decided this request: ${record.reason === 'no-matching-rule' ? 'no rule matched, so the default deny applied' : html`it was refused before the policy was asked (<span class="mono">${record.reason}</span>)`}.</p>`
      : html`<p>Rule <strong class="mono">${record.ruleId}</strong> decided: ${badge(record.decision)} (<span class="mono">${record.reason}</span>).</p>
${
  rule === undefined
    ? html`<p class="notice">The current policy has no rule with this id any more.</p>`
    : html`${changed ? html`<p class="notice">The policy has changed since this request (then <span class="mono">${record.policyVersion.slice(0, 12)}</span>, now <span class="mono">${policyVersion.slice(0, 12)}</span>); the rule as it is now:</p>` : html`<p>The rule, from the policy in force (<span class="mono">${policyVersion.slice(0, 12)}</span>):</p>`}
<pre>${JSON.stringify(rule, null, 2)}</pre>`
}`;
  const body = html`<h1>Record ${record.requestId}</h1>
<div class="toolbar">
${record.principal === undefined ? '' : html`<a href="${consoleUrl(`${BASE}/`, { principal: record.principal })}">Same principal</a>`}
${record.resource === undefined ? '' : html`<a href="${consoleUrl(`${BASE}/`, { resource: record.resource })}">Same resource</a>`}
<a href="${`${BASE}/`}">All records</a>
</div>
<h2>The decision</h2>
${ruleSection}
<h2>Every field</h2>
<dl class="fields">${fields}</dl>`;
  return page(viewer, `Record ${record.requestId}`, 'search', body);
}

export interface SummaryView {
  readonly params: ConsoleParams;
  readonly from: number;
  readonly to: number;
  readonly rows: readonly SummaryRow[];
  readonly buckets: readonly TimeBucket[];
  /** Requests and tokens by namespace × model (calls whose responses report usage). */
  readonly usage?: readonly UsageSummaryRow[];
  readonly error?: string;
}

export function summaryView(viewer: Viewer, view: SummaryView): string {
  const total = view.buckets.reduce((sum, b) => sum + b.allow + b.deny, 0);
  const denied = view.buckets.reduce((sum, b) => sum + b.deny, 0);
  const rows = view.rows.map(
    (r) =>
      html`<tr><td class="mono">${r.principal ?? '—'}</td><td class="mono">${r.permission ?? '—'}</td><td>${badge(r.decision)}</td><td class="num">${r.count}</td></tr>`,
  );
  const usage = (view.usage ?? []).map(
    (u) =>
      html`<tr><td class="mono">${u.namespace ?? '—'}</td><td class="mono">${u.model ?? '—'}</td><td class="num">${u.requests}</td><td class="num">${u.promptTokens}</td><td class="num">${u.candidatesTokens + u.thoughtsTokens}</td><td class="num">${u.totalTokens}</td></tr>`,
  );
  const data = view.buckets.map(
    (b) => html`<tr><td>${time(new Date(b.from).toISOString())}</td><td class="num">${b.allow}</td><td class="num">${b.deny}</td></tr>`,
  );
  const body = html`<h1>Summary</h1>
${filterForm(`${BASE}/summary`, view.params, 'Summarize')}
${errorNotice(view.error)}
<p>From ${time(new Date(view.from).toISOString())} to ${time(new Date(view.to).toISOString())} UTC: <strong>${total}</strong> requests, <strong>${denied}</strong> denied. <a href="${consoleUrl(`${BASE}/`, view.params)}">See these records</a></p>
<h2 id="chart-title">Requests over time, by decision</h2>
<div class="legend" aria-hidden="true"><span class="allow">allowed</span><span class="deny">denied</span></div>
${renderTimeline(view.buckets, 'chart-title')}
<details><summary>Chart data</summary>
<table><caption>Requests per interval</caption><thead><tr><th scope="col">Interval start (UTC)</th><th scope="col" class="num">Allowed</th><th scope="col" class="num">Denied</th></tr></thead><tbody>${data}</tbody></table>
</details>
<h2>By principal, permission and decision</h2>
<table>
<caption>${view.rows.length === 0 ? 'No records in this range.' : 'Counts, largest first'}</caption>
<thead><tr><th scope="col">Principal</th><th scope="col">Permission</th><th scope="col">Decision</th><th scope="col" class="num">Requests</th></tr></thead>
<tbody>${rows}</tbody>
</table>
<h2>Tokens by namespace and model</h2>
<table>
<caption>${usage.length === 0 ? 'No calls with token usage in this range.' : 'Tokens Vertex AI reported, largest first'}</caption>
<thead><tr><th scope="col">Namespace</th><th scope="col">Model</th><th scope="col" class="num">Requests</th><th scope="col" class="num">Prompt tokens</th><th scope="col" class="num">Output tokens</th><th scope="col" class="num">Total tokens</th></tr></thead>
<tbody>${usage}</tbody>
</table>`;
  return page(viewer, 'Summary', 'summary', body);
}

export interface VerifyRun {
  readonly at: number;
  readonly by: string;
  readonly from: number | undefined;
  readonly to: number | undefined;
  readonly result?: VerifyResult;
  /** Set when the store could not be read. */
  readonly failed?: boolean;
}

function range(from: number | undefined, to: number | undefined): SafeHtml {
  if (from === undefined && to === undefined) return html`the whole trail`;
  return html`entries written ${from === undefined ? html`from the start` : html`from ${time(new Date(from).toISOString())}`} ${to === undefined ? html`until now` : html`until ${time(new Date(to).toISOString())}`}`;
}

export function chainView(
  viewer: Viewer,
  view: { params: ConsoleParams; last: VerifyRun | undefined; justRan: boolean; error?: string },
): string {
  const { last } = view;
  const result = last?.result;
  const status =
    last === undefined
      ? html`<p class="notice">No verification has run on this replica since it started. Run one below.</p>`
      : last.failed === true || result === undefined
        ? html`<p class="notice error" role="alert">The verification of ${range(last.from, last.to)} at ${time(new Date(last.at).toISOString())} could not read the audit store.</p>`
        : result.ok
          ? html`<p class="notice ok"${view.justRan ? html` role="alert"` : ''}><strong>Chain intact.</strong> ${result.entries} entries from ${result.writers} writer${result.writers === 1 ? '' : 's'} checked (${range(last.from, last.to)}), at ${time(new Date(last.at).toISOString())} by ${last.by}.</p>`
          : html`<p class="notice error" role="alert"><strong>Chain broken.</strong> Writer <span class="mono">${result.broken?.writer}</span>, entry ${result.broken?.seq} (row ${result.broken?.id}): ${result.broken?.problem}. Checked ${range(last.from, last.to)} at ${time(new Date(last.at).toISOString())} by ${last.by}.</p>`;
  const body = html`<h1>Chain status</h1>
<p>Every audit entry carries a SHA-256 hash over the previous entry's hash and its own content, chained per writer (replica). Verifying recomputes the chains and reports the first broken link; it is the same check as <span class="mono">kube-vertex-proxy audit verify</span>.</p>
<h2>Last verification</h2>
${status}
${errorNotice(view.error)}
<h2>Verify a range</h2>
<form class="filters" method="get" action="${BASE}/chain" aria-label="Range to verify">
<div><label for="c-from">From (written time)</label><input id="c-from" name="from" value="${view.params.from ?? ''}" aria-describedby="c-from-hint" autocomplete="off"><span id="c-from-hint" class="hint">24h, 7d or RFC 3339; empty: the start</span></div>
<div><label for="c-to">To</label><input id="c-to" name="to" value="${view.params.to ?? ''}" aria-describedby="c-to-hint" autocomplete="off"><span id="c-to-hint" class="hint">empty: now</span></div>
<div class="actions"><button type="submit" class="secondary">Choose this range</button></div>
</form>
<form method="post" action="${consoleUrl(`${BASE}/chain/verify`, { ...(view.params.from === undefined ? {} : { from: view.params.from }), ...(view.params.to === undefined ? {} : { to: view.params.to }) })}">
<p>Range to verify: ${view.params.from === undefined && view.params.to === undefined ? html`the whole trail (this also checks the list of requests in flight)` : html`entries written from <span class="mono">${view.params.from ?? 'the start'}</span> until <span class="mono">${view.params.to ?? 'now'}</span>`}.</p>
<button type="submit">Verify this range</button>
</form>`;
  return page(viewer, 'Chain status', 'chain', body);
}

export function signInView(error: string | undefined): string {
  const body = html`<h1>Sign in to the audit console</h1>
<div class="signin">
${errorNotice(error)}
<p>Behind Identity-Aware Proxy you are signed in with your Google account and never see this page. Here (for example through <span class="mono">kubectl port-forward</span>), sign in with a Kubernetes service-account token whose account the policy grants <span class="mono">audit.read</span>:</p>
<pre>kubectl create token AUDITOR -n NAMESPACE --audience AUDIENCE --duration 1h</pre>
<noscript><p class="notice error">Signing in with a token needs JavaScript: the page sends the token in a header, never in a cookie or URL.</p></noscript>
<form id="sign-in" method="post" action="#">
<label for="token">Kubernetes service-account token</label>
<textarea id="token" name="token" rows="5" required autocomplete="off" spellcheck="false" aria-describedby="token-hint"></textarea>
<p id="token-hint" class="hint">Kept in this tab's session storage only, and sent to this proxy as a Bearer header. Closing the tab forgets it.</p>
<button type="submit">Sign in</button>
</form>
</div>`;
  return page({ auth: 'none', name: undefined }, 'Sign in', undefined, body, { nav: false });
}

export function refusalView(viewer: Viewer, message: string): string {
  const body = html`<h1>Access denied</h1>
<p class="notice error" role="alert">${message}</p>
<p>Reading the audit trail needs an <span class="mono">audit.read</span> grant in the proxy's policy, for example:</p>
<pre>- id: auditors
  effect: allow
  subjects: ${subjectExample(viewer)}
  permissions: [audit.read]
  resources: ["audit/*"]</pre>
<p>Ask the team that owns the proxy's policy.</p>`;
  return page(viewer, 'Access denied', undefined, body, { nav: false });
}

function subjectExample(viewer: Viewer): string {
  const account = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(viewer.name ?? '');
  if (viewer.auth === 'token' && account) return `{ serviceAccounts: ["${account[1]}/${account[2]}"] }`;
  return `{ googleEmails: ["${viewer.auth === 'iap' && viewer.name !== undefined ? viewer.name : 'you@example.com'}"] }`;
}

export function errorView(viewer: Viewer, status: number, message: string): string {
  const body = html`<h1>${status === 404 ? 'Not found' : 'Something went wrong'}</h1>
<p class="notice error" role="alert">${message}</p>
<p><a href="${BASE}/">Back to the records</a></p>`;
  return page(viewer, status === 404 ? 'Not found' : 'Error', undefined, body);
}
/* eslint-enable max-len */
