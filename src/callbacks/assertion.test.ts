import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { AssertionSigner } from './assertion.js';

const claims = {
  audience: 'http://trainer.ml.svc:8080',
  email: 'svc@p.iam.gserviceaccount.com',
  subject: '105271527809661757734',
  route: '/callbacks/training',
  requestId: 'req-1',
};
const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);

function tempFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'kvp-assertion-')), name);
  writeFileSync(path, text);
  return path;
}

describe('AssertionSigner', () => {
  it('signs ES256 assertions with kid, iss, aud, sub, email, route, request id and a short exp, verifiable with its own JWKS', async () => {
    const signer = await AssertionSigner.create({ keyFile: undefined, issuer: 'kube-vertex-proxy', lifetimeSec: 60, now: () => NOW });
    expect(signer.source).toBe('generated');
    const token = await signer.sign(claims);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', kid: signer.kid, typ: 'JWT' });
    const jwks = signer.jwks();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', kid: signer.kid, alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks as never), {
      issuer: 'kube-vertex-proxy',
      audience: claims.audience,
      algorithms: ['ES256'],
      currentDate: new Date(NOW + 30_000),
    });
    expect(payload).toEqual({
      iss: 'kube-vertex-proxy',
      aud: claims.audience,
      sub: claims.subject,
      email: claims.email,
      route: claims.route,
      request_id: 'req-1',
      jti: 'req-1',
      iat: NOW / 1000,
      exp: NOW / 1000 + 60,
    });
    await expect(jwtVerify(token, createLocalJWKSet(jwks as never), { currentDate: new Date(NOW + 120_000) })).rejects.toMatchObject({
      code: 'ERR_JWT_EXPIRED',
    });
  });

  it('loads a PKCS#8 PEM key file (kid = the JWK thumbprint, stable across restarts)', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const path = tempFile('key.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const a = await AssertionSigner.create({ keyFile: path, issuer: 'i', lifetimeSec: 60 });
    const b = await AssertionSigner.create({ keyFile: path, issuer: 'i', lifetimeSec: 60 });
    expect(a.source).toBe('file');
    expect(a.kid).toBe(b.kid);
    expect(a.jwks()).toEqual(b.jwks());
    await jwtVerify(await a.sign(claims), createLocalJWKSet(b.jwks() as never), { audience: claims.audience });
  });

  it('loads a private JWK file and keeps its kid', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'assertion-2026-11' };
    const signer = await AssertionSigner.create({ keyFile: tempFile('key.json', JSON.stringify(jwk)), issuer: 'i', lifetimeSec: 60 });
    expect(signer.kid).toBe('assertion-2026-11');
    expect(decodeProtectedHeader(await signer.sign(claims)).kid).toBe('assertion-2026-11');
  });

  it.each([
    ['a missing file', () => join(tmpdir(), 'does-not-exist.pem'), 'cannot read (ENOENT)'],
    [
      'an RSA key',
      () =>
        tempFile(
          'rsa.pem',
          generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        ),
      'not an EC P-256',
    ],
    [
      'a P-384 key',
      () =>
        tempFile(
          'p384.pem',
          generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        ),
      'not an EC P-256',
    ],
    [
      'a public JWK',
      () => tempFile('pub.json', JSON.stringify(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }))),
      'private EC P-256 JWK',
    ],
    ['garbage', () => tempFile('x.pem', 'hello'), 'PKCS#8 PEM'],
  ])('refuses %s at start, naming the file and never the key', async (_what, file, message) => {
    const path = file();
    const error = await AssertionSigner.create({ keyFile: path, issuer: 'i', lifetimeSec: 60 }).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).not.toContain('-----');
  });
});
