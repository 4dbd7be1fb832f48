/**
 * Who spent how many tokens on which model: calls from two namespaces on two
 * models through the proxy, then `audit summary --group-by namespace,model`
 * from the store (CLI) and from a running proxy (HTTP API, CLI --proxy), with
 * the sums the responses reported.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UsageSummaryRow } from '../../src/audit/store.js';
import { runCli, writeConfig } from '../helpers/proxy-process.js';
import { DEFAULT_RULES, LOCATION, PROJECT, startWorld, type World } from '../helpers/world.js';

const MODELS = `/v1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models`;
/** The stand-in counts a token per word: 4 prompt + 11 candidates = 15 per answer. */
const PROMPT = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'one two three four' }] }] });

let world: World;
let dir: string;
let dbPath: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kvp-usage-summary-'));
  dbPath = join(dir, 'audit.db');
  world = await startWorld({
    config: (defaults) => ({
      ...defaults,
      kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' }, research: { team: 'ml' }, compliance: {} } },
      policy: {
        rules: [
          ...DEFAULT_RULES,
          {
            id: 'auditors',
            effect: 'allow',
            subjects: { serviceAccounts: ['compliance/*'] },
            permissions: ['audit.read'],
            resources: ['audit/*'],
          },
        ],
      },
      audit: { durability: 'strict', sinks: [{ type: 'sqlite', path: dbPath }] },
    }),
  });
  const call = async (namespace: string, model: string, verb: string) => {
    const response = await world.call(`${MODELS}/${model}:${verb}`, { body: PROMPT, token: world.token(namespace, 'bot') });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
  };
  await call('ml', 'gemini-2.5-flash', 'generateContent');
  await call('ml', 'gemini-2.5-flash', 'streamGenerateContent?alt=sse');
  await call('ml', 'gemini-2.5-pro', 'streamGenerateContent');
  await call('research', 'gemini-2.5-flash', 'generateContent');
  // A call that reports no usage (countTokens) is not a model call.
  await world.call(`${MODELS}/gemini-2.5-flash:countTokens`, { body: PROMPT });
});
afterAll(async () => {
  await world?.close();
  rmSync(dir, { recursive: true, force: true });
});

const row = (namespace: string, model: string, requests: number): UsageSummaryRow => ({
  namespace,
  model,
  requests,
  promptTokens: 4 * requests,
  candidatesTokens: 11 * requests,
  thoughtsTokens: 0,
  cachedTokens: 0,
  toolTokens: 0,
  totalTokens: 15 * requests,
});

describe('audit summary --group-by', () => {
  it('the CLI sums tokens by namespace and model from the store', { timeout: 60_000 }, async () => {
    const configPath = writeConfig({
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: 'https://issuer.example', audiences: ['x'] }],
      vertex: { projects: [PROJECT], locations: [LOCATION] },
      audit: { sinks: [{ type: 'sqlite', path: dbPath }] },
    });
    const json = await runCli(['audit', 'summary', '--config', configPath, '--group-by', 'namespace,model', '--format', 'json']);
    expect(json.stderr).toBe('');
    const rows = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as UsageSummaryRow);
    expect(rows.filter((r) => r.model !== null)).toEqual([
      row('ml', 'google/gemini-2.5-flash', 2),
      row('ml', 'google/gemini-2.5-pro', 1),
      row('research', 'google/gemini-2.5-flash', 1),
    ]);
    const table = await runCli(['audit', 'summary', '--config', configPath, '--group-by', 'model']);
    expect(table.stdout).toMatch(/^MODEL\s+REQUESTS\s+PROMPT\s+CANDIDATES\s+THOUGHTS\s+CACHED\s+TOOL\s+TOTAL\n/);
    expect(table.stdout).toMatch(/google\/gemini-2\.5-flash\s+3\s+12\s+33\s+0\s+0\s+0\s+45\n/);
    const bad = await runCli(['audit', 'summary', '--config', configPath, '--group-by', 'namespace,tokens']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('cannot group by "tokens"');
  });

  it('the HTTP API and the CLI against a running proxy answer the same, for an auditor only', { timeout: 60_000 }, async () => {
    const response = await world.call('/audit/v1/summary?groupBy=namespace,model&namespace=ml', {
      token: world.token('compliance', 'auditor'),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { groupBy: string[]; rows: UsageSummaryRow[] };
    expect(body.groupBy).toEqual(['namespace', 'model']);
    expect(body.rows.filter((r) => r.model !== null)).toEqual([
      row('ml', 'google/gemini-2.5-flash', 2),
      row('ml', 'google/gemini-2.5-pro', 1),
    ]);
    // countTokens reports no usage and names no model: counted as a request, no tokens.
    expect(body.rows.find((r) => r.model === null)).toMatchObject({ namespace: 'ml', requests: 1, totalTokens: 0 });
    expect((await world.call('/audit/v1/summary?groupBy=model', { token: world.token('ml', 'bot') })).status).toBe(403);
    expect((await world.call('/audit/v1/summary?groupBy=secret', { token: world.token('compliance', 'auditor') })).status).toBe(400);

    const tokenFile = join(dir, 'auditor.token');
    writeFileSync(tokenFile, world.token('compliance', 'auditor'));
    const csv = await runCli([
      'audit',
      'summary',
      '--proxy',
      world.proxy.dataUrl,
      '--token-file',
      tokenFile,
      '--group-by',
      'namespace',
      '--namespace',
      'research',
      '--format',
      'csv',
    ]);
    expect(csv.stdout).toBe(
      'namespace,requests,promptTokens,candidatesTokens,thoughtsTokens,cachedTokens,toolTokens,totalTokens\nresearch,1,4,11,0,0,0,15\n',
    );
  });
});
