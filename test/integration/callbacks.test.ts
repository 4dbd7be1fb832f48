/**
 * Callbacks end to end: Vertex AI workloads (Google ID tokens minted by the
 * loopback issuer in Google's shape) call in-cluster backends through the
 * real proxy process. The backend stand-in verifies the proxy's identity
 * assertion with jose against the JWKS on the proxy's admin port, as a real
 * backend would.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type IssuerStandIn } from '../../src/standins/issuer.js';
import { startCallbackBackend, type CallbackBackend } from '../helpers/callback-backend.js';
import { runCli, writeConfig, type AuditEntry } from '../helpers/proxy-process.js';
import { chunkedBody, PREDICT_PATH, rawRequest, startWorld, type World } from '../helpers/world.js';

const CALLBACK_AUDIENCE = 'https://vertex-callbacks.example.com';
/** A route that accepts only tokens minted for its own URL. */
const REPORTS_AUDIENCE = 'https://vertex-callbacks.example.com/callbacks/reports';
const SERVICE_AGENT = 'service-123456789012@gcp-sa-aiplatform.iam.gserviceaccount.com';
const PIPELINES = 'pipelines@demo-project.iam.gserviceaccount.com';

let world: World;
let google: IssuerStandIn;
let backend: CallbackBackend;
let config: Record<string, unknown>;

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  google = await startIssuer({ kind: 'google' });
  backend = await startCallbackBackend({ slowMs: 4_000 });
  const unreachable = await closedPort();
  world = await startWorld({
    config: (defaults) => {
      config = {
        ...defaults,
        issuers: [
          ...(defaults.issuers as object[]),
          { name: 'google', type: 'google', issuer: google.issuer, audiences: [CALLBACK_AUDIENCE, REPORTS_AUDIENCE] },
        ],
        callbacks: {
          routes: [
            {
              prefix: '/callbacks/training',
              upstream: backend.url,
              callers: [SERVICE_AGENT, '*@demo-project.iam.gserviceaccount.com'],
              methods: ['POST', 'GET'],
              bodyLimit: '1KiB',
            },
            {
              prefix: '/callbacks/training/batch',
              upstream: `${backend.url}/base`,
              rewritePrefix: '/batch-results',
              callers: [PIPELINES],
              methods: ['POST', 'PUT'],
              audience: 'batch-backend',
            },
            { prefix: '/callbacks/slow', upstream: backend.url, rewritePrefix: '/slow', callers: [SERVICE_AGENT], timeout: '1s' },
            { prefix: '/callbacks/unreachable', upstream: `http://127.0.0.1:${unreachable}`, callers: [SERVICE_AGENT] },
            { prefix: '/callbacks/reports', upstream: backend.url, callers: [SERVICE_AGENT], tokenAudiences: [REPORTS_AUDIENCE] },
          ],
        },
      };
      return config;
    },
  });
  backend.trust({
    jwksUrl: `${world.proxy.adminUrl}/.well-known/jwks.json`,
    issuer: 'kube-vertex-proxy',
    audience: ['/callbacks/training', '/callbacks/slow', '/callbacks/reports'].map((p) => `${backend.url}${p}`).concat('batch-backend'),
  });
});
afterAll(async () => {
  if (process.env.KVP_DEBUG === '1') process.stderr.write(`${world?.proxy.stderrText()}\n${world?.proxy.stdoutText().slice(-5000)}\n`);
  await world?.close();
  await Promise.all([google?.close(), backend?.close()]);
});

function googleToken(email: string, extra: Partial<Parameters<IssuerStandIn['mintGoogleIdToken']>[0]> = {}): string {
  return google.mintGoogleIdToken({ email, audience: CALLBACK_AUDIENCE, ...extra });
}

async function requestIdOf(response: Response): Promise<string> {
  const body = (await response.json()) as { error: { details: Array<{ requestId?: string }> } };
  return body.error.details.find((d) => d.requestId !== undefined)?.requestId as string;
}

function auditOf(requestId: string): Promise<AuditEntry> {
  return world.proxy.waitForAudit((e) => e.kubeVertexProxy.requestId === requestId);
}

