/**
 * The audit console's pages and exports over HTTP, against the real proxy
 * process: sign-in (IAP's signed header from a stand-in key set, or a
 * Kubernetes token), every view's HTML, the filters in the URL, paging,
 * exports equal to the query API's answer, the chain verification, the
 * refusal, the security headers, and every page view in the audit trail.
 * (The browser end to end is audit-console-browser.test.ts.)
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredRecord } from '../../src/audit/store.js';
import { IAP_AUDIENCE, startIapStandIn, type IapStandIn } from '../helpers/iap.js';
import { runCli, startProxyProcess, writeConfig } from '../helpers/proxy-process.js';
import { metadataEnv } from '../../dev/standins/metadata.js';
import { AUDIENCE, DEFAULT_RULES, LOCATION, PREDICT_PATH, PROJECT, startWorld, type World } from '../helpers/world.js';

const RULES = [
  ...DEFAULT_RULES,
  { id: 'auditors', effect: 'allow', subjects: { serviceAccounts: ['compliance/*'] }, permissions: ['audit.read'], resources: ['audit/*'] },
  {
    id: 'google-auditors',
    effect: 'allow',
    subjects: { googleEmails: ['alice@example.com', 'audit-*@example.com'] },
    permissions: ['audit.read'],
    resources: ['audit/*'],
  },
];

let world: World;
let iap: IapStandIn;
let auditor: string;

async function waitUntil<T>(find: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A console request as the page's script makes it: the token as a Bearer header. */
function page(path: string, init: { token?: string | null; iap?: string; method?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { 'x-kvp-console': '1', ...init.headers };
  // A browser's navigation carries no console header.
  if (headers['x-kvp-console'] === '') delete headers['x-kvp-console'];
  const token = init.token === undefined ? auditor : init.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (init.iap !== undefined) headers['x-goog-iap-jwt-assertion'] = init.iap;
  return fetch(`${world.proxy.dataUrl}${path}`, { method: init.method ?? 'GET', headers });
}

/** The main element's rows: what the page shows of the trail. */
function tableRows(html: string): string[] {
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(html)?.[1] ?? '';
  return body.split('</tr>').filter((r) => r.includes('<td'));
}

const predictCount = 56;

beforeAll(async () => {
  iap = await startIapStandIn();
  const dir = mkdtempSync(join(tmpdir(), 'kvp-console-it-'));
  world = await startWorld({
    config: (defaults) => ({
      ...defaults,
      policy: { rules: RULES },
      audit: {
        durability: 'strict',
        sinks: [{ type: 'stdout' }, { type: 'sqlite', path: join(dir, 'audit.db') }],
        console: { enabled: true, iapAudience: IAP_AUDIENCE, iapJwksUri: iap.jwksUri },
      },
    }),
  });
  auditor = world.token('compliance', 'auditor');
  const body = JSON.stringify({ instances: [{ feature: 1 }] });
  for (let i = 0; i < predictCount; i++) expect((await world.call(PREDICT_PATH, { body })).status).toBe(200);
  expect((await world.call(PREDICT_PATH, { body, token: world.token('web', 'frontend') })).status).toBe(403);
  expect((await world.call(PREDICT_PATH, { body, token: world.token('web', 'frontend') })).status).toBe(403);
  // Every seeded record is queryable before the views are looked at.
  await waitUntil(async () => {
    const response = await world.call('/audit/v1/summary', { token: auditor });
    const { rows } = (await response.json()) as { rows: Array<{ permission: string; count: number }> };
    const predicts = rows.filter((r) => r.permission === 'aiplatform.endpoints.predict').reduce((n, r) => n + r.count, 0);
    return predicts === predictCount + 2 ? true : undefined;
  }, 'the seeded records');
});
afterAll(async () => {
  await world?.close();
  await iap?.close();
});

describe('audit console: sign-in and page security', () => {
  it('answers a navigation without credentials with the sign-in page only, under a strict CSP', async () => {
    const response = await page('/audit/ui/?namespace=ml', { token: null, headers: { 'x-kvp-console': '' } });
    const html = await response.text();
    expect(response.status).toBe(200);
    expect(html).toContain('<form id="sign-in"');
    expect(html).toMatch(/<label for="token">/);
    expect(html).not.toContain('system:serviceaccount:ml');
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('cache-control')).toBe('no-store');
    // No inline script or style anywhere: the CSP would block it.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=/);
    expect(html).not.toMatch(/<style/);
  });

  it('serves its script and stylesheet from this origin, cached by content hash', async () => {
    const html = await (await page('/audit/ui/', { token: null, headers: { 'x-kvp-console': '' } })).text();
    const script = /<script src="(\/audit\/ui\/static\/console\.[0-9a-f]{12}\.js)"/.exec(html)?.[1];
    const styles = /<link rel="stylesheet" href="(\/audit\/ui\/static\/console\.[0-9a-f]{12}\.css)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    expect(styles).toBeDefined();
    const js = await fetch(`${world.proxy.dataUrl}${script}`);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect(await js.text()).toContain('sessionStorage');
    const css = await fetch(`${world.proxy.dataUrl}${styles}`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    // Nothing from another origin.
    expect(html).not.toMatch(/(src|href)="https?:/);
  });

  it('shows the sign-in page again, with the reason, for a bad token', async () => {
    const response = await page('/audit/ui/', { token: 'not-a-token' });
    expect(response.status).toBe(401);
    const html = await response.text();
    expect(html).toContain('That token was not accepted');
    expect(html).toContain('<form id="sign-in"');
  });

  it('signs an IAP user in by the verified header and refuses a wrong audience or an expired assertion', async () => {
    const ok = await page('/audit/ui/', { token: null, iap: await iap.assertion('Alice@example.com') });
    const html = await ok.text();
    expect(ok.status).toBe(200);
    expect(html).toContain('data-auth="iap"');
    expect(html).toContain('Signed in as <strong>alice@example.com</strong> (Google, through IAP)');
    expect(tableRows(html).length).toBeGreaterThan(0);
    const wrong = await page('/audit/ui/', {
      token: null,
      iap: await iap.assertion('alice@example.com', { audience: '/projects/1/global/backendServices/2' }),
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('could not be verified');
    const expired = await page('/audit/ui/', { token: null, iap: await iap.assertion('alice@example.com', { expiresIn: -120 }) });
    expect(expired.status).toBe(401);
  });

  it('refuses an auditor without an audit.read grant clearly, showing nothing of the trail', async () => {
    for (const response of [
      await page('/audit/ui/?namespace=ml', { token: null, iap: await iap.assertion('mallory@example.com') }),
      await page('/audit/ui/summary', { token: world.token('web', 'frontend') }),
      await page('/audit/ui/export.csv', { token: world.token('web', 'frontend') }),
    ]) {
      const html = await response.text();
      expect(response.status).toBe(403);
      expect(html).toContain('<h1>Access denied</h1>');
      // A view filtered to one namespace asks for that namespace's records (namespace-scoped audit grants).
      expect(html).toMatch(/may not read audit\/(records|summary|namespaces\/ml): no policy rule grants it/);
      expect(html).not.toContain('system:serviceaccount:ml');
      expect(html).not.toContain('<table');
      expect(html).not.toContain('aria-label="Views"');
    }
  });
});

describe('audit console: views', () => {
  it('search: filters from the URL, newest first, paged', async () => {
    const response = await page('/audit/ui/?namespace=ml&permission=aiplatform.endpoints.*');
    const html = await response.text();
    expect(response.status).toBe(200);
    const rows = tableRows(html);
    expect(rows).toHaveLength(50);
    for (const row of rows) expect(row).toContain('system:serviceaccount:ml:trainer');
    // The filters are in the form, so the view can be shared and refined.
    expect(html).toContain('id="f-namespace" name="namespace" value="ml"');
    const times = [...html.matchAll(/<time datetime="([^"]+)"/g)].map((m) => Date.parse(m[1] as string));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const older = /href="(\/audit\/ui\/\?[^"]*pageToken=[^"]+)" rel="next"/.exec(html)?.[1];
    expect(older).toBeDefined();
    const next = await (await page(older!.replaceAll('&amp;', '&'))).text();
    const nextRows = tableRows(next);
    expect(nextRows).toHaveLength(predictCount - 50);
    expect(next).toContain('Newest records');
    // The older page starts where the first one ended.
    const lastFirst = times[times.length - 1] as number;
    const firstNext = Date.parse(/<time datetime="([^"]+)"/.exec(next)?.[1] as string);
    expect(firstNext).toBeLessThanOrEqual(lastFirst);
  });

  it('search: a service account filter and a decision filter', async () => {
    const html = await (await page('/audit/ui/?serviceAccount=web/*&decision=deny&operation=endpoints.predict')).text();
    const rows = tableRows(html);
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row).toContain('system:serviceaccount:web:frontend');
      expect(row).toContain('badge deny');
      expect(row).toContain('no-matching-rule');
    }
  });

  it('search: a bad filter is a 400 page that says what is wrong', async () => {
    const response = await page('/audit/ui/?decision=maybe&namespace=ml');
    expect(response.status).toBe(400);
    const html = await response.text();
    expect(html).toContain('decision must be &quot;allow&quot; or &quot;deny&quot;');
    expect(html).toContain('name="namespace" value="ml"');
    expect(await (await page('/audit/ui/?serviceAccount=not-a-pair')).text()).toContain('service account must be NAMESPACE/NAME');
  });

  it('record: every field, the rule that decided, and links to the same principal and resource', async () => {
    const list = await (await page('/audit/ui/?namespace=web&permission=aiplatform.endpoints.predict')).text();
    const href = /href="(\/audit\/ui\/records\/[^"]+)"/.exec(list)?.[1]?.replaceAll('&amp;', '&');
    expect(href).toBeDefined();
    const html = await (await page(href!)).text();
    const requestId = decodeURIComponent(/records\/([^?]+)/.exec(href!)?.[1] as string);
    expect(html).toContain(`<h1>Record ${requestId}</h1>`);
    for (const field of [
      'requestId',
      'principal',
      'namespace',
      'operation',
      'permission',
      'resource',
      'decision',
      'reason',
      'policyVersion',
      'status',
      'latencyMs',
      'clientIp',
    ]) {
      expect(html).toContain(`<dt>${field}</dt>`);
    }
    expect(html).toContain('no rule matched, so the default deny applied');
    expect(html).toContain(`href="/audit/ui/?principal=${encodeURIComponent('system:serviceaccount:web:frontend')}"`);
    expect(html).toMatch(/href="\/audit\/ui\/\?resource=projects%2Fdemo-project%2F[^"]+">Same resource/);

    const allowed = /href="(\/audit\/ui\/records\/[^"]+)"/
      .exec(await (await page('/audit/ui/?namespace=ml')).text())?.[1]
      ?.replaceAll('&amp;', '&');
    const allowedHtml = await (await page(allowed!)).text();
    expect(allowedHtml).toContain('Rule <strong class="mono">ml-predict</strong> decided');
    expect(allowedHtml).toContain('&quot;id&quot;: &quot;ml-predict&quot;');

    const missing = await page(`/audit/ui/records/no-such-id?at=${Date.now()}`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain('No record with this id');
  });

  it('summary: counts by principal × permission × decision and a chart whose numbers add up', async () => {
    const html = await (await page('/audit/ui/summary?from=1h&permission=aiplatform.endpoints.predict')).text();
    const counts = tableRows(html.slice(html.indexOf('By principal')));
    const row = (principal: string, decision: string) => counts.find((r) => r.includes(principal) && r.includes(`badge ${decision}`));
    expect(row('system:serviceaccount:ml:trainer', 'allow')).toContain(`<td class="num">${predictCount}</td>`);
    expect(row('system:serviceaccount:web:frontend', 'deny')).toContain('<td class="num">2</td>');
    expect(html).toContain(`<strong>${predictCount + 2}</strong> requests, <strong>2</strong> denied`);
    expect(html).toMatch(/<svg class="chart"[^>]*role="img" aria-labelledby="chart-title"/);
    expect(html).toContain('class="bar-allow"');
    expect(html).toContain('class="bar-deny"');
    const chartData = html.slice(html.indexOf('Requests per interval'), html.indexOf('</details>'));
    const cells = [...chartData.matchAll(/<td class="num">(\d+)<\/td><td class="num">(\d+)<\/td>/g)];
    expect(cells).toHaveLength(24);
    expect(cells.reduce((n, m) => n + Number(m[1]), 0)).toBe(predictCount);
    expect(cells.reduce((n, m) => n + Number(m[2]), 0)).toBe(2);
  });

  it('chain: no result yet, a verify button that needs the page (not a cross-site form), then the result', async () => {
    const before = await (await page('/audit/ui/chain')).text();
    expect(before).toContain('No verification has run on this replica');
    const crossSite = await fetch(`${world.proxy.dataUrl}/audit/ui/chain/verify`, {
      method: 'POST',
      headers: { 'x-goog-iap-jwt-assertion': await iap.assertion('alice@example.com') },
    });
    expect(crossSite.status).toBe(403);
    expect(await crossSite.text()).toContain('only be started from the console page');
    const ran = await page('/audit/ui/chain/verify', { method: 'POST' });
    expect(ran.status).toBe(200);
    const html = await ran.text();
    expect(html).toMatch(/<strong>Chain intact\.<\/strong> \d+ entries from 1 writer checked \(the whole trail\)/);
    expect(html).toContain('by system:serviceaccount:compliance:auditor');
    expect(await (await page('/audit/ui/chain')).text()).toContain('Chain intact.');
    const ranged = await (
      await page('/audit/ui/chain/verify?from=1h', { method: 'POST', iap: await iap.assertion('alice@example.com'), token: null })
    ).text();
    expect(ranged).toMatch(/Chain intact\.<\/strong> \d+ entries .*entries written from <time/);
    expect(ranged).toContain('by alice@example.com');
  });
});

