/**
 * The metadata stand-in driven by google-auth-library 11 / gcp-metadata 9, the
 * libraries the proxy gets its Google credential from: Application Default
 * Credentials find it through `metadataEnv`, fetch access tokens and ID
 * tokens, and fail the way they would on a broken GKE node.
 */
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { GoogleAuth, gcpMetadata } from 'google-auth-library';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { metadataEnv, parseIdentityQuery, startMetadataServer, type MetadataStandIn } from '../../dev/standins/metadata.js';

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';

function stubEnv(env: Record<string, string>): void {
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
}

describe('metadata stand-in with google-auth-library', () => {
  let metadata: MetadataStandIn;
  beforeAll(async () => {
    metadata = await startMetadataServer({ projectId: 'demo-project', expiresIn: 3599 });
  });
  afterAll(() => metadata.close());
  beforeEach(() => {
    stubEnv(metadataEnv(metadata));
    // gcp-metadata memoises detection per process; the env differs between tests.
    gcpMetadata.resetIsAvailableCache();
  });
  afterEach(() => {
    vi.unstubAllEnvs();
    metadata.setAvailable(true);
  });

  it('is found as Application Default Credentials and hands out access tokens', async () => {
    const auth = new GoogleAuth({ scopes: CLOUD_PLATFORM });
    const before = metadata.tokenRequests;
    const token = await auth.getAccessToken();
    expect(token).toMatch(/^ya29\./);
    expect(metadata.issuedTokens.at(-1)).toBe(token);
    expect(metadata.tokenRequests).toBe(before + 1);
    expect(metadata.tokenScopes.at(-1)).toEqual([CLOUD_PLATFORM]);
    expect(await auth.getProjectId()).toBe('demo-project');

    const client = await auth.getClient();
    const expiry = (client.credentials as { expiry_date?: number }).expiry_date!;
    expect(expiry - Date.now()).toBeGreaterThan(3590_000);
    expect(expiry - Date.now()).toBeLessThanOrEqual(3599_000);
    // Cached until it nears expiry, as the library does on GKE.
    expect(await auth.getAccessToken()).toBe(token);
    expect(metadata.tokenRequests).toBe(before + 1);
  });

  it('hands out a distinct token on every fetch', async () => {
    const tokens = await Promise.all(
      Array.from({ length: 3 }, async () => (await new GoogleAuth({ scopes: CLOUD_PLATFORM }).getAccessToken()) ?? ''),
    );
    expect(new Set(tokens).size).toBe(3);
  });

  it('is detected by the ping when METADATA_SERVER_DETECTION is unset', async () => {
    vi.stubEnv('METADATA_SERVER_DETECTION', undefined);
    gcpMetadata.resetIsAvailableCache();
    expect(await gcpMetadata.isAvailable()).toBe(true);
    expect(await gcpMetadata.project('numeric-project-id')).toBe(123456789012);
    expect(await gcpMetadata.instance('attributes/cluster-name')).toBe('demo-cluster');
    expect(await new GoogleAuth({ scopes: CLOUD_PLATFORM }).getAccessToken()).toMatch(/^ya29\./);
  });

  it('mints Google ID tokens for getIdTokenClient, verifiable against the issuer it names', async () => {
    const audience = 'https://vertex-callbacks.example.com/a?b=c&d=e';
    const client = await new GoogleAuth().getIdTokenClient(audience);
    const headers = await client.getRequestHeaders();
    const jwt = headers.get('authorization')!.replace(/^Bearer /, '');
    const issuer = metadata.idTokenIssuer!;
    const { payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(issuer.jwksUri)), { issuer: issuer.issuer, audience });
    // format=full (what the library asks for): email claims included.
    expect(payload).toMatchObject({ email: metadata.email, email_verified: true, aud: audience });
    expect(payload['azp']).toBe(payload.sub);
  });

  it('fails token requests with 503 while unavailable, and the library reports it', async () => {
    metadata.setAvailable(false);
    const before = metadata.tokenRequests;
    await expect(new GoogleAuth({ scopes: CLOUD_PLATFORM }).getAccessToken()).rejects.toMatchObject({ status: 503 });
    // gaxios retries a 5xx GET (3 retries with backoff, ~2 s) before giving up.
    expect(metadata.tokenRequests - before).toBe(4);
  });
});

