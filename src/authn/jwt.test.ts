import { errors as joseErrors, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import { checkRegisteredClaims, parseCompactJwt } from './jwt.js';

const ISSUER = 'https://container.googleapis.com/v1/projects/p/locations/l/clusters/c';
const AUDIENCES = ['kube-vertex-proxy', 'other'];
const NOW = 1_800_000_000;
const SKEW = 30;
const b64u = (value: string) => Buffer.from(value).toString('base64url');

const valid = {
  iss: ISSUER,
  aud: ['kube-vertex-proxy'],
  sub: 'system:serviceaccount:ml:trainer',
  iat: NOW - 10,
  exp: NOW + 3600,
  nbf: NOW - 10,
};

function reasonOf(run: () => void): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (error instanceof ProxyError) return error.reason;
    throw error;
  }
}

/** jose's own claim checks (jwtVerify's, run by UnsecuredJWT.decode) with the verifier's options, as the verifier named their failures. */
function joseReason(claims: Record<string, unknown>): string | undefined {
  try {
    UnsecuredJWT.decode(`${b64u('{"alg":"none"}')}.${b64u(JSON.stringify(claims))}.`, {
      issuer: ISSUER,
      audience: AUDIENCES,
      clockTolerance: SKEW,
      requiredClaims: ['exp', 'iat', 'sub', 'aud'],
      currentDate: new Date(NOW * 1000),
    });
    return undefined;
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) return 'token-expired';
    if (!(error instanceof joseErrors.JWTClaimValidationFailed)) throw error;
    return { aud: 'wrong-audience', iss: 'untrusted-issuer', nbf: 'token-not-yet-valid' }[error.claim] ?? 'invalid-claim';
  }
}

const without = (claim: keyof typeof valid) => Object.fromEntries(Object.entries(valid).filter(([k]) => k !== claim));

describe('checkRegisteredClaims', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['valid claims', valid],
    ['aud as a string', { ...valid, aud: 'other' }],
    ['aud with one accepted value among others', { ...valid, aud: ['x', 'other'] }],
    ['no nbf', without('nbf')],
    ['exp just inside the skew', { ...valid, exp: NOW - SKEW + 1 }],
    ['exp at the skew', { ...valid, exp: NOW - SKEW }],
    ['exp long past', { ...valid, exp: NOW - 7200 }],
    ['nbf just inside the skew', { ...valid, nbf: NOW + SKEW }],
    ['nbf past the skew', { ...valid, nbf: NOW + SKEW + 1 }],
    ['nbf not a number', { ...valid, nbf: String(NOW) }],
    ['exp not a number', { ...valid, exp: String(NOW + 60) }],
    ['exp null', { ...valid, exp: null }],
    ['iat not a number', { ...valid, iat: 'yesterday' }],
    ['a wrong aud', { ...valid, aud: ['https://kubernetes.default.svc'] }],
    ['aud an empty list', { ...valid, aud: [] }],
    ['aud a number', { ...valid, aud: 7 }],
    ['aud null', { ...valid, aud: null }],
    ['another iss', { ...valid, iss: 'https://evil.example' }],
    ['no iss', without('iss')],
    ['no aud', without('aud')],
    ['no sub', without('sub')],
    ['no iat', without('iat')],
    ['no exp', without('exp')],
    ['no aud and no exp (aud is checked first)', Object.fromEntries(Object.entries(without('aud')).filter(([k]) => k !== 'exp'))],
    ['an expired token with a wrong aud (aud first)', { ...valid, aud: 'x', exp: NOW - 7200 }],
    ['an expired token not valid yet (nbf first)', { ...valid, nbf: NOW + 600, exp: NOW - 7200 }],
    ['a bad iat and a bad exp (iat first)', { ...valid, iat: 'x', exp: 'y' }],
  ];

  it.each(cases)('%s: the same outcome as jose jwtVerify', (_title, claims) => {
    const ours = reasonOf(() => {
      checkRegisteredClaims(claims, { issuer: ISSUER, audiences: AUDIENCES, clockSkewSec: SKEW, nowSec: NOW });
    });
    expect(ours).toBe(joseReason(claims));
  });

  it('names the failing claim in its message, and refuses with 401', () => {
    try {
      checkRegisteredClaims(without('sub'), { issuer: ISSUER, audiences: AUDIENCES, clockSkewSec: SKEW, nowSec: NOW });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ProxyError);
      expect((error as ProxyError).message).toBe('The token claim "sub" is missing or invalid.');
      expect((error as ProxyError).httpStatus).toBe(401);
    }
  });
});

describe('parseCompactJwt', () => {
  const header = b64u('{"alg":"RS256","kid":"k"}');
  const claims = b64u(JSON.stringify(valid));

  it('returns header and claims of a compact JWS', () => {
    expect(parseCompactJwt(`${header}.${claims}.c2ln`)).toEqual({ header: { alg: 'RS256', kid: 'k' }, claims: valid });
    expect(parseCompactJwt(`${header}.${claims}.`).header.alg).toBe('RS256');
  });

  it.each([
    ['garbage', 'not.a.jwt'],
    ['two parts', `${header}.${claims}`],
    ['four parts', `${header}.${claims}.c2ln.x`],
    ['a JWE (five parts)', `${header}.a.b.c.d`],
    ['an empty header', `.${claims}.c2ln`],
    ['an empty payload', `${header}..c2ln`],
    ['claims that are not an object', `${header}.${b64u('[1,2]')}.c2ln`],
    ['claims that are null', `${header}.${b64u('null')}.c2ln`],
    ['a header that is a string', `${b64u('"RS256"')}.${claims}.c2ln`],
    ['claims that are not JSON', `${header}.${b64u('{sub:1}')}.c2ln`],
    ['claims that are not UTF-8', `${header}.${Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]).toString('base64url')}.c2ln`],
    ['a payload with characters outside base64url', `${header}.${claims}+.c2ln`],
  ])('refuses %s as malformed-token', (_title, token) => {
    expect(reasonOf(() => parseCompactJwt(token))).toBe('malformed-token');
  });
});
