/**
 * The IAP signed-header check against a stand-in key set served over HTTP
 * (the same fetch path as IAP's real https://www.gstatic.com/iap/verify/public_key-jwk).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import { createIapVerifier, IAP_ISSUER, type IapVerifier } from './iap.js';

const AUDIENCE = '/projects/123456789012/global/backendServices/4567890';
let server: Server;
let jwksUri: string;
let privateKey: CryptoKey;
let otherKey: CryptoKey;
let verifier: IapVerifier;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  privateKey = pair.privateKey;
  otherKey = (await generateKeyPair('ES256')).privateKey;
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'iap-1', alg: 'ES256', use: 'sig' };
  server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/iap/verify/public_key-jwk`;
  verifier = createIapVerifier({ audience: AUDIENCE, jwksUri, clockSkewSec: 30, fetchTimeoutMs: 2000 });
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

function assertion(
  overrides: { iss?: string; aud?: string; exp?: number; email?: string | null; key?: CryptoKey; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { sub: 'accounts.google.com:1234567890', hd: 'example.com' };
  if (overrides.email !== null) claims.email = overrides.email ?? 'Alice@example.com';
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: overrides.kid ?? 'iap-1' })
    .setIssuer(overrides.iss ?? IAP_ISSUER)
    .setAudience(overrides.aud ?? AUDIENCE)
    .setIssuedAt(now - 60)
    .setExpirationTime(overrides.exp ?? now + 540)
    .sign(overrides.key ?? privateKey);
}

async function refusal(promise: Promise<unknown>): Promise<ProxyError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProxyError);
  return error as ProxyError;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('IAP assertion check', () => {
  it('accepts a valid assertion and names the Google account (lower-cased email)', async () => {
    const principal = await verifier.verify(await assertion());
    expect(principal).toMatchObject({
      kind: 'google',
      email: 'alice@example.com',
      subject: 'accounts.google.com:1234567890',
      audiences: [AUDIENCE],
    });
  });

  it("refuses another backend service's audience", async () => {
    const error = await refusal(verifier.verify(await assertion({ aud: '/projects/123456789012/global/backendServices/999' })));
    expect([error.httpStatus, error.code, error.reason]).toEqual([401, 'ERR_AUTHN_INVALID_TOKEN', 'wrong-audience']);
  });

  it('refuses an expired assertion', async () => {
    const error = await refusal(verifier.verify(await assertion({ exp: Math.floor(Date.now() / 1000) - 120 })));
    expect([error.httpStatus, error.reason]).toEqual([401, 'token-expired']);
  });

  it('refuses an assertion from another issuer', async () => {
    const error = await refusal(verifier.verify(await assertion({ iss: 'https://accounts.google.com' })));
    expect([error.httpStatus, error.reason]).toEqual([401, 'untrusted-issuer']);
  });

  it('refuses an unsigned assertion (alg none)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const unsigned =
      `${b64({ alg: 'none', kid: 'iap-1' })}.` +
      `${b64({ iss: IAP_ISSUER, aud: AUDIENCE, sub: 's', email: 'alice@example.com', iat: now, exp: now + 600 })}.`;
    const error = await refusal(verifier.verify(unsigned));
    expect([error.httpStatus, error.code, error.reason]).toEqual([401, 'ERR_AUTHN_INVALID_TOKEN', 'algorithm-not-allowed']);
  });

  it('refuses a signature by a key IAP does not publish, and a forged payload', async () => {
    const wrongKey = await refusal(verifier.verify(await assertion({ key: otherKey })));
    expect([wrongKey.httpStatus, wrongKey.reason]).toEqual([401, 'bad-signature']);
    const [header, , signature] = (await assertion()).split('.');
    const now = Math.floor(Date.now() / 1000);
    const forged =
      `${header}.${b64({ iss: IAP_ISSUER, aud: AUDIENCE, sub: 's', email: 'mallory@example.com', iat: now, exp: now + 600 })}` +
      `.${signature}`;
    expect((await refusal(verifier.verify(forged))).reason).toBe('bad-signature');
  });

  it('refuses an assertion without an email', async () => {
    const error = await refusal(verifier.verify(await assertion({ email: null })));
    expect([error.httpStatus, error.reason]).toEqual([401, 'invalid-claim']);
  });

  it('refuses garbage without fetching anything, and fails closed (503) when the key set is unreachable', async () => {
    expect((await refusal(verifier.verify('not-a-jwt'))).httpStatus).toBe(401);
    const down = createIapVerifier({ audience: AUDIENCE, jwksUri: 'http://127.0.0.1:1/keys', clockSkewSec: 30, fetchTimeoutMs: 1000 });
    const error = await refusal(down.verify(await assertion()));
    expect([error.httpStatus, error.code]).toEqual([503, 'ERR_AUTHN_VERIFIER_UNAVAILABLE']);
  });
});
