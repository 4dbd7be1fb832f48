/**
 * The composed pipeline in-process: `buildProxyApp` with a fake token
 * verifier, label source and Google credential, and undici's MockAgent as
 * Vertex AI and as the callback backend. One table per step: which step
 * refuses first when several would, and what each step leaves in
 * `request.kvp`. The process-level tests in test/integration/ remain the
 * users' view; these pin down the order of the steps.
 */
import type { FastifyInstance, FastifyRequest, InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { MockAgent } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildProxyApp, type ProxyDeps } from './app.js';
import type { AuditRecord } from './audit/record.js';
import type { AuditTrail } from './audit/trail.js';
import type { Principal } from './authn/principal.js';
import { TokenVerifier } from './authn/verifier.js';
import { AssertionSigner } from './callbacks/assertion.js';
import { parseConfig } from './config/load.js';
import { unauthenticated } from './errors.js';
import type { UpstreamCredential } from './forward/credentials.js';
import type { NamespaceLabelSource } from './identity/labels.js';
import { Limiter } from './limits/limiter.js';
import { createMemoryStore } from './limits/store.js';
import { compileLabelIndependent } from './policy/label-independent.js';
import type { RequestContext } from './request-context.js';

const VERTEX = 'https://us-central1-aiplatform.googleapis.com';
const BACKEND = 'http://trainer.ml.svc.cluster.local:8080';
const MODEL = '/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash';
const GENERATE = `${MODEL}:generateContent`;
const PREDICT = '/v1/projects/my-proj/locations/us-central1/endpoints/123:predict';
const SERVICE_AGENT = 'service-123456789012@gcp-sa-aiplatform.iam.gserviceaccount.com';
const CALLBACK_AUDIENCE = 'https://proxy.example.com/callbacks/training';
const FIXED_NOW = Date.parse('2026-01-01T00:00:30Z');

const CONFIG = `
issuers:
  - name: cluster
    type: kubernetes
    issuer: https://kubernetes.default.svc.cluster.local
    jwksUri: https://kubernetes.default.svc.cluster.local/openid/v1/jwks
    audiences: [kube-vertex-proxy]
  - name: google
    type: google
    audiences: [${CALLBACK_AUDIENCE}, https://proxy.example.com/other]
vertex:
  projects: [my-proj]
  locations: [us-central1]
policy:
  rules:
    - id: ml-generate
      effect: allow
      subjects: { namespaces: [ml, quota] }
      permissions: [generate]
    - id: team-predict
      effect: allow
      subjects: { namespaceSelector: { matchLabels: { team: ml } } }
      permissions: [predict]
    - id: no-secret-audit
      effect: deny
      subjects: { namespaces: [compliance] }
      permissions: [audit.read]
      resources: ["audit/namespaces/secret"]
    - id: auditors
      effect: allow
      subjects: { namespaceSelector: { matchLabels: { team: compliance } } }
      permissions: [audit.read]
      resources: ["audit/*"]
    - id: ml-own-audit
      effect: allow
      subjects: { namespaces: [ml] }
      permissions: [audit.read]
      resources: ["audit/namespaces/ml"]
limits:
  rules:
    - id: quota-rpm
      subjects: { namespaces: [quota] }
      requestsPerMinute: 1
callbacks:
  routes:
    - prefix: /callbacks/training
      upstream: ${BACKEND}
      callers: ["${SERVICE_AGENT}"]
      bodyLimit: 1KiB
      tokenAudiences: [${CALLBACK_AUDIENCE}]
`;

function kubernetes(namespace: string, serviceAccount = 'runner'): Principal {
  return {
    kind: 'kubernetes',
    issuer: 'cluster',
    subject: `system:serviceaccount:${namespace}:${serviceAccount}`,
    namespace,
    serviceAccount,
    uid: undefined,
    pod: undefined,
    tokenId: undefined,
    expiresAt: Date.now() + 3_600_000,
  };
}

function google(email: string, audience = CALLBACK_AUDIENCE): Principal {
  return { kind: 'google', issuer: 'google', subject: '1', email, audiences: [audience], expiresAt: Date.now() + 3_600_000 };
}

