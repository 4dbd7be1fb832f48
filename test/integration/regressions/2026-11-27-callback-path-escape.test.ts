/**
 * Security regression (path confusion on a prefix route; cf. oauth2-proxy
 * GHSA-7rh7-c77v-6434, Tomcat `..;/`, double-encoded traversal): a caller
 * admitted on one callback route must not reach another path of the
 * backend, or another route's backend, by dot segments, encoded slashes or
 * dots, backslashes, `//`, or double encoding. Each attempt is refused on the
 * raw path, nothing reaches any backend, and the refusal is audited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type IssuerStandIn } from '../../../dev/standins/issuer.js';
import { startCallbackBackend, type CallbackBackend } from '../../helpers/callback-backend.js';
import { rawRequest, startWorld, type World } from '../../helpers/world.js';

const AUDIENCE = 'https://vertex-callbacks.example.com';
const AGENT = 'service-123456789012@gcp-sa-aiplatform.iam.gserviceaccount.com';

let world: World;
let google: IssuerStandIn;
let publicBackend: CallbackBackend;
let admin: CallbackBackend;

beforeAll(async () => {
  google = await startIssuer({ kind: 'google' });
  publicBackend = await startCallbackBackend();
  admin = await startCallbackBackend();
  world = await startWorld({
    config: (d) => ({
      ...d,
      issuers: [...(d.issuers as object[]), { name: 'google', type: 'google', issuer: google.issuer, audiences: [AUDIENCE] }],
      callbacks: {
        routes: [
          { prefix: '/callbacks/training', upstream: `${publicBackend.url}/public`, callers: [AGENT] },
          // A route the caller may not use, on another backend.
          { prefix: '/callbacks/admin', upstream: admin.url, callers: ['ops@demo-project.iam.gserviceaccount.com'] },
        ],
      },
    }),
  });
  for (const b of [publicBackend, admin])
    b.trust({
      jwksUrl: `${world.proxy.adminUrl}/.well-known/jwks.json`,
      issuer: 'kube-vertex-proxy',
      audience: [`${publicBackend.url}/public/callbacks/training`, `${admin.url}/callbacks/admin`],
    });
});
afterAll(async () => {
  await world?.close();
  await Promise.all([google?.close(), publicBackend?.close(), admin?.close()]);
});

function post(path: string) {
  return rawRequest(
    world.proxy.dataUrl,
    'POST',
    path,
    { authorization: `Bearer ${google.mintGoogleIdToken({ email: AGENT, audience: AUDIENCE })}`, 'content-type': 'application/json' },
    '{}',
  );
}

describe('callback path escapes', () => {
  it('the plain path is allowed (control)', async () => {
    const response = await post('/callbacks/training/jobs/1');
    expect(response.status).toBe(200);
    expect(publicBackend.requests.at(-1)?.url).toBe('/public/callbacks/training/jobs/1');
  });

  it.each([
    '/callbacks/training/../admin/x',
    '/callbacks/training/../../admin',
    '/callbacks/training/./../admin',
    '/callbacks/training/..;/admin',
    '/callbacks/training/%2e%2e/admin',
    '/callbacks/training/%2E%2E%2Fadmin',
    '/callbacks/training/.%2e/admin',
    '/callbacks/training/..%2f..%2fadmin',
    '/callbacks/training/..%5c..%5cadmin',
    '/callbacks/training/..\\..\\admin',
    '/callbacks/training/%252e%252e/admin',
    '/callbacks/training//admin',
    '/callbacks/training/%00',
    '/callbacks/training/x%0d%0aX-Injected:%201',
  ])('%s is refused with 400, audited as inbound, and reaches no backend', async (path) => {
    const before = publicBackend.requests.length + admin.requests.length;
    const response = await post(path);
    expect(response.status).toBe(400);
    const body = JSON.parse(response.body) as {
      error: { status: string; details: Array<{ metadata?: { code?: string }; requestId?: string }> };
    };
    expect(body.error.status).toBe('INVALID_ARGUMENT');
    expect(body.error.details[0]?.metadata?.code).toBe('ERR_REQUEST_INVALID_PATH');
    const requestId = body.error.details[1]?.requestId;
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.requestId === requestId);
    expect(entry.kubeVertexProxy).toMatchObject({
      direction: 'inbound',
      decision: 'deny',
      status: 400,
      errorCode: 'ERR_REQUEST_INVALID_PATH',
    });
    expect(publicBackend.requests.length + admin.requests.length).toBe(before);
  });

  it.each(['/callbacks/training%2F..%2Fadmin', '/callbacks/%74raining/x', '/callbacks/trainingX/x'])(
    '%s does not fall under the route at all, and reaches no backend',
    async (path) => {
      const before = publicBackend.requests.length + admin.requests.length;
      const response = await post(path);
      expect([400, 401, 404]).toContain(response.status);
      expect(publicBackend.requests.length + admin.requests.length).toBe(before);
    },
  );

  it('a caller admitted on one route is refused on another (403), whatever it sends in X-Forwarded-Uri', async () => {
    const before = admin.requests.length;
    const response = await rawRequest(
      world.proxy.dataUrl,
      'POST',
      '/callbacks/admin/x',
      {
        authorization: `Bearer ${google.mintGoogleIdToken({ email: AGENT, audience: AUDIENCE })}`,
        'x-forwarded-uri': '/callbacks/training/x',
        'x-original-url': '/callbacks/training/x',
      },
      '{}',
    );
    expect(response.status).toBe(403);
    expect(admin.requests.length).toBe(before);
  });
});
