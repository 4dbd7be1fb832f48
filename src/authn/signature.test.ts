import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { compactVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { checkJwsSignature } from './signature.js';

const b64u = (value: string | Buffer) => Buffer.from(value).toString('base64url');
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const ed25519 = generateKeyPairSync('ed25519');

type Pair = { privateKey: KeyObject; publicKey: KeyObject };
type Encoding = 'ieee-p1363' | 'der';

/** A compact JWS over fixed claims, signed as RFC 7518 says for `alg` (ES*: raw R || S unless `der`). */
function jws(alg: string, pair: Pair, options: { encoding?: Encoding; claims?: object } = {}): string {
  const input =
    `${b64u(JSON.stringify({ alg, kid: 'k1' }))}.` + b64u(JSON.stringify(options.claims ?? { sub: 'system:serviceaccount:ml:trainer' }));
  const hash = alg === 'EdDSA' ? null : `sha${alg.slice(2)}`;
  const key = alg.startsWith('PS')
    ? { key: pair.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
    : alg.startsWith('ES')
      ? { key: pair.privateKey, dsaEncoding: options.encoding ?? 'ieee-p1363' }
      : pair.privateKey;
  return `${input}.${b64u(sign(hash, Buffer.from(input), key))}`;
}

describe('checkJwsSignature (node:crypto on a KeyObject)', () => {
  it.each([
    ['RS256', rsa],
    ['RS384', rsa],
    ['RS512', rsa],
    ['PS256', rsa],
    ['ES256', p256],
    ['ES384', p384],
    ['EdDSA', ed25519],
  ] as const)('accepts a valid %s signature, as jose does', async (alg, pair) => {
    const token = jws(alg, pair);
    expect(checkJwsSignature(token, alg, pair.publicKey)).toBeUndefined();
    // The same token and key through jose (WebCrypto): the reference the check replaces.
    await expect(compactVerify(token, pair.publicKey)).resolves.toBeDefined();
  });

  it('refuses a tampered payload', () => {
    const [header, , signature] = jws('RS256', rsa).split('.') as [string, string, string];
    const tampered = `${header}.${b64u(JSON.stringify({ sub: 'system:serviceaccount:kube-system:admin' }))}.${signature}`;
    expect(checkJwsSignature(tampered, 'RS256', rsa.publicKey)).toBe('bad-signature');
    const [esHeader, , esSignature] = jws('ES256', p256).split('.') as [string, string, string];
    expect(checkJwsSignature(`${esHeader}.${b64u('{"sub":"x"}')}.${esSignature}`, 'ES256', p256.publicKey)).toBe('bad-signature');
  });

  it('refuses a signature by another key of the same type', () => {
    expect(checkJwsSignature(jws('RS256', otherRsa), 'RS256', rsa.publicKey)).toBe('bad-signature');
    expect(checkJwsSignature(jws('ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' })), 'ES256', p256.publicKey)).toBe(
      'bad-signature',
    );
  });

  it('refuses a key that does not fit the algorithm (type or curve), and algorithms it does not implement', () => {
    expect(checkJwsSignature(jws('ES256', p256), 'ES256', rsa.publicKey)).toBe('key-mismatch');
    expect(checkJwsSignature(jws('RS256', rsa), 'RS256', p256.publicKey)).toBe('key-mismatch');
    expect(checkJwsSignature(jws('ES384', p384), 'ES384', p256.publicKey)).toBe('key-mismatch');
    expect(checkJwsSignature(jws('EdDSA', ed25519), 'EdDSA', p256.publicKey)).toBe('key-mismatch');
    expect(checkJwsSignature(jws('RS256', rsa), 'RS256', rsa.privateKey)).toBe('key-mismatch');
    for (const alg of ['HS256', 'none', 'RSA-OAEP', ''])
      expect(checkJwsSignature(jws('RS256', rsa), alg, rsa.publicKey)).toBe('unsupported-algorithm');
  });

  it('refuses a signature made with another algorithm over the same input (RS256 presented as PS256 and back)', () => {
    const rs = jws('RS256', rsa);
    expect(checkJwsSignature(rs, 'PS256', rsa.publicKey)).toBe('bad-signature');
    expect(checkJwsSignature(jws('PS256', rsa), 'RS256', rsa.publicKey)).toBe('bad-signature');
    expect(checkJwsSignature(jws('RS512', rsa), 'RS256', rsa.publicKey)).toBe('bad-signature');
  });

  it('takes ES256 signatures only in the JWS form (raw R || S, 64 bytes), never DER, as jose does', async () => {
    const der = jws('ES256', p256, { encoding: 'der' });
    expect(Buffer.from(der.split('.')[2] ?? '', 'base64url')[0]).toBe(0x30); // an ASN.1 SEQUENCE
    expect(checkJwsSignature(der, 'ES256', p256.publicKey)).toBe('bad-signature');
    await expect(compactVerify(der, p256.publicKey)).rejects.toThrow();
    // The same signature bytes converted to raw R || S verify: only the encoding was wrong.
    const raw = jws('ES256', p256);
    expect(raw.split('.')[2]).toHaveLength(86); // 64 bytes
    expect(checkJwsSignature(raw, 'ES256', p256.publicKey)).toBeUndefined();
    // A raw signature cut or padded to another length is refused before any curve arithmetic.
    const [h, p, s] = raw.split('.') as [string, string, string];
    const bytes = Buffer.from(s, 'base64url');
    expect(checkJwsSignature(`${h}.${p}.${b64u(bytes.subarray(0, 63))}`, 'ES256', p256.publicKey)).toBe('bad-signature');
    expect(checkJwsSignature(`${h}.${p}.${b64u(Buffer.concat([bytes, Buffer.from([0])]))}`, 'ES256', p256.publicKey)).toBe('bad-signature');
  });

  it('refuses an empty signature, and a signature with characters outside base64url as malformed', () => {
    const [h, p, s] = jws('RS256', rsa).split('.') as [string, string, string];
    expect(checkJwsSignature(`${h}.${p}.`, 'RS256', rsa.publicKey)).toBe('bad-signature');
    // Buffer's decoder would skip the '+' and '='; the JWS alphabet has neither.
    expect(checkJwsSignature(`${h}.${p}.${s.slice(0, 10)}+${s.slice(10)}`, 'RS256', rsa.publicKey)).toBe('malformed');
    expect(checkJwsSignature(`${h}.${p}.${s}=`, 'RS256', rsa.publicKey)).toBe('malformed');
  });

  it('throws (a fault of the key set, not of the token) for an RSA key under 2048 bits, as jose does', () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(() => checkJwsSignature(jws('RS256', weak), 'RS256', weak.publicKey)).toThrow(TypeError);
  });
});