describe('an allowed callback', () => {
  it('reaches the backend with a verifiable assertion, the caller email and request id, and without the original token', async () => {
    const token = googleToken(SERVICE_AGENT);
    const before = backend.requests.length;
    const response = await world.call('/callbacks/training/jobs/42:complete?attempt=1', {
      token,
      body: JSON.stringify({ state: 'SUCCEEDED' }),
      headers: { 'x-kvp-caller-email': 'admin@example.com', 'x-kvp-assertion': 'forged', 'x-forwarded-for': '10.0.0.1', cookie: 'a=b' },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, caller: SERVICE_AGENT, route: '/callbacks/training' });
    // The backend's own cookies stay between it and the proxy.
    expect(response.headers.get('set-cookie')).toBeNull();
    expect(response.headers.get('x-backend')).toBe('trainer');

    expect(backend.requests.length).toBe(before + 1);
    const received = backend.requests.at(-1)!;
    expect(received.method).toBe('POST');
    expect(received.url).toBe('/callbacks/training/jobs/42:complete?attempt=1');
    expect(received.body).toBe('{"state":"SUCCEEDED"}');
    expect(received.headers.authorization).toBeUndefined();
    expect(received.headers.cookie).toBeUndefined();
    expect(received.headers['x-forwarded-for']).toBeUndefined();
    expect(JSON.stringify(received.headers)).not.toContain(token);
    expect(received.headers['x-kvp-caller-email']).toBe(SERVICE_AGENT);
    const requestId = received.headers['x-kvp-request-id'] as string;
    expect(received.assertion).toEqual({
      claims: {
        iss: 'kube-vertex-proxy',
        // Each route its own audience by default: the upstream followed by the route prefix.
        aud: `${backend.url}/callbacks/training`,
        sub: expect.stringMatching(/^1[0-9]{20}$/),
        email: SERVICE_AGENT,
        route: '/callbacks/training',
        request_id: requestId,
        jti: requestId,
        iat: expect.any(Number),
        exp: expect.any(Number),
      },
    });
    const claims = (received.assertion as { claims: { iat: number; exp: number } }).claims;
    expect(claims.exp - claims.iat).toBe(60);

    const entry = await auditOf(requestId);
    expect(entry.kubeVertexProxy).toMatchObject({
      direction: 'inbound',
      route: '/callbacks/training',
      principal: SERVICE_AGENT,
      issuer: 'google',
      decision: 'allow',
      ruleId: 'callbacks:/callbacks/training',
      reason: 'allowed-by-rule',
      status: 200,
      upstreamStatus: 200,
      path: '/callbacks/training/jobs/42:complete',
    });
    expect(JSON.stringify(entry)).not.toContain(token);
    expect(JSON.stringify(entry)).not.toContain('SUCCEEDED');
  });

  it('the longest prefix wins, its prefix is rewritten onto the upstream base path, and its callers apply', async () => {
    const response = await world.call('/callbacks/training/batch/7', { token: googleToken(PIPELINES), method: 'PUT', body: '{}' });
    expect(response.status).toBe(200);
    const received = backend.requests.at(-1)!;
    expect(received.url).toBe('/base/batch-results/7');
    expect(received.assertion).toMatchObject({ claims: { aud: 'batch-backend', route: '/callbacks/training/batch', email: PIPELINES } });

    // The Vertex AI service agent may use /callbacks/training, but not its longer sibling.
    const refused = await world.call('/callbacks/training/batch/7', { token: googleToken(SERVICE_AGENT), method: 'PUT', body: '{}' });
    expect(refused.status).toBe(403);
  });

  it.each([
    ['a small body with a content type (sent whole)', 10_000, 'application/json'],
    ['a small body without a content type (streamed, no type added)', 10_000, undefined],
    ['a body over 64 KiB (streamed)', 200_000, 'application/json'],
  ])('%s reaches the backend byte for byte', async (_label, size, contentType) => {
    const payload = JSON.stringify({ blob: 'y'.repeat(size) });
    // node:http directly: the world's helpers add a content type.
    const headers: Record<string, string> = {
      authorization: `Bearer ${googleToken(PIPELINES)}`,
      ...(contentType === undefined ? {} : { 'content-type': contentType }),
    };
    const response = await rawRequest(world.proxy.dataUrl, 'PUT', '/callbacks/training/batch/9', headers, payload);
    expect(response.status).toBe(200);
    const received = backend.requests.at(-1)!;
    expect(received.body).toBe(payload);
    expect(received.headers['content-type']).toBe(contentType);
  });

  it("the backend refuses an assertion that is not the proxy's (forged header, no proxy in between)", async () => {
    const response = await fetch(`${backend.url}/callbacks/training/x`, {
      method: 'POST',
      headers: { 'x-kvp-assertion': googleToken(SERVICE_AGENT) },
      body: '{}',
    });
    expect(response.status).toBe(401);
  });

  it('the admin port serves the assertion JWKS; the data port does not', async () => {
    const jwks = await fetch(`${world.proxy.adminUrl}/.well-known/jwks.json`);
    expect(jwks.status).toBe(200);
    expect(jwks.headers.get('content-type')).toContain('application/jwk-set+json');
    const body = (await jwks.json()) as { keys: Array<Record<string, string>> };
    expect(body.keys).toEqual([
      { kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), kid: expect.any(String), alg: 'ES256', use: 'sig' },
    ]);
    const onDataPort = await world.raw('GET', '/.well-known/jwks.json', { token: null });
    expect(onDataPort.status).toBe(401);
  });
});

