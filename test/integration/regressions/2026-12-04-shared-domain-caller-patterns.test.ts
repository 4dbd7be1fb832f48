/**
 * Security regression (attacker review, case 2, medium): the README
 * recommended `service-*@gcp-sa-aiplatform.iam.gserviceaccount.com`, which
 * matches every project's Vertex AI service agent, and the config accepted
 * `*-compute@developer.gserviceaccount.com`, which matches any project's
 * Compute Engine default account: anyone with a VM in any project could mint
 * an ID token the route accepted.
 *
 * Now both `check` and `serve` refuse a wildcard over a domain Google shares
 * between customers, and the message shows the exact form to write instead;
 * a wildcard over the customer's own project domain is still accepted.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startIssuer, type IssuerStandIn } from '../../../dev/standins/issuer.js';
import { runCli, writeConfig } from '../../helpers/proxy-process.js';
import { LOCATION, PROJECT } from '../../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

let kube: IssuerStandIn;
let google: IssuerStandIn;

beforeAll(async () => {
  kube = await startIssuer({ kind: 'kubernetes' });
  google = await startIssuer({ kind: 'google' });
});
afterAll(async () => {
  await Promise.all([kube?.close(), google?.close()]);
});

function configWith(callers: string[]): string {
  return writeConfig({
    server: { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0 },
    issuers: [
      { name: 'cluster', type: 'kubernetes', issuer: kube.issuer, audiences: ['kube-vertex-proxy'] },
      { name: 'google', type: 'google', issuer: google.issuer, audiences: ['https://callbacks.example.com'] },
    ],
    vertex: { projects: [PROJECT], locations: [LOCATION] },
    audit: { durability: 'relaxed', sinks: [{ type: 'stdout' }] },
    callbacks: { routes: [{ prefix: '/callbacks/training', upstream: 'http://127.0.0.1:9', callers }] },
  });
}

describe('wildcard caller patterns over shared Google domains', () => {
  it.each([
    ['service-*@gcp-sa-aiplatform.iam.gserviceaccount.com', 'service-PROJECT_NUMBER@gcp-sa-aiplatform.iam.gserviceaccount.com'],
    ['*-compute@developer.gserviceaccount.com', 'PROJECT_NUMBER-compute@developer.gserviceaccount.com'],
    ['*@appspot.gserviceaccount.com', 'PROJECT_ID@appspot.gserviceaccount.com'],
    ['*@cloudbuild.gserviceaccount.com', 'PROJECT_NUMBER@cloudbuild.gserviceaccount.com'],
  ])('check refuses %s, naming the entry path and the exact form %s', async (pattern, exact) => {
    const result = await runCli(['check', '--config', configWith(['ok@my-proj.iam.gserviceaccount.com', pattern])]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('callbacks.routes[0].callers[1]');
    expect(result.stderr).toContain(`"${exact}"`);
    expect(result.stderr).toContain('Google shares that domain');
  });

  it('serve refuses to start with such a pattern (exit 1, same message), so no listener ever accepts it', async () => {
    const result = await runCli(['serve', '--config', configWith(['service-*@gcp-sa-aiplatform.iam.gserviceaccount.com'])]);
    expect(result.code).toBe(1);
    expect(result.stdout).not.toContain('listening');
    expect(result.stderr).toContain('callbacks.routes[0].callers[0]');
    expect(result.stderr).toContain('"service-PROJECT_NUMBER@gcp-sa-aiplatform.iam.gserviceaccount.com"');
  });

  it("the exact service agent and a wildcard over the customer's own project domain are accepted (control)", async () => {
    const result = await runCli([
      'check',
      '--config',
      configWith(['service-123456789012@gcp-sa-aiplatform.iam.gserviceaccount.com', '*@my-proj.iam.gserviceaccount.com']),
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});
