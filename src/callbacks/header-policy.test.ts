import { describe, expect, it } from 'vitest';
import { callbackRequestHeaders } from './header-policy.js';

const vouched = {
  assertionHeader: 'x-kvp-assertion',
  assertion: 'signed.jwt.here',
  callerEmail: 'svc@p.iam.gserviceaccount.com',
  requestId: 'req-1',
};

describe('callbackRequestHeaders', () => {
  it('removes the caller credentials and forgeable identity headers, then adds what the proxy vouches for', () => {
    const out = callbackRequestHeaders(
      {
        authorization: 'Bearer google-id-token',
        'proxy-authorization': 'Basic x',
        cookie: 'a=b',
        'x-kvp-assertion': 'forged',
        'x-kvp-caller-email': 'admin@example.com',
        'x-kvp-anything': 'x',
        'x-forwarded-for': '1.2.3.4',
        'x-forwarded-user': 'admin',
        forwarded: 'for=1.2.3.4',
        'x-goog-iap-jwt-assertion': 'forged',
        'x-goog-authenticated-user-email': 'admin@example.com',
        'x-serverless-authorization': 'Bearer x',
        'x-http-method-override': 'DELETE',
        connection: 'keep-alive, x-custom-hop',
        'x-custom-hop': 'gone',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'content-type': 'application/json',
        'x-request-id': 'client-chosen',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        'user-agent': 'python-requests/2.32',
      },
      vouched,
    );
    expect(out).toEqual({
      'content-type': 'application/json',
      'x-request-id': 'client-chosen',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      'user-agent': 'python-requests/2.32',
      'x-kvp-assertion': 'signed.jwt.here',
      'x-kvp-caller-email': 'svc@p.iam.gserviceaccount.com',
      'x-kvp-request-id': 'req-1',
    });
  });

  it('a custom assertion header sent by the client is replaced, not merged', () => {
    const out = callbackRequestHeaders({ 'x-identity': 'forged' }, { ...vouched, assertionHeader: 'x-identity' });
    expect(out['x-identity']).toBe('signed.jwt.here');
  });
});
