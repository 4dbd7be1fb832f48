/**
 * Tokens the proxy must refuse, and key rotation it must follow, against the
 * real proxy process and a loopback issuer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type IssuerStandIn } from '../../dev/standins/issuer.js';
import { AUDIENCE, PREDICT_PATH, startWorld, type World } from '../helpers/world.js';

let world: World;
let foreign: IssuerStandIn;
beforeAll(async () => {
  world = await startWorld();
  foreign = await startIssuer({ kind: 'kubernetes', issuerPath: '/v1/projects/evil/locations/l/clusters/evil' });
});
afterAll(async () => {
  await world?.close();
  await foreign?.close();
});

const body = JSON.stringify({ instances: [{}] });
const now = () => Math.floor(Date.now() / 1000);
const baseClaims = () => ({
  aud: [AUDIENCE],
  exp: now() + 3600,
  iat: now(),
  nbf: now(),
  iss: world.issuer.issuer,
  'kubernetes.io': { namespace: 'ml', serviceaccount: { name: 'trainer', uid: 'u' } },
  sub: 'system:serviceaccount:ml:trainer',
});

describe('tokens the proxy refuses with 401', () => {
  const cases: Array<[string, () => string, string]> = [
    ['an expired token', () => world.token('ml', 'trainer', { iat: now() - 7200, expiresIn: 3600 }), 'token-expired'],
    [
      'a token from a foreign issuer',
      () => foreign.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE }),
      'untrusted-issuer',
    ],
    [
      'a token for another audience',
      () => world.token('ml', 'trainer', { audience: 'https://kubernetes.default.svc.cluster.local' }),
      'wrong-audience',
    ],
    ['an alg:none token', () => world.issuer.signRaw({ alg: 'none' }, baseClaims(), null), 'algorithm-not-allowed'],
    [
      'an HS256 token keyed with the public JWK',
      () =>
        world.issuer.signRaw(
          { alg: 'HS256', kid: world.issuer.currentKey.kid },
          baseClaims(),
          new TextEncoder().encode(JSON.stringify(world.issuer.currentKey.jwk)),
        ),
      'algorithm-not-allowed',
    ],
    [
      'a token signed by an unpublished key',
      () => world.issuer.mintWithForeignKey({ namespace: 'ml', serviceAccount: 'trainer', audience: AUDIENCE }),
      'bad-signature',
    ],
  ];

  it.each(cases)('%s', async (_title, make, reason) => {
    const before = world.vertex.requests.length;
    const token = make();
    const response = await world.call(PREDICT_PATH, { token, body });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="kube-vertex-proxy", error="invalid_token"');
    const error = ((await response.json()) as { error: { status: string } }).error;
    expect(error.status).toBe('UNAUTHENTICATED');
    expect(world.vertex.requests.length).toBe(before);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.reason === reason);
    expect(entry.kubeVertexProxy).toMatchObject({ decision: 'deny', status: 401 });
    expect(world.proxy.stdoutText()).not.toContain(token);
  });

  it('a request without a token gets a challenge without error=', async () => {
    const response = await world.call(PREDICT_PATH, { token: null, body });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="kube-vertex-proxy"');
  });
});

describe('key rotation', () => {
  it('a token signed with a newly published key is accepted', async () => {
    expect((await world.call(PREDICT_PATH, { body })).status).toBe(200);
    await world.issuer.rotateKey();
    const token = world.token('ml', 'rotated');
    // minRefreshInterval is 1s in the test config: the first unknown kid may fall inside it.
    let status = 0;
    for (let attempt = 0; attempt < 20 && status !== 200; attempt++) {
      status = (await world.call(PREDICT_PATH, { token, body })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
  });
});
