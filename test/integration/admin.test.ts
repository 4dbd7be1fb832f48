/**
 * The admin port: liveness, readiness detail, and metrics that count what the
 * audit trail records.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREDICT_PATH, startWorld, type World } from '../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => {
  await world?.close();
});

describe('admin port', () => {
  it('/healthz is alive and /readyz lists every check', async () => {
    expect((await fetch(`${world.proxy.adminUrl}/healthz`)).status).toBe(200);
    const readyz = (await (await fetch(`${world.proxy.adminUrl}/readyz`)).json()) as {
      status: string;
      checks: Array<{ name: string; ready: boolean }>;
    };
    expect(readyz.status).toBe('ready');
    expect(readyz.checks.map((c) => c.name).sort()).toEqual([
      'audit-store',
      'google-credential',
      'issuer:cluster',
      'namespace-labels',
      'policy',
    ]);
  });

  it('/metrics counts requests by operation, decision and code, and the token cache', async () => {
    const token = world.token('ml', 'metrics');
    for (let i = 0; i < 3; i++) expect((await world.call(PREDICT_PATH, { token, body: '{}' })).status).toBe(200);
    expect((await world.call(PREDICT_PATH, { token: world.token('web', 'x'), body: '{}' })).status).toBe(403);
    await world.proxy.waitForAudit((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:web:x');
    const text = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
    expect(text).toMatch(
      /kube_vertex_proxy_requests_total\{direction="outbound",operation="endpoints.predict",decision="allow",code="200"\} [3-9]/,
    );
    expect(text).toMatch(
      /kube_vertex_proxy_requests_total\{direction="outbound",operation="endpoints.predict",decision="deny",code="403"\} [1-9]/,
    );
    expect(text).toMatch(/kube_vertex_proxy_token_cache_hits_total [2-9]/);
    expect(text).toMatch(/kube_vertex_proxy_jwks_fetches_total\{issuer="cluster",result="success"\} [1-9]/);
    expect(text).toMatch(/kube_vertex_proxy_google_token_refreshes_total\{result="success"\} [1-9]/);
    expect(text).toMatch(
      /kube_vertex_proxy_request_duration_seconds_bucket\{le="\+Inf",direction="outbound",operation="endpoints.predict"\}/,
    );
    expect(text).not.toContain(token);
    expect(text).not.toContain('system:serviceaccount');
  });

  it('stops gracefully on SIGTERM with exit code 0', async () => {
    const extra = await startWorld();
    expect(await extra.proxy.stop('SIGTERM')).toBe(0);
    await extra.close();
  });
});
