import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IssuerSettings } from '../config/load.js';
import { ProxyError } from '../errors.js';
import { startIssuer, type IssuerStandIn } from '../../dev/standins/issuer.js';
import { TokenVerifier, type VerifierOptions } from './verifier.js';

const AUDIENCE = 'kube-vertex-proxy';
let cluster: IssuerStandIn;
let other: IssuerStandIn;
const verifiers: TokenVerifier[] = [];

beforeAll(async () => {
  cluster = await startIssuer({ kind: 'kubernetes' });
  other = await startIssuer({ kind: 'kubernetes', issuerPath: '/v1/projects/other/locations/l/clusters/other' });
});
afterAll(async () => {
  await cluster.close();
  await other.close();
});
afterEach(() => {
  for (const v of verifiers.splice(0)) v.stop();
});

function issuerSettings(overrides: Partial<IssuerSettings> = {}): IssuerSettings {
  return {
    name: 'cluster',
    type: 'kubernetes',
    issuer: cluster.issuer,
    audiences: [AUDIENCE],
    jwksUri: undefined,
    algorithms: ['RS256', 'ES256'],
    maxTokenLifetimeSec: 48 * 3600,
    ...overrides,
  };
}

async function verifier(overrides: Partial<VerifierOptions> = {}, issuer: Partial<IssuerSettings> = {}): Promise<TokenVerifier> {
  const v = new TokenVerifier({
    issuers: [issuerSettings(issuer)],
    clockSkewSec: 30,
    cacheMaxEntries: 1000,
    negativeTtlMs: 10_000,
    jwksRefreshIntervalMs: 600_000,
    jwksMinRefreshIntervalMs: 30_000,
    jwksFetchTimeoutMs: 2_000,
    ...overrides,
  });
  verifiers.push(v);
  await v.start();
  return v;
}

const token = (extra: Partial<Parameters<IssuerStandIn['mintKubernetesToken']>[0]> = {}) =>
  cluster.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE, podName: 'trainer-0', ...extra });

async function refusal(v: TokenVerifier, jwt: string): Promise<ProxyError> {
  try {
    await v.verify(jwt);
  } catch (error) {
    expect(error).toBeInstanceOf(ProxyError);
    return error as ProxyError;
  }
  throw new Error('token was accepted');
}

