import { describe, expect, it } from 'vitest';
import { ProxyError, toGoogleErrorBody, toProxyError, unauthenticated } from './errors.js';

describe('toGoogleErrorBody', () => {
  it("renders Google's error envelope with ErrorInfo and RequestInfo", () => {
    const error = new ProxyError('ERR_AUTHZ_DENIED', "Permission 'aiplatform.endpoints.predict' denied", {
      metadata: { permission: 'aiplatform.endpoints.predict' },
    });
    expect(toGoogleErrorBody(error, 'req-1')).toEqual({
      error: {
        code: 403,
        message: "Permission 'aiplatform.endpoints.predict' denied",
        status: 'PERMISSION_DENIED',
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'AUTHZ_DENIED',
            domain: 'kube-vertex-proxy.dev',
            metadata: { code: 'ERR_AUTHZ_DENIED', permission: 'aiplatform.endpoints.predict' },
          },
          { '@type': 'type.googleapis.com/google.rpc.RequestInfo', requestId: 'req-1' },
        ],
      },
    });
  });

  it('never shows a 5xx message, metadata or cause to the caller', () => {
    const error = new ProxyError('ERR_FORWARD_UPSTREAM_UNREACHABLE', 'connect ECONNREFUSED 10.0.0.1:443', {
      cause: new Error('secret detail'),
      metadata: { host: '10.0.0.1' },
    });
    const body = JSON.stringify(toGoogleErrorBody(error, 'r'));
    expect(body).not.toContain('ECONNREFUSED');
    expect(body).not.toContain('10.0.0.1');
    expect(body).not.toContain('secret detail');
    expect(toGoogleErrorBody(error, 'r').error.code).toBe(502);
  });

  it('turns unknown errors into a generic INTERNAL error', () => {
    const error = toProxyError(new TypeError('x is undefined'));
    expect(error.code).toBe('ERR_INTERNAL');
    expect(toGoogleErrorBody(error, 'r').error.message).toBe('Internal error encountered.');
  });

  it('401s carry an RFC 6750 challenge', () => {
    expect(unauthenticated('ERR_AUTHN_INVALID_TOKEN', 'bad').headers).toEqual({
      'www-authenticate': 'Bearer realm="kube-vertex-proxy", error="invalid_token"',
    });
  });
});