describe('refused callbacks', () => {
  /** `decision` is the authorization verdict: a request refused after it (413, 502, 504) was allowed by its route. */
  async function expectRefused(
    response: Response,
    status: number,
    code: string,
    reason: string,
    decision: 'allow' | 'deny' = 'deny',
  ): Promise<AuditEntry> {
    expect(response.status).toBe(status);
    const requestId = await requestIdOf(response.clone());
    const body = (await response.json()) as { error: { code: number; details: Array<{ metadata?: { code?: string } }> } };
    expect(body.error.code).toBe(status);
    expect(body.error.details[0]?.metadata?.code).toBe(code);
    const entry = await auditOf(requestId);
    expect(entry.kubeVertexProxy).toMatchObject({ direction: 'inbound', decision, status, errorCode: code, reason });
    return entry;
  }

  it.each([
    [
      'a token for another audience',
      () => google.mintGoogleIdToken({ email: SERVICE_AGENT, audience: 'https://elsewhere.example.com' }),
      401,
      'ERR_AUTHN_INVALID_TOKEN',
      'wrong-audience',
    ],
    [
      'an unverified email',
      () => googleToken(SERVICE_AGENT, { emailVerified: false }),
      401,
      'ERR_IDENTITY_INVALID_CLAIMS',
      'email-not-verified',
    ],
    [
      'a token signed by an unpublished key',
      () => google.mintWithForeignKey({ email: SERVICE_AGENT, audience: CALLBACK_AUDIENCE }),
      401,
      'ERR_AUTHN_INVALID_TOKEN',
      'bad-signature',
    ],
    [
      'an unlisted service account',
      () => googleToken('intruder@other-project.iam.gserviceaccount.com'),
      403,
      'ERR_AUTHZ_DENIED',
      'caller-not-allowed',
    ],
    [
      'a look-alike of the allowed pattern',
      () => googleToken('service-1@gcp-sa-aiplatform-cc.iam.gserviceaccount.com'),
      403,
      'ERR_AUTHZ_DENIED',
      'caller-not-allowed',
    ],
    ['a Kubernetes service-account token', () => world.token('ml', 'trainer'), 401, 'ERR_AUTHN_UNTRUSTED_ISSUER', 'wrong-token-kind'],
  ])('%s is refused (%i) with an audit record, and nothing reaches the backend', async (_what, token, status, code, reason) => {
    const before = backend.requests.length;
    const response = await world.call('/callbacks/training/jobs/1', { token: token(), body: '{}' });
    const entry = await expectRefused(response, status, code, reason);
    expect(entry.kubeVertexProxy.route).toBe('/callbacks/training');
    expect(backend.requests.length).toBe(before);
  });

  it('a route with tokenAudiences refuses a token minted for another callback URL the issuer accepts, and takes its own', async () => {
    const before = backend.requests.length;
    const foreign = await world.call('/callbacks/reports/daily', { token: googleToken(SERVICE_AGENT), body: '{}' });
    const entry = await expectRefused(foreign, 401, 'ERR_AUTHN_INVALID_TOKEN', 'wrong-audience');
    expect(entry.kubeVertexProxy.route).toBe('/callbacks/reports');
    expect(backend.requests.length).toBe(before);
    const own = await world.call('/callbacks/reports/daily', {
      token: googleToken(SERVICE_AGENT, { audience: REPORTS_AUDIENCE }),
      body: '{}',
    });
    expect(own.status).toBe(200);
    expect(backend.requests.length).toBe(before + 1);
  });

  it('a request without a token is 401 with a Bearer challenge', async () => {
    const response = await world.call('/callbacks/training/jobs/1', { token: null, body: '{}' });
    expect(response.headers.get('www-authenticate')).toContain('Bearer');
    await expectRefused(response, 401, 'ERR_AUTHN_MISSING_CREDENTIALS', 'missing-token');
  });

  it('a Google ID token is still refused on the Vertex AI routes', async () => {
    const response = await world.call(PREDICT_PATH, { token: googleToken(SERVICE_AGENT), body: '{}' });
    expect(response.status).toBe(401);
  });

  it('a method the route does not allow is 405 with Allow', async () => {
    const response = await world.call('/callbacks/training/jobs/1', { token: googleToken(SERVICE_AGENT), method: 'DELETE' });
    expect(response.headers.get('allow')).toBe('POST, GET');
    await expectRefused(response, 405, 'ERR_REQUEST_METHOD_NOT_ALLOWED', 'method-not-allowed');
  });

  it('a body over the route limit is 413 before anything is forwarded (declared length)', async () => {
    const before = backend.requests.length;
    const response = await world.call('/callbacks/training/jobs/1', {
      token: googleToken(SERVICE_AGENT),
      body: JSON.stringify({ blob: 'x'.repeat(2048) }),
    });
    await expectRefused(response, 413, 'ERR_REQUEST_BODY_TOO_LARGE', 'body-too-large', 'allow');
    expect(backend.requests.length).toBe(before);
  });

  it('a chunked body over the route limit is cut off with 413, and the backend never gets a complete request', async () => {
    const before = backend.requests.length;
    const body = chunkedBody([new TextEncoder().encode('x'.repeat(800)), new TextEncoder().encode('y'.repeat(800))]);
    const response = await world.call('/callbacks/training/jobs/1', {
      token: googleToken(SERVICE_AGENT),
      method: 'POST',
      body,
      duplex: 'half',
    });
    await expectRefused(response, 413, 'ERR_REQUEST_BODY_TOO_LARGE', 'body-too-large', 'allow');
    expect(backend.requests.slice(before).filter((r) => r.body.length > 1024)).toEqual([]);
  });

  it("an unreachable backend is 502, a slow one 504; neither says more than Google's generic message", async () => {
    const unreachable = await world.call('/callbacks/unreachable/x', { token: googleToken(SERVICE_AGENT), body: '{}' });
    await expectRefused(unreachable, 502, 'ERR_FORWARD_UPSTREAM_UNREACHABLE', 'upstream-unreachable:econnrefused', 'allow');
    const slow = await world.call('/callbacks/slow/x', { token: googleToken(SERVICE_AGENT), body: '{}' });
    expect(slow.status).toBe(504);
    expect(JSON.stringify(await slow.json())).not.toContain('127.0.0.1');
  });
});

