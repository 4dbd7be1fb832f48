import { describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import fc from 'fast-check';
import { bearerCacheCandidate, parseBearer } from './bearer.js';

describe('parseBearer', () => {
  it('takes the token from "Bearer <jwt>" in any scheme case', () => {
    expect(parseBearer('Bearer aaa.bbb.ccc')).toBe('aaa.bbb.ccc');
    expect(parseBearer('bearer aaa.bbb.ccc')).toBe('aaa.bbb.ccc');
  });

  it.each([
    [undefined, 'ERR_AUTHN_MISSING_CREDENTIALS'],
    ['', 'ERR_AUTHN_MISSING_CREDENTIALS'],
    ['Basic dXNlcjpwYXNz', 'ERR_AUTHN_MALFORMED_CREDENTIALS'],
    ['Bearer', 'ERR_AUTHN_MALFORMED_CREDENTIALS'],
    ['Bearer  aaa.bbb.ccc', 'ERR_AUTHN_MALFORMED_CREDENTIALS'],
    ['Bearer aaa.bbb.ccc extra', 'ERR_AUTHN_MALFORMED_CREDENTIALS'],
    ['Bearer aaa.bbb', 'ERR_AUTHN_MALFORMED_CREDENTIALS'],
    ['Bearer aaa.bbb.ccc.ddd.eee', 'ERR_AUTHN_MALFORMED_CREDENTIALS'],
    ['Bearer a+a.b/b.c=c', 'ERR_AUTHN_MALFORMED_CREDENTIALS'],
    ['Bearer aaa.bbb.ccc\r\nX: y', 'ERR_AUTHN_MALFORMED_CREDENTIALS'],
    [['Bearer a.b.c', 'Bearer d.e.f'], 'ERR_AUTHN_MALFORMED_CREDENTIALS'],
  ])('refuses %j with %s and a WWW-Authenticate challenge', (header, code) => {
    try {
      parseBearer(header);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ProxyError);
      expect((error as ProxyError).code).toBe(code);
      expect((error as ProxyError).httpStatus).toBe(401);
      expect((error as ProxyError).headers?.['www-authenticate']).toMatch(/^Bearer realm="kube-vertex-proxy"/);
    }
  });

  it('an invalid-token challenge carries error="invalid_token"; a missing token does not', () => {
    const refusal = (header: string | undefined): ProxyError | undefined => {
      try {
        parseBearer(header);
      } catch (e) {
        return e as ProxyError;
      }
      return undefined;
    };
    const missing = refusal(undefined);
    const malformed = refusal('Basic x');
    expect(missing?.headers?.['www-authenticate']).not.toContain('invalid_token');
    expect(malformed?.headers?.['www-authenticate']).toContain('error="invalid_token"');
  });
});

describe('bearerCacheCandidate (the cache lookup before strict parsing)', () => {
  it('agrees with parseBearer on every header parseBearer accepts', () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/);
    const scheme = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'bEaReR');
    fc.assert(
      fc.property(scheme, segment, segment, fc.stringMatching(/^[A-Za-z0-9_-]{0,40}$/), (s, a, b, c) => {
        const header = `${s} ${a}.${b}.${c}`;
        expect(bearerCacheCandidate(header)).toBe(parseBearer(header));
      }),
    );
  });

  it.each([[undefined], [''], ['Bearer'], ['Basic dXNlcjpwYXNz'], ['Bearerx aaa.bbb.ccc'], [['Bearer a.b.c', 'Bearer d.e.f']]])(
    'has no candidate for %j',
    (header) => {
      expect(bearerCacheCandidate(header as string | undefined)).toBeUndefined();
    },
  );

  it('passes odd token text through unchecked: only a verified token can hit the cache, the rest goes to parseBearer', () => {
    expect(bearerCacheCandidate('Bearer  aaa.bbb.ccc')).toBe(' aaa.bbb.ccc');
    expect(bearerCacheCandidate('Bearer a+a.b/b.c=c')).toBe('a+a.b/b.c=c');
  });
});