describe('TokenVerifier', () => {
  it('verifies a projected service-account token through OIDC discovery and caches it', async () => {
    const v = await verifier();
    const jwt = token();
    const principal = await v.verify(jwt);
    expect(principal).toMatchObject({ kind: 'kubernetes', namespace: 'ml', serviceAccount: 'trainer', pod: { name: 'trainer-0' } });
    expect(v.cached(jwt)).toEqual(principal);
    expect(v.stats).toEqual({ hits: 1, misses: 1, verifications: 1 });
  });

  it('uses an explicit jwksUri without discovery', async () => {
    const before = cluster.discoveryRequests;
    const v = await verifier({}, { jwksUri: cluster.jwksUri });
    await v.verify(token());
    expect(cluster.discoveryRequests).toBe(before);
  });

  it.each([
    ['an expired token', () => token({ iat: Math.floor(Date.now() / 1000) - 7200, expiresIn: 3600 }), 'token-expired'],
    ['a token not valid yet', () => token({ nbf: Math.floor(Date.now() / 1000) + 600 }), 'token-not-yet-valid'],
    [
      'a token issued in the future',
      () => token({ iat: Math.floor(Date.now() / 1000) + 600, nbf: Math.floor(Date.now() / 1000) - 10 }),
      'issued-in-future',
    ],
    ['a wrong audience', () => token({ audience: 'https://kubernetes.default.svc' }), 'wrong-audience'],
    [
      'a foreign issuer',
      () => other.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE }),
      'untrusted-issuer',
    ],
    [
      'a foreign signing key with a published kid',
      () => cluster.mintWithForeignKey({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE }),
      'bad-signature',
    ],
    ['alg none', () => cluster.signRaw({ alg: 'none', kid: cluster.currentKey.kid }, claims(), null), 'algorithm-not-allowed'],
    [
      'HS256 signed with the public key bytes',
      () =>
        cluster.signRaw(
          { alg: 'HS256', kid: cluster.currentKey.kid },
          claims(),
          new TextEncoder().encode(JSON.stringify(cluster.currentKey.jwk)),
        ),
      'algorithm-not-allowed',
    ],
    ['a lifetime longer than the maximum', () => token({ expiresIn: 72 * 3600 }), 'lifetime-too-long'],
    [
      'a subject that disagrees with the kubernetes.io claim',
      () => token({ overrideClaims: { sub: 'system:serviceaccount:kube-system:admin' } }),
      'kubernetes-claim-mismatch',
    ],
    ['garbage', () => 'not.a.jwt', 'malformed-token'],
  ])('refuses %s with 401', async (_title, make, reason) => {
    const v = await verifier();
    const error = await refusal(v, make());
    expect(error.httpStatus).toBe(401);
    expect(error.reason).toBe(reason);
  });

  it('accepts a token signed with a key rotated in after start (one refetch on the unknown kid)', async () => {
    const v = await verifier({ jwksMinRefreshIntervalMs: 0 });
    await v.verify(token());
    const jwksBefore = cluster.jwksRequests;
    await cluster.rotateKey();
    const principal = await v.verify(token());
    expect(principal.kind).toBe('kubernetes');
    expect(cluster.jwksRequests).toBe(jwksBefore + 1);
  });

  it('refetches on unknown kids at most once per minRefreshInterval (no fetch storm)', async () => {
    let now = Date.now();
    const v = await verifier({ jwksMinRefreshIntervalMs: 60_000, now: () => now });
    const flood = () =>
      Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          refusal(v, cluster.signRaw({ alg: 'RS256', kid: `random-${now}-${i}` }, claims(), cluster.currentKey)),
        ),
      );
    const before = cluster.jwksRequests;
    const first = await flood();
    expect(first.every((e) => e.reason === 'unknown-signing-key')).toBe(true);
    expect(cluster.jwksRequests - before).toBe(0);
    now += 60_000;
    await flood();
    expect(cluster.jwksRequests - before).toBe(1);
  });

  it('keeps the last good keys while the issuer is unreachable', async () => {
    const v = await verifier({ jwksMinRefreshIntervalMs: 0 });
    cluster.setJwksAvailable(false);
    try {
      await v.verify(cluster.signRaw({ alg: 'RS256', kid: 'unknown' }, claims(), cluster.currentKey)).catch(() => undefined);
      const principal = await v.verify(token());
      expect(principal.kind).toBe('kubernetes');
    } finally {
      cluster.setJwksAvailable(true);
    }
  });

  it("refuses an unknown kid with 503 while the issuer's latest fetch failed, even when this request may not refetch", async () => {
    let now = Date.now();
    const v = await verifier({ jwksMinRefreshIntervalMs: 60_000, now: () => now });
    cluster.setJwksAvailable(false);
    try {
      // The first unknown kid may refetch; the fetch fails: 503.
      now += 60_000;
      const first = await refusal(v, cluster.signRaw({ alg: 'RS256', kid: 'rotated-1' }, claims(), cluster.currentKey));
      expect(first.httpStatus).toBe(503);
      // Within minRefreshInterval no refetch is allowed, and the last answer was a failure: still 503, not 401.
      const second = await refusal(v, cluster.signRaw({ alg: 'RS256', kid: 'rotated-2' }, claims(), cluster.currentKey));
      expect(second.httpStatus).toBe(503);
      expect(second.code).toBe('ERR_AUTHN_VERIFIER_UNAVAILABLE');
    } finally {
      cluster.setJwksAvailable(true);
    }
  });

  it('is unavailable (503), not unauthenticated, when keys never loaded', async () => {
    cluster.setJwksAvailable(false);
    try {
      const v = await verifier({ jwksMinRefreshIntervalMs: 0 });
      const error = await refusal(v, token());
      expect(error.httpStatus).toBe(503);
      expect(error.code).toBe('ERR_AUTHN_VERIFIER_UNAVAILABLE');
    } finally {
      cluster.setJwksAvailable(true);
    }
  });

  it('shares one verification among concurrent misses of the same token', async () => {
    const v = await verifier();
    const jwt = token();
    const results = await Promise.all(Array.from({ length: 20 }, () => v.verify(jwt)));
    expect(new Set(results).size).toBe(1);
    expect(v.stats).toMatchObject({ misses: 20, verifications: 1 });
    // Settled: the next request is a cache hit, not another verification.
    await v.verify(jwt);
    expect(v.stats).toMatchObject({ hits: 1, verifications: 1 });
  });

  it('never caches past exp', async () => {
    let now = Date.now();
    const v = await verifier({ now: () => now });
    const jwt = token({ expiresIn: 600 });
    await v.verify(jwt);
    expect(v.cached(jwt)).toBeDefined();
    now += 601_000;
    expect(v.cached(jwt)).toBeUndefined();
  });

  it('bounds the cache', async () => {
    const v = await verifier({ cacheMaxEntries: 5 });
    for (let i = 0; i < 12; i++) await v.verify(token({ podName: `p-${i}` }));
    expect(v.cacheSize).toBe(5);
  });
});