describe('audit console: exports', () => {
  it("CSV and JSON lines of the current filter, equal to the query API's answer", async () => {
    const api = (await (
      await world.call('/audit/v1/records?namespace=ml&permission=aiplatform.endpoints.predict&pageSize=1000', { token: auditor })
    ).json()) as { records: StoredRecord[] };
    expect(api.records).toHaveLength(predictCount);

    const csv = await page('/audit/ui/export.csv?namespace=ml&permission=aiplatform.endpoints.predict');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.headers.get('content-disposition')).toBe('attachment; filename="audit-records.csv"');
    const lines = (await csv.text()).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^time,requestId,/);
    expect(lines.slice(1).map((l) => l.split(',')[1])).toEqual(api.records.map((r) => r.requestId));

    const json = await page('/audit/ui/export.json?namespace=ml&permission=aiplatform.endpoints.predict', {
      token: null,
      iap: await iap.assertion('audit-bob@example.com'),
    });
    expect(json.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const records = (await json.text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as StoredRecord);
    expect(records.map((r) => r.requestId)).toEqual(api.records.map((r) => r.requestId));
    expect(records[0]).toMatchObject({ principal: 'system:serviceaccount:ml:trainer', decision: 'allow' });

    const bad = await page('/audit/ui/export.csv?status=abc');
    expect(bad.status).toBe(400);
  });
});

