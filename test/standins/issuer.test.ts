/**
 * The issuer stand-in against jose, the verifier the proxy uses: Kubernetes
 * tokens through OIDC discovery, Google ID tokens through the v3 certs, key
 * rotation, and the exact header/claim/document shapes of the Kubernetes
 * (https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/) and Google
 * (https://developers.google.com/identity/openid-connect/openid-connect) issuers.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type IssuerStandIn } from '../../dev/standins/issuer.js';

const AUDIENCE = 'kube-vertex-proxy';

function decodePayload(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}
function rawHeader(jwt: string): string {
  return Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8');
}

/** What a relying party does: discovery document → jwks_uri → remote key set. */
async function discover(issuer: string): Promise<{ document: Record<string, unknown>; keys: ReturnType<typeof createRemoteJWKSet> }> {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`);
  expect(response.status).toBe(200);
  const document = (await response.json()) as Record<string, unknown>;
  return { document, keys: createRemoteJWKSet(new URL(String(document['jwks_uri'])), { cooldownDuration: 0 }) };
}

describe('kubernetes issuer stand-in', () => {
  let cluster: IssuerStandIn;
  beforeAll(async () => {
    cluster = await startIssuer({ kind: 'kubernetes' });
  });
  afterAll(() => cluster.close());

  it('serves GKE discovery and a go-jose JWKS with the documented headers', async () => {
    expect(cluster.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/projects\/[^/]+\/locations\/[^/]+\/clusters\/[^/]+$/);
    const discovery = await fetch(cluster.discoveryUrl);
    expect(discovery.headers.get('content-type')).toBe('application/json');
    expect(discovery.headers.get('cache-control')).toBe('public, max-age=3600');
    expect(await discovery.json()).toEqual({
      issuer: cluster.issuer,
      jwks_uri: `${cluster.issuer}/jwks`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      claims_supported: ['iss', 'sub', 'kubernetes.io'],
      grant_types: ['urn:kubernetes:grant_type:programmatic_authorization'],
    });

    const jwks = await fetch(cluster.jwksUri);
    expect(jwks.headers.get('content-type')).toBe('application/jwk-set+json');
    expect(jwks.headers.get('cache-control')).toBe('public, max-age=3600');
    const body = (await jwks.json()) as { keys: Array<Record<string, string>> };
    expect(body.keys).toHaveLength(1);
    const [key] = body.keys;
    expect(Object.keys(key!)).toEqual(['use', 'kty', 'kid', 'alg', 'n', 'e']);
    expect(key).toMatchObject({ use: 'sig', kty: 'RSA', alg: 'RS256', e: 'AQAB' });
    // kid = base64url(SHA-256(DER SPKI)), recomputed from the published key itself.
    const spki = createPublicKey({ key: key!, format: 'jwk' }).export({ type: 'spki', format: 'der' });
    expect(key!['kid']).toBe(createHash('sha256').update(spki).digest('base64url'));
  });

  it('mints tokens exactly as kube-apiserver does for a custom audience, which jose verifies via discovery', async () => {
    const jwt = cluster.mintKubernetesToken({
      namespace: 'ml',
      serviceAccount: 'trainer',
      audience: AUDIENCE,
      podName: 'trainer-0',
      nodeName: 'gke-node-1',
      expiresIn: 3600,
    });
    expect(rawHeader(jwt)).toBe(JSON.stringify({ alg: 'RS256', kid: cluster.currentKey.kid }));

    const { keys } = await discover(cluster.issuer);
    const { payload } = await jwtVerify(jwt, keys, { issuer: cluster.issuer, audience: AUDIENCE, algorithms: ['RS256'] });
    expect(Object.keys(payload)).toEqual(['aud', 'exp', 'iat', 'iss', 'jti', 'kubernetes.io', 'nbf', 'sub']);
    expect(payload.aud).toEqual([AUDIENCE]);
    expect(payload.sub).toBe('system:serviceaccount:ml:trainer');
    expect(payload.nbf).toBe(payload.iat);
    expect(payload.exp! - payload.iat!).toBe(3600);
    expect(payload.jti).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const k8s = payload['kubernetes.io'] as Record<string, unknown>;
    expect(Object.keys(k8s)).toEqual(['namespace', 'node', 'pod', 'serviceaccount']);
    expect(k8s).toMatchObject({
      namespace: 'ml',
      node: { name: 'gke-node-1' },
      pod: { name: 'trainer-0' },
      serviceaccount: { name: 'trainer' },
    });
    expect(k8s).not.toHaveProperty('warnafter');

    // The ServiceAccount object has one uid across tokens; pods differ.
    const again = decodePayload(cluster.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'trainer', audience: [AUDIENCE, 'other'] }));
    expect(again['aud']).toEqual([AUDIENCE, 'other']);
    const againK8s = again['kubernetes.io'] as Record<string, Record<string, string>>;
    expect(againK8s['serviceaccount']!['uid']).toBe((k8s['serviceaccount'] as Record<string, string>)['uid']);
    expect(againK8s).not.toHaveProperty('pod');
    expect(againK8s).not.toHaveProperty('node');
  });

  it('rotates: new tokens use the new kid, both keys are published, retiring drops the old one', async () => {
    const { keys } = await discover(cluster.issuer);
    const oldToken = cluster.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE });
    await jwtVerify(oldToken, keys, { issuer: cluster.issuer, audience: AUDIENCE });

    const oldKid = cluster.currentKey.kid;
    const next = await cluster.rotateKey();
    expect(next.kid).not.toBe(oldKid);
    const newToken = cluster.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE });
    expect(decodeProtectedHeader(newToken).kid).toBe(next.kid);
    expect(cluster.jwks().keys.map((k) => k['kid'])).toEqual([oldKid, next.kid]);

    const before = cluster.jwksRequests;
    await jwtVerify(newToken, keys, { issuer: cluster.issuer, audience: AUDIENCE }); // unknown kid → one refetch
    expect(cluster.jwksRequests).toBe(before + 1);
    await jwtVerify(oldToken, keys, { issuer: cluster.issuer, audience: AUDIENCE });

    cluster.retireOldKeys();
    const fresh = createRemoteJWKSet(new URL(cluster.jwksUri));
    await jwtVerify(newToken, fresh, { issuer: cluster.issuer, audience: AUDIENCE });
    await expect(jwtVerify(oldToken, fresh, { issuer: cluster.issuer, audience: AUDIENCE })).rejects.toBeInstanceOf(
      errors.JWKSNoMatchingKey,
    );
  });

  it('answers 503 for discovery and JWKS while unavailable, and counts the attempts', async () => {
    const [discoveryBefore, jwksBefore] = [cluster.discoveryRequests, cluster.jwksRequests];
    cluster.setJwksAvailable(false);
    try {
      const [d, j] = await Promise.all([fetch(cluster.discoveryUrl), fetch(cluster.jwksUri)]);
      expect([d.status, j.status]).toEqual([503, 503]);
      expect(await j.json()).toEqual({ error: { code: 503, message: 'The service is currently unavailable.', status: 'UNAVAILABLE' } });
    } finally {
      cluster.setJwksAvailable(true);
    }
    expect(cluster.discoveryRequests).toBe(discoveryBefore + 1);
    expect(cluster.jwksRequests).toBe(jwksBefore + 1);
    expect((await fetch(cluster.jwksUri)).status).toBe(200);
  });

  it('makes hostile tokens that jose refuses', async () => {
    const keys = createLocalJWKSet(cluster.jwks());
    const forged = cluster.mintWithForeignKey({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE });
    expect(decodeProtectedHeader(forged).kid).toBe(cluster.currentKey.kid);
    await expect(jwtVerify(forged, keys)).rejects.toBeInstanceOf(errors.JWSSignatureVerificationFailed);

    const claims = decodePayload(cluster.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE }));
    const unsigned = cluster.signRaw({ alg: 'none' }, claims, null);
    expect(unsigned.endsWith('.')).toBe(true);
    await expect(jwtVerify(unsigned, keys)).rejects.toThrow();
    const hmac = cluster.signRaw({ alg: 'HS256', kid: cluster.currentKey.kid }, claims, new TextEncoder().encode('secret'));
    await expect(jwtVerify(hmac, keys)).rejects.toThrow();

    // signRaw signs exactly the bytes it is given, so a valid key makes a valid token.
    const exact = cluster.signRaw('{"alg":"RS256","kid":"' + cluster.currentKey.kid + '","typ":"JWT"}', claims);
    await expect(jwtVerify(exact, keys, { issuer: cluster.issuer })).resolves.toBeDefined();
    const tampered = cluster.mintKubernetesToken({
      namespace: 'ml',
      serviceAccount: 'trainer',
      audience: AUDIENCE,
      overrideClaims: { jti: undefined, sub: 'system:serviceaccount:kube-system:admin' },
      header: { typ: 'JWT' },
    });
    const payload = decodePayload(tampered);
    expect(payload).not.toHaveProperty('jti');
    expect(payload['sub']).toBe('system:serviceaccount:kube-system:admin');
    expect(decodeProtectedHeader(tampered)).toEqual({ alg: 'RS256', kid: cluster.currentKey.kid, typ: 'JWT' });
  });

  it('signs ES256 with an EC JWKS in go-jose field order', async () => {
    const ec = await startIssuer({ kind: 'kubernetes', algorithm: 'ES256', issuerPath: '/v1/projects/p/locations/l/clusters/ec' });
    try {
      const { document, keys } = await discover(ec.issuer);
      expect(document['id_token_signing_alg_values_supported']).toEqual(['ES256']);
      expect(Object.keys(ec.jwks().keys[0]!)).toEqual(['use', 'kty', 'kid', 'crv', 'alg', 'x', 'y']);
      const jwt = ec.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE });
      const { protectedHeader } = await jwtVerify(jwt, keys, { issuer: ec.issuer, audience: AUDIENCE });
      expect(protectedHeader).toEqual({ alg: 'ES256', kid: ec.currentKey.kid });
    } finally {
      await ec.close();
    }
  });
});

describe('google issuer stand-in', () => {
  let google: IssuerStandIn;
  beforeAll(async () => {
    google = await startIssuer({ kind: 'google' });
  });
  afterAll(() => google.close());

  it('serves the v3 certs shape and mints ID tokens that jose verifies', async () => {
    const { document, keys } = await discover(google.issuer);
    expect(document['jwks_uri']).toBe(`${google.url}/oauth2/v3/certs`);
    const certs = await fetch(google.jwksUri);
    expect(certs.headers.get('cache-control')).toBe('public, max-age=21600, must-revalidate, no-transform');
    const body = (await certs.json()) as { keys: Array<Record<string, string>> };
    expect(body.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', e: 'AQAB' });
    expect(body.keys[0]!['kid']).toMatch(/^[0-9a-f]{40}$/);

    const email = 'service-123456789012@gcp-sa-aiplatform-cc.iam.gserviceaccount.com';
    const jwt = google.mintGoogleIdToken({ email, audience: 'https://callbacks.example.com' });
    expect(rawHeader(jwt)).toBe(JSON.stringify({ alg: 'RS256', kid: google.currentKey.kid, typ: 'JWT' }));
    const { payload } = await jwtVerify<JWTPayload & { email: string; email_verified: boolean; azp: string }>(jwt, keys, {
      issuer: google.issuer,
      audience: 'https://callbacks.example.com',
    });
    expect(Object.keys(payload)).toEqual(['aud', 'azp', 'email', 'email_verified', 'exp', 'iat', 'iss', 'sub']);
    expect(payload.sub).toMatch(/^1\d{20}$/);
    expect(payload.azp).toBe(payload.sub);
    expect(payload.email).toBe(email);
    expect(payload.email_verified).toBe(true);
    expect(payload.exp! - payload.iat!).toBe(3600);
    // Same account, same unique id.
    expect(decodePayload(google.mintGoogleIdToken({ email, audience: 'x' }))['sub']).toBe(payload.sub);
  });

  it('can claim the real issuer for configs that pin https://accounts.google.com with a jwksUri', async () => {
    const jwt = google.mintGoogleIdToken({
      email: 'a@b.iam.gserviceaccount.com',
      audience: 'aud',
      overrideClaims: { iss: 'https://accounts.google.com' },
    });
    const { payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(google.jwksUri)), {
      issuer: ['https://accounts.google.com', 'accounts.google.com'],
      audience: 'aud',
    });
    expect(payload.iss).toBe('https://accounts.google.com');
  });

  it('rotates like Google: both kids in the certs, new tokens on the new one', async () => {
    const keys = createRemoteJWKSet(new URL(google.jwksUri), { cooldownDuration: 0 });
    const next = await google.rotateKey();
    expect(google.jwks().keys).toHaveLength(2);
    const jwt = google.mintGoogleIdToken({ email: 'a@b.iam.gserviceaccount.com', audience: 'aud' });
    const { protectedHeader } = await jwtVerify(jwt, keys, { issuer: google.issuer, audience: 'aud' });
    expect(protectedHeader.kid).toBe(next.kid);
  });

  it('refuses a non-RS256 Google issuer and a non-loopback host', async () => {
    await expect(startIssuer({ kind: 'google', algorithm: 'ES256' })).rejects.toBeInstanceOf(TypeError);
    await expect(startIssuer({ kind: 'kubernetes', host: '0.0.0.0' })).rejects.toBeInstanceOf(TypeError);
  });
});