function claims(): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    aud: [AUDIENCE],
    exp: now + 3600,
    iat: now,
    nbf: now,
    iss: cluster.issuer,
    'kubernetes.io': { namespace: 'ml', serviceaccount: { name: 'trainer', uid: 'u' } },
    sub: 'system:serviceaccount:ml:trainer',
  };
}

describe('TokenVerifier revocation hooks', () => {
  it('reviews a new token once, caches the outcome for the review TTL only, and reviews again after it', async () => {
    let now = Date.now();
    const reviewed: string[][] = [];
    const v = await verifier({
      now: () => now,
      reviewTtlMs: 60_000,
      reviewer: { review: async (_token, audiences) => void reviewed.push([...audiences]) },
    });
    const jwt = token();
    await v.verify(jwt);
    await v.verify(jwt);
    expect(v.cached(jwt)).toBeDefined();
    expect(reviewed).toEqual([[AUDIENCE]]);
    now += 61_000;
    expect(v.cached(jwt)).toBeUndefined();
    await v.verify(jwt);
    expect(reviewed).toHaveLength(2);
  });

  it('does not cache a token the review refuses', async () => {
    const rejected = new ProxyError('ERR_AUTHN_INVALID_TOKEN', 'no', { reason: 'token-review-rejected' });
    const v = await verifier({ reviewTtlMs: 60_000, reviewer: { review: async () => Promise.reject(rejected) } });
    const jwt = token();
    expect((await refusal(v, jwt)).reason).toBe('token-review-rejected');
    expect(v.cached(jwt)).toBeUndefined();
  });

  it('runs the admit check on cache hits: a refused principal is evicted, and evict() drops matching entries', async () => {
    const revoked = new Set<string>();
    const v = await verifier({
      admit: (p) =>
        p.kind === 'kubernetes' && p.uid !== undefined && revoked.has(p.uid)
          ? new ProxyError('ERR_AUTHN_INVALID_TOKEN', 'gone', { reason: 'service-account-deleted' })
          : undefined,
    });
    const first = token({ serviceAccount: 'a' });
    const second = token({ serviceAccount: 'b' });
    const a = await v.verify(first);
    await v.verify(second);
    expect(v.cacheSize).toBe(2);
    revoked.add((a as { uid: string }).uid);
    expect(v.cached(first)).toBeUndefined();
    expect((await refusal(v, first)).reason).toBe('service-account-deleted');
    expect(v.cacheSize).toBe(1);
    expect(v.evict((p) => p.kind === 'kubernetes' && p.serviceAccount === 'b')).toBe(1);
    expect(v.cacheSize).toBe(0);
  });
});

describe('TokenVerifier single-flight', () => {
  it('verifies concurrent misses of different tokens once each', async () => {
    const v = await verifier();
    const tokens = Array.from({ length: 5 }, (_, i) => token({ podName: `p-${String(i)}` }));
    const results = await Promise.all(tokens.flatMap((t) => Array.from({ length: 8 }, () => v.verify(t))));
    expect(new Set(results.map((p) => (p.kind === 'kubernetes' ? p.pod?.name : '')))).toEqual(
      new Set(tokens.map((_, i) => `p-${String(i)}`)),
    );
    expect(v.stats.verifications).toBe(5);
  });

  it('shares one refusal among concurrent misses of the same bad token; the bad-token memory answers the next', async () => {
    const v = await verifier();
    const forged = cluster.mintWithForeignKey({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE });
    const refusals = await Promise.all(Array.from({ length: 20 }, () => refusal(v, forged)));
    expect(new Set(refusals.map((e) => e.reason))).toEqual(new Set(['bad-signature']));
    expect(v.stats.verifications).toBe(1);
    expect((await refusal(v, forged)).reason).toBe('bad-signature');
    expect(v.stats.verifications).toBe(1);
  });

  it('does not keep a failed verification in flight: after a 503 the next request verifies again', async () => {
    cluster.setJwksAvailable(false);
    let v: TokenVerifier;
    const jwt = token();
    try {
      v = await verifier({ jwksMinRefreshIntervalMs: 0 });
      const refusals = await Promise.all(Array.from({ length: 10 }, () => refusal(v, jwt)));
      expect(refusals.every((e) => e.httpStatus === 503)).toBe(true);
      expect(v.stats.verifications).toBe(1);
    } finally {
      cluster.setJwksAvailable(true);
    }
    expect((await v.verify(jwt)).kind).toBe('kubernetes');
    expect(v.stats.verifications).toBe(2);
  });
});