/** A token the bearer parser accepts (three base64url parts); the fake verifier reads the name back. */
function jwtShaped(name: string): string {
  return `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(name).toString('base64url')}.c2ln`;
}

/** Tokens name their principal; anything else is a bad token. */
const PRINCIPALS: Readonly<Record<string, Principal>> = {
  ml: kubernetes('ml'),
  quota: kubernetes('quota'),
  dev: kubernetes('dev'),
  compliance: kubernetes('compliance'),
  agent: google(SERVICE_AGENT),
  'agent-other-audience': google(SERVICE_AGENT, 'https://proxy.example.com/other'),
  stranger: google('someone@other-proj.iam.gserviceaccount.com'),
};

/** The verifier without keys: tokens are looked up, never verified (the authn step around it is the real one). */
class FakeVerifier extends TokenVerifier {
  constructor() {
    super({
      issuers: [],
      clockSkewSec: 0,
      cacheMaxEntries: 0,
      negativeTtlMs: 0,
      jwksRefreshIntervalMs: 60_000,
      jwksMinRefreshIntervalMs: 60_000,
      jwksFetchTimeoutMs: 1_000,
    });
  }
  override cached(): Principal | undefined {
    return undefined;
  }
  override verify(token: string): Promise<Principal> {
    const principal = PRINCIPALS[Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()];
    return principal === undefined
      ? Promise.reject(unauthenticated('ERR_AUTHN_INVALID_TOKEN', 'The token is not valid.', { reason: 'bad-signature' }))
      : Promise.resolve(principal);
  }
}

const LABELS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  ml: { team: 'ml' },
  quota: {},
  dev: {},
  compliance: { team: 'compliance' },
};

let labelsStale: { ageSeconds: number | null } | undefined;
const labels: NamespaceLabelSource = { kind: 'watch', labelsOf: (ns) => LABELS[ns], ready: () => true, stale: () => labelsStale };

let credentialToken: string | undefined;
const credential: UpstreamCredential = {
  authorization: () => (credentialToken === undefined ? undefined : `Bearer ${credentialToken}`),
  ready: () => credentialToken !== undefined,
  start: () => Promise.resolve(),
  stop: () => undefined,
  describe: () => ({ ready: credentialToken !== undefined, expiresInSec: 3600, lastError: undefined }),
};

/** Strict durability with a store that can be made to fail. */
let auditStoreDown = false;
const committed: AuditRecord[] = [];
const auditTrail: AuditTrail = {
  durability: 'strict',
  recordDecision: (record) => {
    if (auditStoreDown) return Promise.reject(new Error('store down'));
    committed.push(record);
    return Promise.resolve();
  },
  recordFinal: () => undefined,
  queryStore: undefined,
  queueDepth: () => 0,
  healthy: () => !auditStoreDown,
  close: () => Promise.resolve(),
};

interface Upstream {
  readonly path: string;
  readonly headers: Record<string, string>;
}
const upstreamCalls: Upstream[] = [];
const backendCalls: Upstream[] = [];

let app: FastifyInstance;
let mock: MockAgent;
const records: AuditRecord[] = [];
/** Every request the app saw, to read what the steps left in `request.kvp`. */
const seen: FastifyRequest[] = [];

function headersOf(raw: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(raw)) for (let i = 0; i + 1 < raw.length; i += 2) out[String(raw[i]).toLowerCase()] = String(raw[i + 1]);
  else for (const [name, value] of Object.entries((raw ?? {}) as Record<string, unknown>)) out[name.toLowerCase()] = String(value);
  return out;
}