describe('audit console: every page view is audited', () => {
  it('records the viewer, the view and the decision, allowed and refused alike, and never the token', async () => {
    await page('/audit/ui/summary', { token: null, iap: await iap.assertion('alice@example.com') });
    await page('/audit/ui/', { token: null, iap: await iap.assertion('mallory@example.com') });
    const views = await waitUntil(async () => {
      const found = world.proxy
        .audit()
        .map((e) => e.kubeVertexProxy)
        .filter((r) => r.operation?.startsWith('audit.console.'));
      const alice = found.find((r) => r.principal === 'alice@example.com' && r.operation === 'audit.console.summary');
      const mallory = found.find((r) => r.principal === 'mallory@example.com');
      return alice && mallory ? { found, alice, mallory } : undefined;
    }, 'the console page views in the audit trail');
    expect(views.alice).toMatchObject({
      decision: 'allow',
      ruleId: 'google-auditors',
      permission: 'audit.read',
      resource: 'audit/summary',
      status: 200,
      issuer: 'iap',
    });
    expect(views.mallory).toMatchObject({
      decision: 'deny',
      reason: 'no-matching-rule',
      errorCode: 'ERR_AUTHZ_DENIED',
      status: 403,
      operation: 'audit.console.records',
    });
    const tokenView = views.found.find(
      (r) => r.principal === 'system:serviceaccount:compliance:auditor' && r.operation === 'audit.console.records',
    );
    expect(tokenView).toMatchObject({ decision: 'allow', ruleId: 'auditors', namespace: 'compliance' });
    expect(views.found.some((r) => r.operation === 'audit.console.export')).toBe(true);
    expect(views.found.some((r) => r.operation === 'audit.console.verify' && r.status === 200)).toBe(true);
    // The sign-in page holds no audit data: no policy question, no operation or permission claimed.
    const signIn = world.proxy
      .audit()
      .map((e) => e.kubeVertexProxy)
      .find((r) => r.path === '/audit/ui/' && r.principal === undefined);
    expect(signIn).toMatchObject({ decision: 'allow', reason: 'public-page', status: 200 });
    expect(signIn?.operation).toBeUndefined();
    expect(signIn?.permission).toBeUndefined();
    const text = world.proxy.stdoutText();
    expect(text).not.toContain(auditor);
    expect(text).not.toContain('eyJ');
  });
});

