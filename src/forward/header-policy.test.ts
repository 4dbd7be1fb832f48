import { describe, expect, it } from 'vitest';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './header-policy.js';

const PROXY_TOKEN = 'Bearer ya29.proxy-own-token';

describe('upstreamRequestHeaders', () => {
  it('replaces the caller Authorization with the proxy credential', () => {
    const out = upstreamRequestHeaders({ authorization: 'Bearer caller.jwt.sig', 'content-type': 'application/json' }, PROXY_TOKEN);
    expect(out.authorization).toBe(PROXY_TOKEN);
    expect(out['content-type']).toBe('application/json');
  });

  it.each([
    ['proxy-authorization', 'Basic eA=='],
    ['cookie', 'session=1'],
    ['cookie2', 'x'],
    ['connection', 'keep-alive'],
    ['keep-alive', 'timeout=5'],
    ['proxy-connection', 'keep-alive'],
    ['te', 'trailers'],
    ['trailer', 'x-foo'],
    ['transfer-encoding', 'chunked'],
    ['upgrade', 'websocket'],
    ['forwarded', 'for=1.2.3.4'],
    ['x-forwarded-for', '1.2.3.4'],
    ['x-forwarded-host', 'evil'],
    ['x-forwarded-proto', 'https'],
    ['x-forwarded-uri', '/admin'],
    ['x-real-ip', '1.2.3.4'],
    ['x-original-url', '/x'],
    ['x-kvp-caller-email', 'admin@example.com'],
    ['x-kvp-assertion', 'forged'],
    ['x-envoy-original-path', '/x'],
    ['x-goog-iam-authority-selector', 'x'],
    ['x-goog-iam-authorization-token', 'x'],
    ['x-goog-authenticated-user-email', 'x'],
    ['x-goog-iap-jwt-assertion', 'x'],
    ['x-goog-spoofed', 'x'],
    ['x-serverless-authorization', 'Bearer x'],
    ['expect', '100-continue'],
  ])('strips the caller-controlled header %s', (name, value) => {
    const out = upstreamRequestHeaders({ [name]: value, accept: 'application/json' }, PROXY_TOKEN);
    expect(out).not.toHaveProperty(name);
    expect(out.accept).toBe('application/json');
  });

  it('strips headers named in Connection so a caller cannot smuggle hop-by-hop semantics', () => {
    const out = upstreamRequestHeaders({ connection: 'close, X-Secret-Thing', 'x-secret-thing': '1', 'x-other': '2' }, PROXY_TOKEN);
    expect(out).not.toHaveProperty('x-secret-thing');
    expect(out['x-other']).toBe('2');
  });

  it('a caller cannot use Connection to strip the proxy Authorization', () => {
    const out = upstreamRequestHeaders({ connection: 'authorization' }, PROXY_TOKEN);
    expect(out.authorization).toBe(PROXY_TOKEN);
  });

  it('keeps trace propagation and Google SDK telemetry headers', () => {
    const headers = {
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      'x-cloud-trace-context': '4bf92f3577b34da6a3ce929d0e0e4736/1;o=1',
      'x-goog-api-client': 'gl-node/24 gax/6',
      'x-goog-request-params': 'endpoint=projects/p',
      'user-agent': 'sdk',
      'content-length': '12',
    };
    expect(upstreamRequestHeaders(headers, PROXY_TOKEN)).toEqual({ ...headers, authorization: PROXY_TOKEN });
  });
});

describe('downstreamResponseHeaders', () => {
  it('drops hop-by-hop, alt-svc, set-cookie and www-authenticate; keeps Vertex AI headers', () => {
    const out = downstreamResponseHeaders({
      'content-type': 'application/json; charset=UTF-8',
      connection: 'keep-alive',
      'transfer-encoding': 'chunked',
      'alt-svc': 'h3=":443"',
      'set-cookie': ['a=b'],
      'www-authenticate': 'Bearer',
      'x-vertex-ai-endpoint-id': '123',
      'x-vertex-ai-deployed-model-id': '456',
    });
    expect(out).toEqual({
      'content-type': 'application/json; charset=UTF-8',
      'x-vertex-ai-endpoint-id': '123',
      'x-vertex-ai-deployed-model-id': '456',
    });
  });
});