describe('TokenVerifier signature check (node:crypto on the KeyObject of the kid)', () => {
  let es: IssuerStandIn;
  beforeAll(async () => {
    es = await startIssuer({ kind: 'kubernetes', algorithm: 'ES256', issuerPath: '/v1/projects/es/locations/l/clusters/es' });
  });
  afterAll(async () => {
    await es.close();
  });
  const esVerifier = (algorithms: IssuerSettings['algorithms'] = ['RS256', 'ES256']) =>
    verifier({}, { name: 'es', issuer: es.issuer, algorithms });
  const esToken = (extra: Partial<Parameters<IssuerStandIn['mintKubernetesToken']>[0]> = {}) =>
    es.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE, podName: 'trainer-0', ...extra });

  it('accepts ES256 tokens (raw R || S signatures) and RS256 tokens', async () => {
    const v = await esVerifier();
    expect(await v.verify(esToken())).toMatchObject({ kind: 'kubernetes', namespace: 'ml', serviceAccount: 'trainer' });
    const rs = await verifier();
    expect((await rs.verify(token())).kind).toBe('kubernetes');
  });

  it('refuses an ES256 token whose signature is DER-encoded (the same signature, the wrong form)', async () => {
    const v = await esVerifier();
    const [header, payload, signature] = esToken().split('.') as [string, string, string];
    const der = rawToDer(Buffer.from(signature, 'base64url'));
    const error = await refusal(v, `${header}.${payload}.${der.toString('base64url')}`);
    expect(error.reason).toBe('bad-signature');
  });

  it('refuses a tampered payload under a valid signature', async () => {
    for (const [v, jwt] of [
      [await verifier(), token()],
      [await esVerifier(), esToken()],
    ] as const) {
      const [header, , signature] = jwt.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
      const tampered = Buffer.from(JSON.stringify({ ...claims, exp: (claims.exp as number) + 86_400 })).toString('base64url');
      expect((await refusal(v, `${header}.${tampered}.${signature}`)).reason).toBe('bad-signature');
    }
  });

  it('refuses a signature by another key under a published kid, for ES256 as for RS256', async () => {
    const v = await esVerifier();
    expect((await refusal(v, es.mintWithForeignKey({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE }))).reason).toBe(
      'bad-signature',
    );
  });

  it('refuses a token whose alg does not fit the key of its kid (no key for it), and an alg outside the allow-list', async () => {
    const v = await esVerifier();
    // An RS256 header naming the issuer's EC key: jose selects no key for RS256 under that kid.
    const rsUnderEcKid = es.signRaw({ alg: 'RS256', kid: es.currentKey.kid }, esClaims(), cluster.currentKey);
    expect((await refusal(v, rsUnderEcKid)).reason).toBe('unknown-signing-key');
    const onlyRs = await esVerifier(['RS256']);
    expect((await refusal(onlyRs, esToken())).reason).toBe('algorithm-not-allowed');
  });

  it('refuses a token with a crit header (an extension it does not implement)', async () => {
    const v = await verifier();
    const critical = cluster.signRaw({ alg: 'RS256', kid: cluster.currentKey.kid, crit: ['exp'] }, claims(), cluster.currentKey);
    expect((await refusal(v, critical)).reason).toBe('malformed-token');
  });

  function esClaims(): Record<string, unknown> {
    return { ...claims(), iss: es.issuer };
  }
});

/** An ECDSA signature in JWS form (raw R || S) re-encoded as the ASN.1 DER SEQUENCE OpenSSL produces by default. */
function rawToDer(raw: Buffer): Buffer {
  const integer = (bytes: Buffer) => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    const trimmed = bytes.subarray(i);
    const body = (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
    return Buffer.concat([Buffer.from([0x02, body.length]), body]);
  };
  const half = raw.length / 2;
  const body = Buffer.concat([integer(raw.subarray(0, half)), integer(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}