describe('can-i for the console', () => {
  it('answers for a Google auditor (--as-google) and a service account (--as), with the rule', async () => {
    const config = writeConfig({
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: world.issuer.issuer, audiences: [AUDIENCE] }],
      vertex: { projects: [PROJECT], locations: [LOCATION] },
      policy: { rules: RULES },
    });
    const alice = await runCli(['can-i', '--config', config, '--as-google', 'alice@example.com', 'GET', '/audit/ui/summary']);
    expect(alice.code).toBe(0);
    expect(alice.stdout).toMatch(/^allowed\n/);
    expect(alice.stdout).toContain('rule:       google-auditors (allowed-by-rule)');
    expect(alice.stdout).toContain('resource:   audit/summary');
    const mallory = await runCli(['can-i', '--config', config, '--as-google', 'mallory@example.com', 'POST', '/audit/ui/chain/verify']);
    expect(mallory.code).toBe(1);
    expect(mallory.stdout).toContain('(none: default deny)');
    const sa = await runCli(['can-i', '--config', config, '--as', 'system:serviceaccount:compliance:auditor', 'GET', '/audit/ui/']);
    expect(sa.code).toBe(0);
    expect(sa.stdout).toContain('rule:       auditors (allowed-by-rule)');
  });
});

describe('console off', () => {
  it('is not served unless audit.console.enabled', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvp-console-off-'));
    const proxy = await startProxyProcess({
      config: {
        server: { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0 },
        issuers: [{ name: 'cluster', type: 'kubernetes', issuer: world.issuer.issuer, audiences: [AUDIENCE] }],
        vertex: { projects: [PROJECT], locations: [LOCATION], upstream: world.vertex.url },
        policy: { rules: RULES },
        audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }] },
      },
      env: metadataEnv(world.metadata),
    });
    try {
      const response = await fetch(`${proxy.dataUrl}/audit/ui/`, {
        headers: { authorization: `Bearer ${auditor}`, 'x-goog-iap-jwt-assertion': await iap.assertion('alice@example.com') },
      });
      expect(response.status).toBe(404);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.text()).not.toContain('<html');
    } finally {
      await proxy.stop();
    }
  });
});

// Last: the generate call below adds an ml record that the export and count tests above do not expect.
describe('audit console: usage', () => {
  it('summary: tokens by namespace and model, from the usage the responses reported', async () => {
    const generate = `/v1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.5-flash:generateContent`;
    const response = await world.call(generate, { body: '{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}' });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    const numbersOf = (row: string) => [...row.matchAll(/<td class="num">(\d+)<\/td>/g)].map((m) => Number(m[1]));
    // Strict durability: until the final entry is written, the call shows as its open decision, without tokens.
    let row: string | undefined;
    for (let i = 0; i < 100; i++) {
      const html = await (await page('/audit/ui/summary?from=1h')).text();
      row = tableRows(html.slice(html.indexOf('Tokens by namespace and model'))).find((r) => r.includes('gemini-2.5-flash'));
      if (row !== undefined && (numbersOf(row)[3] ?? 0) > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(row).toBeDefined();
    expect(row).toContain('<td class="mono">ml</td>');
    const numbers = numbersOf(row ?? '');
    // requests, prompt, output, total: one call, and the tokens the stand-in reported.
    expect(numbers[0]).toBe(1);
    expect(numbers[3]).toBeGreaterThan(0);
  });
});