beforeAll(async () => {
  const settings = parseConfig(CONFIG, 'app.test.yaml');
  mock = new MockAgent();
  mock.disableNetConnect();
  mock
    .get(VERTEX)
    .intercept({ path: () => true, method: () => true })
    .reply((options) => {
      upstreamCalls.push({ path: options.path, headers: headersOf(options.headers) });
      return { statusCode: 200, data: { candidates: [] }, responseOptions: { headers: { 'content-type': 'application/json' } } };
    })
    .persist();
  mock
    .get(BACKEND)
    .intercept({ path: () => true, method: () => true })
    .reply((options) => {
      backendCalls.push({ path: options.path, headers: headersOf(options.headers) });
      return { statusCode: 200, data: { ok: true }, responseOptions: { headers: { 'content-type': 'application/json' } } };
    })
    .persist();
  const deps: ProxyDeps = {
    logger: pino({ level: 'silent' }),
    verifier: new FakeVerifier(),
    labels,
    policy: () => settings.policy,
    labelIndependentPolicy: (() => {
      const independent = compileLabelIndependent(settings.policyRules);
      return () => independent;
    })(),
    credential,
    dispatcher: mock,
    auditListeners: [(record) => records.push(record)],
    auditTrail,
    limiter: new Limiter({
      rules: settings.limits.rules,
      // A fixed clock: the one-a-minute limit never rolls over between two calls.
      store: createMemoryStore(() => FIXED_NOW),
      now: () => FIXED_NOW,
      onUnavailable: 'failClosed',
      observer: { decision: () => undefined, remaining: () => undefined, settleFailed: () => undefined },
    }),
    callbacks: {
      routes: settings.callbacks.routes,
      signer: await AssertionSigner.create({ keyFile: undefined, issuer: 'kube-vertex-proxy', lifetimeSec: 60 }),
      assertionHeader: 'x-kvp-assertion',
      dispatcher: mock,
      jwks: () => ({ keys: [] }),
      close: () => Promise.resolve(),
    },
  };
  app = await buildProxyApp(settings, deps);
  // Added last, these run after every step's hooks: onRequest once every onRequest step let the request
  // through (the forwarder then writes the response itself), onSend for every answer fastify sends (refusals).
  const note = (request: FastifyRequest) => {
    if (seen.at(-1) !== request) seen.push(request);
  };
  app.addHook('onRequest', (request, _reply, done) => {
    note(request);
    done();
  });
  app.addHook('onSend', (request, _reply, payload, done) => {
    note(request);
    done(null, payload);
  });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await mock.close();
});

beforeEach(() => {
  labelsStale = undefined;
  credentialToken = 'ya29.proxy-own';
  auditStoreDown = false;
});

