/**
 * Fault: the GKE metadata server (the proxy's Google credential) fails.
 * Tokens are short-lived here (24 s) so the test sees several refreshes:
 * the token is refreshed ahead of its expiry, so an outage shorter than the
 * remaining validity is invisible to callers; a long outage makes requests
 * 503 UNAVAILABLE (nothing forwarded, never with the caller's token) once the
 * held token is too close to expiry; when the metadata server is back,
 * service resumes by itself, without a restart.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startIssuer, type IssuerStandIn } from '../../../dev/standins/issuer.js';
import { metadataEnv, startMetadataServer, type MetadataStandIn } from '../../../dev/standins/metadata.js';
import { startVertexStandIn, type VertexStandIn } from '../../../dev/standins/vertex.js';
import { until } from '../../helpers/poll.js';
import { startProxyProcess, type ProxyProcess } from '../../helpers/proxy-process.js';
import { AUDIENCE, DEFAULT_RULES, LOCATION, PREDICT_PATH, PROJECT } from '../../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

let issuer: IssuerStandIn;
let metadata: MetadataStandIn;
let vertex: VertexStandIn;
let proxy: ProxyProcess;

beforeAll(async () => {
  issuer = await startIssuer({ kind: 'kubernetes' });
  metadata = await startMetadataServer({ projectId: PROJECT, expiresIn: 24 });
  vertex = await startVertexStandIn();
  proxy = await startProxyProcess({
    config: {
      server: { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0 },
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: issuer.issuer, audiences: [AUDIENCE] }],
      vertex: { projects: [PROJECT], locations: [LOCATION], upstream: vertex.url },
      kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' } } },
      audit: { durability: 'relaxed', sinks: [{ type: 'stdout' }] },
      policy: { rules: DEFAULT_RULES },
    },
    env: metadataEnv(metadata),
  });
});
afterAll(async () => {
  await proxy?.stop();
  await Promise.all([issuer?.close(), metadata?.close(), vertex?.close()]);
});

const predict = () =>
  fetch(`${proxy.dataUrl}${PREDICT_PATH}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${issuer.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE })}`,
      'content-type': 'application/json',
    },
    body: '{}',
  });

describe('the metadata server fails', () => {
  it('a short outage is invisible: the token was refreshed ahead of expiry', async () => {
    const before = metadata.tokenRequests;
    // The proxy refreshes on its own, well before the 24 s token expires.
    await until(() => metadata.tokenRequests > before || undefined, 'a refresh ahead of expiry', 30_000);
    metadata.setAvailable(false);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      statuses.push((await predict()).status);
      await new Promise((r) => setTimeout(r, 150));
    }
    metadata.setAvailable(true);
    expect(statuses).toEqual(Array.from({ length: 10 }, () => 200));
  });

  it('a long outage gives 503 with nothing forwarded; service resumes by itself when it is back', async () => {
    metadata.setAvailable(false);
    const refused = await until(
      async () => {
        const response = await predict();
        return response.status === 503 ? response : undefined;
      },
      'the held token to run out',
      40_000,
    );
    expect(((await refused.json()) as { error: { status: string } }).error.status).toBe('UNAVAILABLE');
    const forwarded = vertex.requests.length;
    expect((await predict()).status).toBe(503);
    expect(vertex.requests.length).toBe(forwarded);
    const readyz = await fetch(`${proxy.adminUrl}/readyz`);
    expect(readyz.status).toBe(503);

    metadata.setAvailable(true);
    await until(async () => ((await predict()).status === 200 ? true : undefined), 'service to resume', 45_000);
    await proxy.waitReady(5_000);
  });
});
