/**
 * Security regression (attacker review, case 1, high): with routes
 * `/callbacks/ops` (callers `*@proj-a…`) and `/callbacks/ops/admin`
 * (callers `admin@proj-a…`) on one backend, a token of `worker@proj-a…`
 * reached the admin route's backend path through `/callbacks/ops/%61dmin/reset`
 * (the backend decodes `%61` to `a`), `/callbacks/ops/admin;/reset` (path
 * parameters) and `/callbacks/ops/ADMIN/reset` (a case-insensitive backend).
 * And both routes' assertions carried the same `aud`, so the backend could not
 * tell an assertion for one route from one for the other.
 *
 * Now each of those is refused with 400 before the token is even looked at,
 * nothing reaches the backend, every refusal is audited, and each route's
 * assertion names its own audience.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startIssuer, type IssuerStandIn } from '../../../dev/standins/issuer.js';
import { startCallbackBackend, type CallbackBackend } from '../../helpers/callback-backend.js';
import { rawRequest, startWorld, type World } from '../../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const AUDIENCE = 'https://vertex-callbacks.example.com';
const WORKER = 'worker@proj-a.iam.gserviceaccount.com';
const ADMIN = 'admin@proj-a.iam.gserviceaccount.com';

let world: World;
let google: IssuerStandIn;
let backend: CallbackBackend;

beforeAll(async () => {
  google = await startIssuer({ kind: 'google' });
  backend = await startCallbackBackend();
  world = await startWorld({
    config: (d) => ({
      ...d,
      issuers: [...(d.issuers as object[]), { name: 'google', type: 'google', issuer: google.issuer, audiences: [AUDIENCE] }],
      callbacks: {
        routes: [
          { prefix: '/callbacks/ops', upstream: backend.url, callers: ['*@proj-a.iam.gserviceaccount.com'] },
          { prefix: '/callbacks/ops/admin', upstream: backend.url, callers: [ADMIN] },
        ],
      },
    }),
  });
  backend.trust({
    jwksUrl: `${world.proxy.adminUrl}/.well-known/jwks.json`,
    issuer: 'kube-vertex-proxy',
    audience: [`${backend.url}/callbacks/ops`, `${backend.url}/callbacks/ops/admin`],
  });
});
afterAll(async () => {
  await world?.close();
  await Promise.all([google?.close(), backend?.close()]);
});

function post(path: string, email: string) {
  return rawRequest(
    world.proxy.dataUrl,
    'POST',
    path,
    { authorization: `Bearer ${google.mintGoogleIdToken({ email, audience: AUDIENCE })}`, 'content-type': 'application/json' },
    '{}',
  );
}

describe('callback route escape', () => {
  it(
    'controls: the worker reaches /callbacks/ops, the admin reaches /callbacks/ops/admin, and each assertion names its own ' +
      'route as audience',
    async () => {
      const worker = await post('/callbacks/ops/jobs/1', WORKER);
      expect(worker.status).toBe(200);
      const workerSeen = backend.requests.at(-1)!;
      expect(workerSeen.url).toBe('/callbacks/ops/jobs/1');
      const admin = await post('/callbacks/ops/admin/reset', ADMIN);
      expect(admin.status).toBe(200);
      const adminSeen = backend.requests.at(-1)!;
      expect(adminSeen.url).toBe('/callbacks/ops/admin/reset');
      const audOf = (r: typeof workerSeen) => ('claims' in r.assertion ? r.assertion.claims.aud : r.assertion.error);
      expect(audOf(workerSeen)).toBe(`${backend.url}/callbacks/ops`);
      expect(audOf(adminSeen)).toBe(`${backend.url}/callbacks/ops/admin`);
      expect(audOf(workerSeen)).not.toBe(audOf(adminSeen));
    },
  );

  it('the worker is refused on the admin route itself (control)', async () => {
    expect((await post('/callbacks/ops/admin/reset', WORKER)).status).toBe(403);
  });

  it.each([
    ['/callbacks/ops/%61dmin/reset', 'an encoded unreserved character'],
    ['/callbacks/ops/adm%69n/reset', 'an encoded unreserved character'],
    ['/callbacks/ops/%41DMIN/reset', 'an encoded unreserved character'],
    ['/callbacks/ops/admin;/reset', '";"'],
    ['/callbacks/ops/admin;x=1/reset', '";"'],
    ['/callbacks/ops/admin%3b/reset', '";"'],
    ['/callbacks/ops/ADMIN/reset', 'letter case'],
    ['/callbacks/ops/Admin/reset', 'letter case'],
    ['/callbacks/ops/aDmIn', 'letter case'],
  ])('%s with the worker token is refused with 400, audited, and reaches no backend', async (path, message) => {
    const before = backend.requests.length;
    const response = await post(path, WORKER);
    expect(response.status).toBe(400);
    const body = JSON.parse(response.body) as {
      error: { message: string; details: Array<{ metadata?: { code?: string }; requestId?: string }> };
    };
    expect(body.error.details[0]?.metadata?.code).toBe('ERR_REQUEST_INVALID_PATH');
    expect(body.error.message).toContain(message);
    const requestId = body.error.details[1]?.requestId;
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.requestId === requestId);
    expect(entry.kubeVertexProxy).toMatchObject({
      direction: 'inbound',
      decision: 'deny',
      status: 400,
      errorCode: 'ERR_REQUEST_INVALID_PATH',
    });
    expect(backend.requests.length).toBe(before);
  });

  it('the admin token is refused on those spellings too: no spelling but the exact one is served', async () => {
    const before = backend.requests.length;
    expect((await post('/callbacks/ops/%61dmin/reset', ADMIN)).status).toBe(400);
    expect((await post('/callbacks/ops/ADMIN/reset', ADMIN)).status).toBe(400);
    expect(backend.requests.length).toBe(before);
  });
});
