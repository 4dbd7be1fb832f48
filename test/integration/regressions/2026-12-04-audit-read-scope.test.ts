/**
 * Security regression (attacker review, case 7, info): whoever held
 * `audit.read` read every namespace's records, and the admin port's
 * `/readyz` showed issuer key ids and policy reload state to anyone who
 * could reach it.
 *
 * Now an `audit.read` grant can be scoped to namespaces
 * (`resources: ["audit/namespaces/ml"]`): it reads queries filtered to that
 * namespace, and is refused (403, with the way to scope the query) for the
 * whole trail and for other namespaces; a whole-trail grant keeps working.
 * `/readyz` shows only check names and ready flags unless
 * `server.readyzDetails` is on.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { StoredRecord } from '../../../src/audit/store.js';
import { DEFAULT_RULES, PREDICT_PATH, startWorld, type World } from '../../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

let world: World;
beforeAll(async () => {
  const dbPath = join(mkdtempSync(join(tmpdir(), 'kvp-scope-')), 'audit.db');
  world = await startWorld({
    config: (d) => ({
      ...d,
      // The default: no readyz details.
      server: { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0 },
      kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' }, web: { team: 'ml' } } },
      audit: { durability: 'relaxed', sinks: [{ type: 'stdout' }, { type: 'sqlite', path: dbPath }] },
      policy: {
        rules: [
          ...DEFAULT_RULES,
          {
            id: 'ml-auditor',
            effect: 'allow',
            subjects: { serviceAccounts: ['ml/auditor'] },
            permissions: ['audit.read'],
            resources: ['audit/namespaces/ml'],
          },
          {
            id: 'all-auditor',
            effect: 'allow',
            subjects: { serviceAccounts: ['compliance/*'] },
            permissions: ['audit.read'],
            resources: ['audit/*'],
          },
          {
            id: 'no-web-for-compliance-intern',
            effect: 'deny',
            subjects: { serviceAccounts: ['compliance/intern'] },
            permissions: ['audit.read'],
            resources: ['audit/namespaces/web'],
          },
        ],
      },
    }),
  });
  // Records in two namespaces.
  expect((await world.call(PREDICT_PATH, { token: world.token('ml', 'trainer'), body: '{}' })).status).toBe(200);
  expect((await world.call(PREDICT_PATH, { token: world.token('web', 'frontend'), body: '{}' })).status).toBe(200);
  await world.proxy.waitForAudit((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:web:frontend');
});
afterAll(async () => {
  await world?.close();
});

async function records(
  path: string,
  token: string,
): Promise<{ status: number; body: { records?: StoredRecord[]; error?: { message: string } } }> {
  // Relaxed mode writes after the response: poll until the two records are in the store.
  for (let i = 0; ; i++) {
    const response = await world.call(path, { token });
    const body = (await response.json()) as { records?: StoredRecord[]; error?: { message: string } };
    if (response.status !== 200 || (body.records?.length ?? 0) > 0 || i > 100) return { status: response.status, body };
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('audit.read scoped by namespace', () => {
  it("a grant on audit/namespaces/ml reads ml's records when the query is filtered to ml", async () => {
    const { status, body } = await records('/audit/v1/records?namespace=ml', world.token('ml', 'auditor'));
    expect(status).toBe(200);
    expect(body.records!.length).toBeGreaterThan(0);
    expect(body.records!.every((r) => r.namespace === 'ml')).toBe(true);
    const own = await world.proxy.waitForAudit(
      (e) => e.kubeVertexProxy.principal === 'system:serviceaccount:ml:auditor' && e.kubeVertexProxy.status === 200,
    );
    expect(own.kubeVertexProxy).toMatchObject({ permission: 'audit.read', resource: 'audit/namespaces/ml', ruleId: 'ml-auditor' });
  });

  it.each([
    ['the whole trail', '/audit/v1/records', 'namespace=NS'],
    ['another namespace', '/audit/v1/records?namespace=web', 'audit/namespaces/web'],
    ['a namespace pattern', `/audit/v1/records?namespace=${encodeURIComponent('*')}`, 'namespace=NS'],
    ['the summary of the whole trail', '/audit/v1/summary', 'namespace=NS'],
  ])('the same grant is refused for %s (403, audited)', async (_label, path, hint) => {
    const response = await world.call(path, { token: world.token('ml', 'auditor') });
    expect(response.status).toBe(403);
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toContain(hint);
    expect(JSON.stringify(body)).not.toContain('frontend');
  });

  it('a whole-trail grant (audit/*) still reads every namespace, and one namespace', async () => {
    const all = await records('/audit/v1/records', world.token('compliance', 'auditor'));
    expect(all.status).toBe(200);
    expect(all.body.records!.some((r) => r.namespace === 'web')).toBe(true);
    expect((await records('/audit/v1/records?namespace=web', world.token('compliance', 'auditor'))).status).toBe(200);
  });

  it('a deny rule on one namespace wins over a whole-trail grant', async () => {
    expect((await world.call('/audit/v1/records?namespace=web', { token: world.token('compliance', 'intern') })).status).toBe(403);
    expect((await records('/audit/v1/records?namespace=ml', world.token('compliance', 'intern'))).status).toBe(200);
  });
});

describe('/readyz details', () => {
  it('are not shown by default: names and ready flags only, no key ids or policy state', async () => {
    const response = await fetch(`${world.proxy.adminUrl}/readyz`);
    expect(response.status).toBe(200);
    const text = await response.text();
    const body = JSON.parse(text) as { checks: Array<Record<string, unknown>> };
    expect(body.checks.length).toBeGreaterThan(0);
    for (const check of body.checks) expect(Object.keys(check).sort()).toEqual(['name', 'ready']);
    expect(text).not.toContain(world.issuer.currentKey.kid);
    expect(text).not.toContain('keyIds');
  });

  it('are shown with server.readyzDetails: true', async () => {
    const detailed = await startWorld();
    try {
      const text = await (await fetch(`${detailed.proxy.adminUrl}/readyz`)).text();
      expect(text).toContain(detailed.issuer.currentKey.kid);
    } finally {
      await detailed.close();
    }
  });
});