interface Call {
  readonly token?: string;
  readonly method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly url: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

async function call({
  token,
  method = 'POST',
  url,
  headers = {},
  body,
}: Call): Promise<{ response: LightMyRequestResponse; kvp: RequestContext }> {
  const before = seen.length;
  const options: InjectOptions = {
    method,
    url,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${jwtShaped(token)}` }),
      'content-type': 'application/json',
      ...headers,
    },
    ...(body === undefined && method !== 'POST' ? {} : { payload: body ?? '{}' }),
  };
  const response = await app.inject(options);
  expect(seen.length).toBe(before + 1);
  return { response, kvp: (seen.at(-1) as FastifyRequest).kvp };
}

/** The code in Google's error body (ErrorInfo's reason is the code without `ERR_`). */
function errorCode(response: LightMyRequestResponse): string | undefined {
  const body = response.json<{ error?: { details?: Array<{ reason?: string }> } }>();
  const reason = body.error?.details?.find((d) => d.reason !== undefined)?.reason;
  return reason === undefined ? undefined : `ERR_${reason}`;
}

/** The step that refused, read from what the request context holds when it ended. */
type Step = 'authenticate' | 'classify' | 'authorize' | 'limits' | 'inspect' | 'audit-commit' | 'forward' | 'route' | 'body-limit';

describe('Vertex AI family: which step refuses first', () => {
  const rows: Array<[string, Call, number, string, Step]> = [
    [
      'no token, a forbidden header, an unknown method: authenticate first',
      { url: '/v1/projects/my-proj/locations/us-central1/nothing:here', headers: { 'x-goog-user-project': 'p' } },
      401,
      'ERR_AUTHN_MISSING_CREDENTIALS',
      'authenticate',
    ],
    ['a bad token on a denied operation: authenticate', { token: 'forged', url: PREDICT }, 401, 'ERR_AUTHN_INVALID_TOKEN', 'authenticate'],
    [
      'a Google token on the Vertex AI path: authenticate',
      { token: 'agent', url: GENERATE },
      401,
      'ERR_AUTHN_UNTRUSTED_ISSUER',
      'authenticate',
    ],
    [
      'a forbidden header on an operation the policy denies: classify before authorize',
      { token: 'dev', url: PREDICT, headers: { 'x-goog-user-project': 'other' } },
      400,
      'ERR_REQUEST_FORBIDDEN_HEADER',
      'classify',
    ],
    [
      'an unknown method, for a caller with no grant at all: classify',
      { token: 'dev', url: '/v1/projects/my-proj/locations/us-central1/nothing:here' },
      404,
      'ERR_REQUEST_UNKNOWN_METHOD',
      'classify',
    ],
    [
      'a location not served: classify',
      { token: 'ml', url: GENERATE.replace('us-central1', 'europe-west4') },
      400,
      'ERR_REQUEST_LOCATION_NOT_SERVED',
      'classify',
    ],
    ['no rule grants it: authorize', { token: 'dev', url: GENERATE }, 403, 'ERR_AUTHZ_DENIED', 'authorize'],
    [
      'a body naming a resource of a project not served, on a denied call: authorize before inspect',
      { token: 'dev', url: GENERATE, body: '{"cachedContent":"projects/elsewhere/locations/us-central1/cachedContents/1"}' },
      403,
      'ERR_AUTHZ_DENIED',
      'authorize',
    ],
    [
      'a body naming a resource the policy does not grant, on an allowed call: inspect',
      { token: 'ml', url: GENERATE, body: '{"cachedContent":"projects/elsewhere/locations/us-central1/cachedContents/1"}' },
      403,
      'ERR_AUTHZ_BODY_RESOURCE_DENIED',
      'inspect',
    ],
    [
      'a body field that names no resource, on an allowed call: inspect',
      { token: 'ml', url: GENERATE, body: '{"cachedContent":"not a name"}' },
      400,
      'ERR_REQUEST_INVALID_BODY_RESOURCE',
      'inspect',
    ],
  ];

  it.each(rows)('%s', async (_name, request, status, code, step) => {
    const before = upstreamCalls.length;
    const { response, kvp } = await call(request);
    expect(response.statusCode).toBe(status);
    expect(errorCode(response)).toBe(code);
    expect(kvp.failure?.code).toBe(code);
    expect(reachedStep(kvp)).toBe(step);
    expect(upstreamCalls.length).toBe(before);
  });

  it('stale labels: a grant that rests on labels is refused by authorize; one that does not still goes through', async () => {
    labelsStale = { ageSeconds: 120 };
    const byLabels = await call({ token: 'ml', url: PREDICT });
    expect(byLabels.response.statusCode).toBe(403);
    expect(errorCode(byLabels.response)).toBe('ERR_IDENTITY_LABELS_STALE');
    expect(byLabels.kvp.decision).toEqual({ allowed: false, ruleId: 'team-predict', reason: 'labels-stale' });
    const byName = await call({ token: 'ml', url: GENERATE });
    expect(byName.response.statusCode).toBe(200);
    expect(byName.kvp.decision).toMatchObject({ allowed: true, ruleId: 'ml-generate' });
  });

  it('over its limit: limits refuses after authorize allowed', async () => {
    const first = await call({ token: 'quota', url: GENERATE });
    expect(first.response.statusCode).toBe(200);
    const second = await call({ token: 'quota', url: GENERATE });
    expect(second.response.statusCode).toBe(429);
    expect(errorCode(second.response)).toBe('ERR_LIMIT_EXCEEDED');
    expect(second.kvp.decision).toMatchObject({ allowed: true, ruleId: 'ml-generate' });
    expect(second.kvp.limitRefusedBy).toBe('quota-rpm');
    expect(reachedStep(second.kvp)).toBe('limits');
  });

  it('an audit store that cannot take the decision: the commit step refuses, nothing is forwarded', async () => {
    auditStoreDown = true;
    const before = upstreamCalls.length;
    const { response, kvp } = await call({ token: 'ml', url: GENERATE });
    expect(response.statusCode).toBe(503);
    expect(errorCode(response)).toBe('ERR_AUDIT_UNAVAILABLE');
    expect(kvp.decision?.allowed).toBe(true);
    expect(upstreamCalls.length).toBe(before);
  });

  it('no Google credential at hand: forward refuses before any body is read or decision committed', async () => {
    credentialToken = undefined;
    const before = committed.length;
    const { response, kvp } = await call({
      token: 'ml',
      url: GENERATE,
      body: '{"cachedContent":"projects/elsewhere/locations/us-central1/cachedContents/1"}',
    });
    expect(response.statusCode).toBe(503);
    expect(errorCode(response)).toBe('ERR_FORWARD_CREDENTIAL_UNAVAILABLE');
    expect(kvp.decision?.allowed).toBe(true);
    expect(committed.length).toBe(before);
    expect(kvp.upstreamStatus).toBeUndefined();
  });

  it('an allowed request: its decision is committed before it is forwarded', async () => {
    const committedBefore = committed.length;
    const upstreamBefore = upstreamCalls.length;
    const { response, kvp } = await call({ token: 'ml', url: GENERATE });
    expect(response.statusCode).toBe(200);
    expect(committed.length).toBe(committedBefore + 1);
    expect(committed.at(-1)).toMatchObject({ decision: 'allow', ruleId: 'ml-generate', status: 0 });
    expect(upstreamCalls.length).toBe(upstreamBefore + 1);
    expect(reachedStep(kvp)).toBe('forward');
  });
});

/** The last step whose mark is on the context (the request ended in the step after it, or in it). */
function reachedStep(kvp: RequestContext): Step {
  if (kvp.direction === 'inbound') {
    if (kvp.principal === undefined) return kvp.failure?.code.startsWith('ERR_AUTHN_') === true ? 'authenticate' : 'route';
    if (kvp.decision === undefined || !kvp.decision.allowed) return 'authorize';
    return kvp.upstreamStatus === undefined ? 'body-limit' : 'forward';
  }
  if (kvp.subject === undefined) return 'authenticate';
  if (kvp.decision === undefined) return 'classify';
  if (!kvp.decision.allowed) return 'authorize';
  if (kvp.limitRefusedBy !== undefined) return 'limits';
  if (kvp.failure?.code.startsWith('ERR_REQUEST_') === true || kvp.failure?.code.startsWith('ERR_AUTHZ_') === true) return 'inspect';
  if (kvp.failure?.code === 'ERR_AUDIT_UNAVAILABLE') return 'audit-commit';
  return 'forward';
}

describe('Vertex AI family: what each step leaves in request.kvp', () => {
  let kvp: RequestContext;
  let upstream: Upstream;
  beforeAll(async () => {
    labelsStale = undefined;
    credentialToken = 'ya29.proxy-own';
    const before = upstreamCalls.length;
    const result = await call({ token: 'ml', url: PREDICT, headers: { 'x-forwarded-for': '10.0.0.1' }, body: '{"instances":[]}' });
    expect(result.response.statusCode).toBe(200);
    kvp = result.kvp;
    expect(upstreamCalls.length).toBe(before + 1);
    upstream = upstreamCalls.at(-1) as Upstream;
  });

  const rows: Array<[string, (kvp: RequestContext) => unknown, unknown]> = [
    ['audit: the context, outbound', (c) => c.direction, 'outbound'],
    ['authenticate: the principal', (c) => c.principal, PRINCIPALS.ml],
    [
      'identify: the policy subject with its labels',
      (c) => c.subject,
      { namespace: 'ml', serviceAccount: 'runner', labels: { team: 'ml' } },
    ],
    [
      'classify: the operation',
      (c) => [c.operation?.spec.id, c.operation?.resource],
      ['endpoints.predict', 'projects/my-proj/locations/us-central1/endpoints/123'],
    ],
    ['classify: the upstream origin', (c) => c.upstreamBase, VERTEX],
    ['authorize: the decision', (c) => c.decision, { allowed: true, ruleId: 'team-predict', reason: 'allowed-by-rule' }],
    ['authorize: the policy version', (c) => c.policyVersion, expect.stringMatching(/^[0-9a-f]{64}$/)],
    ['limits: no rule applied', (c) => c.limitRules, undefined],
    ['forward: the upstream status', (c) => c.upstreamStatus, 200],
    ['forward: when it started', (c) => typeof c.upstreamStartedAt, 'bigint'],
    ['no failure', (c) => c.failure, undefined],
  ];
  it.each(rows)('%s', (_name, read, expected) => {
    expect(read(kvp)).toEqual(expected);
  });

  it("forward: the proxy's credential went upstream, the caller's token and spoofable headers did not", () => {
    expect(upstream.path).toBe(PREDICT);
    expect(upstream.headers.authorization).toBe('Bearer ya29.proxy-own');
    expect(upstream.headers['x-forwarded-for']).toBeUndefined();
  });

  it('audit: the record says the same', () => {
    const record = records.find((r) => r.requestId === seen.find((s) => s.kvp === kvp)?.id);
    expect(record).toMatchObject({ decision: 'allow', ruleId: 'team-predict', status: 200 });
  });
});

describe('audit API family: the same authorize step, with its own classifier', () => {
  const rows: Array<[string, Call, boolean, number, string | undefined, Record<string, unknown> | undefined, string | undefined]> = [
    // name, request, labels stale, status, error code, decision, resource decided on
    [
      'no token: authenticate',
      { method: 'GET', url: '/audit/v1/records' },
      false,
      401,
      'ERR_AUTHN_MISSING_CREDENTIALS',
      undefined,
      undefined,
    ],
    [
      'a grant scoped to a namespace does not read the whole trail',
      { token: 'ml', method: 'GET', url: '/audit/v1/records' },
      false,
      403,
      'ERR_AUTHZ_DENIED',
      { allowed: false, ruleId: null },
      'audit/records',
    ],
    [
      'it reads its own namespace (then the missing store answers)',
      { token: 'ml', method: 'GET', url: '/audit/v1/records?namespace=ml' },
      false,
      503,
      'ERR_AUDIT_UNAVAILABLE',
      { allowed: true, ruleId: 'ml-own-audit' },
      'audit/namespaces/ml',
    ],
    [
      'a grant of the whole trail covers a namespace no rule names',
      { token: 'compliance', method: 'GET', url: '/audit/v1/summary?namespace=ml' },
      false,
      503,
      'ERR_AUDIT_UNAVAILABLE',
      { allowed: true, ruleId: 'auditors' },
      'audit/summary',
    ],
    [
      'unless a rule denies that namespace',
      { token: 'compliance', method: 'GET', url: '/audit/v1/records?namespace=secret' },
      false,
      403,
      'ERR_AUTHZ_DENIED',
      { allowed: false, ruleId: 'no-secret-audit' },
      'audit/namespaces/secret',
    ],
    [
      'a grant that rests on labels, while the label view is stale: refused like any other decision',
      { token: 'compliance', method: 'GET', url: '/audit/v1/records' },
      true,
      403,
      'ERR_IDENTITY_LABELS_STALE',
      { allowed: false, reason: 'labels-stale' },
      'audit/records',
    ],
    [
      'stale labels do not matter to a grant by namespace name',
      { token: 'ml', method: 'GET', url: '/audit/v1/records?namespace=ml' },
      true,
      503,
      'ERR_AUDIT_UNAVAILABLE',
      { allowed: true, ruleId: 'ml-own-audit' },
      'audit/namespaces/ml',
    ],
  ];
  it.each(rows)('%s', async (_name, request, stale, status, code, decision, resource) => {
    labelsStale = stale ? { ageSeconds: null } : undefined;
    const { response, kvp } = await call(request);
    expect(response.statusCode).toBe(status);
    expect(errorCode(response)).toBe(code);
    if (decision === undefined) expect(kvp.decision).toBeUndefined();
    else expect(kvp.decision).toMatchObject(decision);
    expect(kvp.operation?.resource).toBe(resource);
    if (resource !== undefined) expect(kvp.operation?.spec.permission).toBe('audit.read');
  });

  it('a refusal of the whole trail says how a namespace grant could apply', async () => {
    const { response } = await call({ token: 'ml', method: 'GET', url: '/audit/v1/records' });
    expect(response.json<{ error: { message: string } }>().error.message).toContain('namespace=NS');
  });
});

describe('callbacks family: route, authenticate, the same authorize step with the route as classifier', () => {
  const rows: Array<[string, Call, number, string | undefined, Step]> = [
    [
      'a path spelled with an escaped unreserved character, no token: route first',
      { url: '/callbacks/training/a%2Db' },
      400,
      'ERR_REQUEST_INVALID_PATH',
      'route',
    ],
    [
      'a method the route does not allow, no token: route',
      { method: 'DELETE', url: '/callbacks/training/x' },
      405,
      'ERR_REQUEST_METHOD_NOT_ALLOWED',
      'route',
    ],
    ['no token: authenticate', { url: '/callbacks/training/x' }, 401, 'ERR_AUTHN_MISSING_CREDENTIALS', 'authenticate'],
    ['a Kubernetes token: authenticate', { token: 'ml', url: '/callbacks/training/x' }, 401, 'ERR_AUTHN_UNTRUSTED_ISSUER', 'authenticate'],
    [
      "a token for another route's audience, from a listed caller: authorize's classifier",
      { token: 'agent-other-audience', url: '/callbacks/training/x' },
      401,
      'ERR_AUTHN_INVALID_TOKEN',
      'authorize',
    ],
    [
      'a caller the route does not list, with a body over its limit: authorize first',
      { token: 'stranger', url: '/callbacks/training/x', body: 'x'.repeat(2048) },
      403,
      'ERR_AUTHZ_DENIED',
      'authorize',
    ],
    [
      'a listed caller, a body over the limit',
      { token: 'agent', url: '/callbacks/training/x', body: 'x'.repeat(2048) },
      413,
      'ERR_REQUEST_BODY_TOO_LARGE',
      'body-limit',
    ],
    ['a listed caller: forwarded', { token: 'agent', url: '/callbacks/training/jobs/1:complete' }, 200, undefined, 'forward'],
  ];
  it.each(rows)('%s', async (_name, request, status, code, step) => {
    const { response, kvp } = await call(request);
    expect(response.statusCode).toBe(status);
    if (code !== undefined) expect(errorCode(response)).toBe(code);
    expect(kvp.direction).toBe('inbound');
    expect(reachedStep(kvp)).toBe(step);
  });

  it('leaves the route, the caller and the decision in request.kvp; the backend gets the assertion, not the token', async () => {
    const before = backendCalls.length;
    const { kvp } = await call({ token: 'agent', url: '/callbacks/training/jobs/2:complete' });
    expect(kvp.route).toBe('/callbacks/training');
    expect(kvp.upstreamBase).toBe(BACKEND);
    expect(kvp.principal).toMatchObject({ kind: 'google', email: SERVICE_AGENT });
    expect(kvp.decision).toEqual({ allowed: true, ruleId: 'callbacks:/callbacks/training', reason: 'allowed-by-rule' });
    expect(kvp.operation).toBeUndefined();
    expect(backendCalls.length).toBe(before + 1);
    const sent = backendCalls.at(-1) as Upstream;
    expect(sent.path).toBe('/callbacks/training/jobs/2:complete');
    expect(sent.headers.authorization).toBeUndefined();
    expect(sent.headers['x-kvp-assertion']).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it('an unlisted caller is refused with the route named, and its decision recorded', async () => {
    const { response, kvp } = await call({ token: 'stranger', url: '/callbacks/training/x' });
    expect(response.json<{ error: { message: string } }>().error.message).toContain('/callbacks/training');
    expect(kvp.decision).toEqual({ allowed: false, ruleId: null, reason: 'no-matching-rule' });
    expect(kvp.failure?.reason).toBe('caller-not-allowed');
  });
});