describe('metrics', () => {
  it('count callbacks with direction inbound and the route as the operation label', async () => {
    const text = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
    expect(text).toContain(
      'kube_vertex_proxy_requests_total{direction="inbound",operation="callback:/callbacks/training",decision="allow",code="200"}',
    );
    expect(text).toContain(
      'kube_vertex_proxy_requests_total{direction="inbound",operation="callback:/callbacks/training",decision="deny",code="403"}',
    );
    expect(text).not.toContain(SERVICE_AGENT);
  });
});

describe('can-i --as-google', () => {
  it.each([
    [[SERVICE_AGENT, 'POST', '/callbacks/training/jobs/1'], 0, 'allowed'],
    [[PIPELINES, 'PUT', '/callbacks/training/batch/1'], 0, 'allowed'],
    [['intruder@other-project.iam.gserviceaccount.com', 'POST', '/callbacks/training/jobs/1'], 1, 'denied'],
    [[SERVICE_AGENT, 'DELETE', '/callbacks/training/jobs/1'], 1, 'denied'],
    [[SERVICE_AGENT, 'POST', '/callbacks/training/../admin'], 2, 'invalid'],
    [[SERVICE_AGENT, 'POST', '/not-a-callback'], 2, 'invalid'],
  ])('%j exits %i (%s)', async (args, code, first) => {
    const path = writeConfig(config);
    const result = await runCli(['can-i', '--config', path, '--as-google', ...args]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(code);
    expect(result.stdout.split('\n')[0]).toMatch(new RegExp(`^${first}`));
  });

  it('names the route, the matching entry and the forwarded URL', async () => {
    const result = await runCli([
      'can-i',
      '--config',
      writeConfig(config),
      '--as-google',
      PIPELINES,
      'POST',
      '/callbacks/training/batch/9?x=1',
    ]);
    expect(result.stdout).toContain('route:     /callbacks/training/batch');
    expect(result.stdout).toContain(`matched by ${PIPELINES}`);
    expect(result.stdout).toContain(`forwards:  POST ${backend.url}/base/batch-results/9`);
  });
});
