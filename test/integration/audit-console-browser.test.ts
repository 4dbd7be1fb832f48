/**
 * The audit console end to end in a real headless Chromium (the Debian
 * `chromium` package, driven by playwright-core over CDP): sign in with a
 * Kubernetes token, filter to one namespace, open a record, export CSV, see
 * the chart, verify the chain; then, behind IAP, a granted Google auditor
 * and a denied one, who sees a clear refusal and nothing else. Screenshots
 * of each step go to test-artifacts/console/ (the docs' images are copied
 * from there). The page must run without a single Content-Security-Policy
 * violation, keep the token out of cookies and URLs, and be operable from
 * the keyboard.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IAP_AUDIENCE, startIapStandIn, type IapStandIn } from '../helpers/iap.js';
import { REPO_ROOT } from '../helpers/proxy-process.js';
import { DEFAULT_RULES, PREDICT_PATH, PROJECT, LOCATION, startWorld, type World } from '../helpers/world.js';

const CHROMIUM = process.env.KVP_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts', 'console');
const RULES = [
  ...DEFAULT_RULES,
  { id: 'auditors', effect: 'allow', subjects: { serviceAccounts: ['compliance/*'] }, permissions: ['audit.read'], resources: ['audit/*'] },
  {
    id: 'google-auditors',
    effect: 'allow',
    subjects: { googleEmails: ['alice@example.com'] },
    permissions: ['audit.read'],
    resources: ['audit/*'],
  },
];

let world: World;
let iap: IapStandIn;
let context: BrowserContext;
let profile: string;
const cspViolations: string[] = [];

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  iap = await startIapStandIn();
  const dir = mkdtempSync(join(tmpdir(), 'kvp-console-e2e-'));
  world = await startWorld({
    config: (defaults) => ({
      ...defaults,
      policy: { rules: RULES },
      audit: {
        durability: 'strict',
        sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }],
        console: { enabled: true, iapAudience: IAP_AUDIENCE, iapJwksUri: iap.jwksUri },
      },
    }),
  });
  // A trail with two namespaces, allowed and denied calls, and a second endpoint.
  const body = JSON.stringify({ instances: [{ feature: 1 }] });
  const other = `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/987654321:predict`;
  for (let i = 0; i < 12; i++) await world.call(i % 3 === 0 ? other : PREDICT_PATH, { body });
  for (let i = 0; i < 4; i++) await world.call(PREDICT_PATH, { body, token: world.token('web', 'frontend') });
  await world.call(PREDICT_PATH, { body, token: world.token('ml', 'intern') });
  await new Promise((r) => setTimeout(r, 300));

  profile = mkdtempSync(join(tmpdir(), 'kvp-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1366, height: 800 },
    acceptDownloads: true,
  });
  context.on('console', (message) => {
    if (/Content.Security.Policy/i.test(message.text())) cspViolations.push(message.text());
  });
}, 60_000);

afterAll(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await world?.close();
  await iap?.close();
});

describe('audit console in Chromium', () => {
  it('signs in with a token, filters to one namespace, opens a record, exports CSV, shows the chart, verifies the chain', async () => {
    const page = await context.newPage();
    page.on('console', (message) => {
      if (/Content.Security.Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    const base = `${world.proxy.dataUrl}/audit/ui/`;
    await page.goto(base);
    expect(await page.locator('h1').textContent()).toBe('Sign in to the audit console');
    await shot(page, '01-sign-in');

    // Keyboard only: the token field is labelled, and Enter on the button submits.
    const token = world.token('compliance', 'auditor');
    await page.getByLabel('Kubernetes service-account token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).focus();
    await page.keyboard.press('Enter');
    await page.locator('h1', { hasText: 'Audit records' }).waitFor();
    expect(await page.locator('.who').textContent()).toContain('system:serviceaccount:compliance:auditor');
    // The token lives in this tab's session storage only: no cookie, not in the URL.
    expect(await page.evaluate(() => sessionStorage.getItem('kvp-console-token'))).toBe(token);
    expect(await context.cookies()).toEqual([]);
    expect(page.url()).not.toContain(token.slice(0, 20));
    await shot(page, '02-search');

    await page.getByLabel('Namespace').fill('ml');
    await page.getByLabel('Decision').selectOption('allow');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/namespace=ml/);
    expect(new URL(page.url()).search).toBe('?namespace=ml&decision=allow');
    const principals = await page.locator('tbody tr td:nth-child(4)').allTextContents();
    expect(principals.length).toBeGreaterThanOrEqual(12);
    expect(new Set(principals)).toEqual(new Set(['system:serviceaccount:ml:trainer']));
    await shot(page, '03-search-filtered');

    // Export the current filter as CSV: a download, of exactly the rows the filter selects.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'CSV' }).click()]);
    expect(download.suggestedFilename()).toBe('audit-records.csv');
    const csv = readFileSync(await download.path(), 'utf8')
      .trimEnd()
      .split('\n');
    expect(csv[0]).toMatch(/^time,requestId,traceId,principal,namespace,/);
    expect(csv.length - 1).toBe(principals.length);
    for (const line of csv.slice(1)) expect(line).toContain(',system:serviceaccount:ml:trainer,ml,trainer,');

    await page.locator('tbody tr').first().locator('a').click();
    await page.locator('h1', { hasText: /^Record [0-9a-f-]+$/ }).waitFor();
    expect(page.url()).toMatch(/\/audit\/ui\/records\/[0-9a-f-]+\?at=\d+$/);
    expect(await page.locator('main').textContent()).toContain('ml-predict');
    expect(await page.locator('dl.fields dt').allTextContents()).toEqual(
      expect.arrayContaining(['requestId', 'principal', 'namespace', 'permission', 'resource', 'decision', 'ruleId', 'policyVersion']),
    );
    await shot(page, '04-record');

    // Back to the filtered list through history, then to the same principal's records.
    await page.goBack();
    await page.locator('h1', { hasText: 'Audit records' }).waitFor();
    expect(await page.getByLabel('Namespace').inputValue()).toBe('ml');

    await page.getByRole('link', { name: 'Summary', exact: true }).click();
    await page.locator('h1', { hasText: 'Summary' }).waitFor();
    const chart = page.locator('svg.chart');
    await chart.waitFor();
    expect(await chart.getAttribute('role')).toBe('img');
    expect(await chart.locator('rect.bar-allow').count()).toBeGreaterThan(0);
    expect(await chart.locator('rect.bar-deny').count()).toBeGreaterThan(0);
    // The stylesheet applied (no CSP block): bars are drawn in the decision colours.
    expect(
      await chart
        .locator('rect.bar-deny')
        .first()
        .evaluate((el) => (globalThis as unknown as { getComputedStyle(element: unknown): { fill: string } }).getComputedStyle(el).fill),
    ).toBe('rgb(179, 38, 30)');
    const box = await chart.boundingBox();
    expect(box?.width).toBeGreaterThan(400);
    await shot(page, '05-summary');

    await page.getByRole('link', { name: 'Chain' }).click();
    await page.locator('h1', { hasText: 'Chain status' }).waitFor();
    await page.getByRole('button', { name: 'Verify this range' }).click();
    await page.locator('.notice.ok', { hasText: 'Chain intact.' }).waitFor();
    await shot(page, '06-chain');

    expect(cspViolations).toEqual([]);
    await page.close();
  }, 60_000);

  it('behind IAP: a granted Google account is signed in by the header; a denied one sees a clear refusal and nothing else', async () => {
    await context.setExtraHTTPHeaders({ 'x-goog-iap-jwt-assertion': await iap.assertion('alice@example.com') });
    const page = await context.newPage();
    await page.goto(`${world.proxy.dataUrl}/audit/ui/?decision=deny`);
    await page.locator('h1', { hasText: 'Audit records' }).waitFor();
    expect(await page.locator('.who').textContent()).toContain('alice@example.com (Google, through IAP)');
    const decisions = await page.locator('tbody tr td:nth-child(2)').allTextContents();
    expect(decisions.length).toBeGreaterThanOrEqual(5);
    expect(new Set(decisions)).toEqual(new Set(['deny']));
    await shot(page, '07-iap-search');
    await page.close();

    await context.setExtraHTTPHeaders({ 'x-goog-iap-jwt-assertion': await iap.assertion('mallory@example.com') });
    const denied = await context.newPage();
    const response = await denied.goto(`${world.proxy.dataUrl}/audit/ui/?namespace=ml`);
    expect(response?.status()).toBe(403);
    expect(await denied.locator('h1').textContent()).toBe('Access denied');
    const text = (await denied.locator('main').textContent()) ?? '';
    // The view is filtered to one namespace, so it asks for that namespace's records (namespace-scoped audit grants).
    expect(text).toContain('mallory@example.com may not read audit/namespaces/ml: no policy rule grants it.');
    expect(text).not.toContain('system:serviceaccount');
    expect(await denied.locator('table').count()).toBe(0);
    expect(await denied.locator('nav').count()).toBe(0);
    await shot(denied, '08-denied');
    await denied.close();
    expect(cspViolations).toEqual([]);
  }, 60_000);
});
