import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../config/load.js';
import { ProxyError } from '../errors.js';

const base = `
issuers:
  - name: cluster
    type: kubernetes
    issuer: https://container.googleapis.com/v1/projects/p/locations/l/clusters/c
    audiences: [kube-vertex-proxy]
  - name: google
    type: google
    audiences: [https://callbacks.example.com]
vertex:
  projects: [my-proj]
  locations: [us-central1]
`;

function withCallbacks(callbacks: string): string {
  return `${base}callbacks:\n${callbacks}`;
}

function problems(text: string): string[] {
  try {
    parseConfig(text, 'config.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).format().split('\n');
  }
  return [];
}

const routes = withCallbacks(`
  routes:
    - prefix: /callbacks/training
      upstream: http://trainer.ml.svc.cluster.local:8080
      callers: ["service-123456789012@gcp-sa-aiplatform.iam.gserviceaccount.com"]
    - prefix: /callbacks/training/batch
      upstream: https://batch.ml.svc.cluster.local/api/
      rewritePrefix: /results
      methods: [POST, PUT]
      bodyLimit: 64KiB
      timeout: 5s
      audience: batch-backend
      callers: ["batch@my-proj.iam.gserviceaccount.com"]
    - prefix: /hooks
      upstream: http://hooks.ops.svc:9000/base
      rewritePrefix: /
      callers: ["105271527809661757734"]
`);

function refusal(fn: () => unknown): { code: string; status: number; headers?: unknown } | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ProxyError);
    const e = error as ProxyError;
    return { code: e.code, status: e.httpStatus, ...(e.headers ? { headers: e.headers } : {}) };
  }
}

describe('callbacks config', () => {
  it('defaults: no routes, assertion header x-kvp-assertion, 60s lifetime; a google issuer defaults to accounts.google.com', () => {
    const settings = parseConfig(base, 'config.yaml');
    expect(settings.callbacks.routes.size).toBe(0);
    expect(settings.callbacks.assertion).toEqual({
      header: 'x-kvp-assertion',
      keyFile: undefined,
      issuer: 'kube-vertex-proxy',
      lifetimeSec: 60,
    });
    expect(settings.issuers[1]).toMatchObject({ type: 'google', issuer: 'https://accounts.google.com' });
  });

  it('derives routes with units converted and defaults filled', () => {
    const settings = parseConfig(routes, '/etc/kvp/config.yaml');
    const [batch, training, hooks] = settings.callbacks.routes.routes;
    expect(batch).toMatchObject({
      prefix: '/callbacks/training/batch',
      upstreamOrigin: 'https://batch.ml.svc.cluster.local',
      upstreamBasePath: '/api',
      rewritePrefix: '/results',
      bodyLimitBytes: 65536,
      timeoutMs: 5000,
      audience: 'batch-backend',
    });
    expect([...(batch?.methods ?? [])]).toEqual(['POST', 'PUT']);
    expect(training).toMatchObject({
      rewritePrefix: '/callbacks/training',
      bodyLimitBytes: 1024 * 1024,
      timeoutMs: 30_000,
      audience: 'http://trainer.ml.svc.cluster.local:8080/callbacks/training',
    });
    expect([...(training?.methods ?? [])]).toEqual(['POST']);
    expect(hooks).toMatchObject({ upstreamBasePath: '/base', rewritePrefix: '/' });
  });

  it('resolves a relative keyFile against the config file directory', () => {
    const settings = parseConfig(withCallbacks('  assertion: { keyFile: keys/assertion.pem }\n'), '/etc/kvp/config.yaml');
    expect(settings.callbacks.assertion.keyFile).toBe('/etc/kvp/keys/assertion.pem');
  });

  it('refuses two routes whose default assertion audiences would be the same', () => {
    const clash = withCallbacks(`
  routes:
    - prefix: /a/b
      upstream: http://x.svc:8080
      callers: ["c@my-proj.iam.gserviceaccount.com"]
    - prefix: /b
      upstream: http://x.svc:8080/a
      callers: ["c@my-proj.iam.gserviceaccount.com"]
`);
    expect(problems(clash).join('\n')).toContain('default assertion audience');
  });

  it('lists every problem with its path', () => {
    const found = problems(
      withCallbacks(`
  assertion: { header: x-kvp-caller-email, lifetime: 1h }
  routes:
    - prefix: /v1/callbacks
      upstream: ftp://x
      callers: ["*@*.iam.gserviceaccount.com", "principalSet://iam.googleapis.com/x"]
    - prefix: /cb
      upstream: http://user:pw@svc
      callers: [a@example.com]
    - prefix: /cb
      upstream: http://svc?x=1
      methods: [POST, POST]
      callers: [a@example.com]
    - prefix: /audit
      upstream: http://svc
      callers: [a@example.com]
`),
    );
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringContaining('callbacks.assertion.header: "x-kvp-caller-email" is set by the proxy'),
        expect.stringContaining('callbacks.assertion.lifetime: must be between 1s and 10m'),
        expect.stringContaining('callbacks.routes[0].prefix: collides with /v1/'),
        expect.stringContaining('callbacks.routes[0].upstream: must be an http(s) URL'),
        expect.stringContaining('callbacks.routes[0].callers[0]: "*" is allowed only before the "@"'),
        expect.stringContaining('callbacks.routes[0].callers[1]: principalSet://'),
        expect.stringContaining('callbacks.routes[1].upstream: must not carry credentials'),
        expect.stringContaining('callbacks.routes[2].prefix: duplicate prefix "/cb"'),
        expect.stringContaining('callbacks.routes[2].upstream: must not have a query'),
        expect.stringContaining('callbacks.routes[2].methods: lists a method twice'),
        expect.stringContaining('callbacks.routes[3].prefix: collides with /audit/'),
      ]),
    );
    // Shape problems (a trailing "/", escapes in a prefix) are the schema's.
    expect(problems(withCallbacks('  routes:\n    - { prefix: /cb/, upstream: http://svc, callers: [a@example.com] }\n'))[0]).toContain(
      'callbacks.routes[0].prefix: has an invalid format',
    );
  });

  it('takes per-route token audiences that a google issuer accepts, and refuses ones none does', () => {
    const ok = parseConfig(
      withCallbacks(
        '  routes:\n    - { prefix: /cb, upstream: http://svc, callers: [a@example.com], tokenAudiences: ' +
          '[https://callbacks.example.com] }\n',
      ),
      'config.yaml',
    );
    expect([...(ok.callbacks.routes.routes[0]?.tokenAudiences ?? [])]).toEqual(['https://callbacks.example.com']);
    expect(
      problems(
        withCallbacks(
          '  routes:\n    - { prefix: /cb, upstream: http://svc, callers: [a@example.com], tokenAudiences: [https://other.example.com] }\n',
        ),
      ),
    ).toEqual([
      expect.stringContaining(
        'callbacks.routes[0].tokenAudiences[0]: "https://other.example.com" is not among the audiences of a google issuer',
      ),
    ]);
  });

  it('refuses routes without a google issuer, and a kubernetes issuer without an issuer URL', () => {
    const text = `
issuers:
  - { name: cluster, type: kubernetes, audiences: [x] }
vertex: { projects: [p], locations: [us-central1] }
callbacks:
  routes:
    - { prefix: /cb, upstream: http://svc, callers: [a@example.com] }
`;
    const found = problems(text);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringContaining('issuers[0].issuer: is required for an issuer of type "kubernetes"'),
        expect.stringContaining('callbacks.routes: callback routes need an issuer of type "google"'),
      ]),
    );
  });
});