describe('metadata stand-in on the wire', () => {
  let metadata: MetadataStandIn;
  beforeAll(async () => {
    metadata = await startMetadataServer({ delayFirstTokenMs: 300 });
  });
  afterAll(() => metadata.close());
  const get = (path: string, flavor = true) =>
    fetch(`${metadata.url}/computeMetadata/v1/${path}`, { headers: flavor ? { 'Metadata-Flavor': 'Google' } : {}, redirect: 'manual' });

  it("holds the first token answer (a pod's first seconds), then answers at once", async () => {
    let started = Date.now();
    const first = await get('instance/service-accounts/default/token');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    started = Date.now();
    const second = await get('instance/service-accounts/default/token');
    expect(Date.now() - started).toBeLessThan(250);
    expect(first.headers.get('content-type')).toBe('application/json');
    const body = (await first.json()) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['access_token', 'expires_in', 'token_type']);
    expect(body).toMatchObject({ expires_in: 3599, token_type: 'Bearer' });
    expect(((await second.json()) as Record<string, unknown>)['access_token']).not.toBe(body['access_token']);
  });

  it('requires Metadata-Flavor and answers with the GKE headers', async () => {
    const refused = await get('project/project-id', false);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toBe('Missing required header "Metadata-Flavor": "Google"');
    expect(refused.headers.get('metadata-flavor')).toBeNull();

    const ok = await get('project/project-id');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('metadata-flavor')).toBe('Google');
    expect(ok.headers.get('server')).toBe('GKE Metadata Server');
    expect(ok.headers.get('content-type')).toBe('application/text');
    expect(await ok.text()).toBe('demo-project');
  });

  it('serves email, listings, redirects and 404s', async () => {
    expect(await (await get('instance/service-accounts/default/email')).text()).toBe(metadata.email);
    expect(await (await get('instance/service-accounts/')).text()).toBe(`default/\n${metadata.email}/\n`);
    const redirect = await get('instance/service-accounts');
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/computeMetadata/v1/instance/service-accounts/');
    expect((await get('instance')).status).toBe(200);
    expect((await get('instance/attributes/kube-env')).status).toBe(404);
    expect((await get('instance/service-accounts/default/identity')).status).toBe(400);
  });

  it('parses identity queries leniently (google-auth-library does not encode the audience)', () => {
    expect(parseIdentityQuery('format=full&audience=https://a.example.com/x?y=1&z=2')).toEqual({
      audience: 'https://a.example.com/x?y=1&z=2',
      format: 'full',
    });
    expect(parseIdentityQuery('audience=https%3A%2F%2Fa.example.com&format=standard')).toEqual({
      audience: 'https://a.example.com',
      format: 'standard',
    });
    expect(parseIdentityQuery('format=full').audience).toBeUndefined();
  });

  it('leaves email claims out of format=standard ID tokens', async () => {
    const jwt = await (await get('instance/service-accounts/default/identity?audience=aud')).text();
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(Object.keys(payload)).toEqual(['aud', 'azp', 'exp', 'iat', 'iss', 'sub']);
  });
});

describe('metadata stand-in for a KSA without a GSA annotation', () => {
  it("answers the pool as email and GKE's 404 for identity", async () => {
    const metadata = await startMetadataServer({
      projectId: 'p1',
      gsaAnnotated: false,
      kubernetesServiceAccount: { namespace: 'ml', name: 'trainer' },
    });
    try {
      const get = (path: string) => fetch(`${metadata.url}/computeMetadata/v1/${path}`, { headers: { 'Metadata-Flavor': 'Google' } });
      expect(await (await get('instance/service-accounts/default/email')).text()).toBe('p1.svc.id.goog');
      const identity = await get('instance/service-accounts/default/identity?audience=x');
      expect(identity.status).toBe(404);
      expect(await identity.text()).toMatch(
        /^Your Kubernetes service account \(ml\/trainer\) is not annotated with a target Google service account/,
      );
      expect(metadata.idTokenIssuer).toBeUndefined();
    } finally {
      await metadata.close();
    }
  });
});