describe('RouteTable.match', () => {
  const table = parseConfig(routes, 'config.yaml').callbacks.routes;

  it.each([
    ['POST', '/callbacks/training', '/callbacks/training', 'http://trainer.ml.svc.cluster.local:8080/callbacks/training'],
    ['POST', '/callbacks/training/', '/callbacks/training', 'http://trainer.ml.svc.cluster.local:8080/callbacks/training/'],
    [
      'POST',
      '/callbacks/training/jobs/1:done?x=1',
      '/callbacks/training',
      'http://trainer.ml.svc.cluster.local:8080/callbacks/training/jobs/1:done',
    ],
    ['POST', '/callbacks/training/batchX', '/callbacks/training', 'http://trainer.ml.svc.cluster.local:8080/callbacks/training/batchX'],
    ['PUT', '/callbacks/training/batch/42', '/callbacks/training/batch', 'https://batch.ml.svc.cluster.local/api/results/42'],
    ['POST', '/callbacks/training/batch', '/callbacks/training/batch', 'https://batch.ml.svc.cluster.local/api/results'],
    ['POST', '/hooks', '/hooks', 'http://hooks.ops.svc:9000/base'],
    ['POST', '/hooks/done', '/hooks', 'http://hooks.ops.svc:9000/base/done'],
  ])('%s %s → route %s, %s (longest prefix, whole segments, rewrite)', (method, url, prefix, target) => {
    const match = table.match(method, url);
    expect(match.route.prefix).toBe(prefix);
    expect(match.target).toBe(target);
  });

  it('a method the route does not allow is 405 with Allow', () => {
    let seen: string | undefined;
    const found = refusal(() => table.match('DELETE', '/callbacks/training/batch/1', (r) => (seen = r.prefix)));
    expect(found).toEqual({ code: 'ERR_REQUEST_METHOD_NOT_ALLOWED', status: 405, headers: { allow: 'POST, PUT' } });
    expect(seen).toBe('/callbacks/training/batch');
  });

  it('a path under no prefix is 404; a path escape is 400 before any route is chosen', () => {
    expect(refusal(() => table.match('POST', '/callbacksX/training'))).toMatchObject({ code: 'ERR_REQUEST_UNKNOWN_ROUTE', status: 404 });
    // An escaped unreserved character would decode to another route's path at the backend: refused.
    expect(refusal(() => table.match('POST', '/callbacks/%74raining/x'))).toMatchObject({ code: 'ERR_REQUEST_INVALID_PATH', status: 400 });
    // A case variant of a longer route's prefix is not sent to the shorter route.
    expect(refusal(() => table.match('POST', '/callbacks/training/BATCH/1'))).toMatchObject({
      code: 'ERR_REQUEST_INVALID_PATH',
      status: 400,
    });
    expect(table.match('POST', '/callbacks/training/batchX').route.prefix).toBe('/callbacks/training');
    // Escapes of characters outside every prefix still match on their decoded form and are forwarded as sent.
    expect(table.match('POST', '/callbacks/training/a%20b').target).toBe(
      'http://trainer.ml.svc.cluster.local:8080/callbacks/training/a%20b',
    );
    expect(refusal(() => table.match('POST', '/callbacks/training/../../hooks/x'))).toMatchObject({
      code: 'ERR_REQUEST_INVALID_PATH',
      status: 400,
    });
    expect(refusal(() => table.match('POST', '/hooks/%2e%2e/admin'))).toMatchObject({ code: 'ERR_REQUEST_INVALID_PATH', status: 400 });
  });
});
