/**
 * OpenTelemetry traces, end to end: the real proxy process exports OTLP/HTTP
 * (JSON) to a receiver stand-in; the spans' structure and attributes, the
 * `traceparent` Vertex AI and a callback backend receive, the sampling ratio,
 * and the exemplars on the OpenMetrics exposition.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type IssuerStandIn } from '../../dev/standins/issuer.js';
import { startKubeApiStandIn, type KubeApiStandIn } from '../../dev/standins/kube-api.js';
import { startCallbackBackend, type CallbackBackend } from '../helpers/callback-backend.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { until } from '../helpers/poll.js';
import { AUDIENCE, LOCATION, PREDICT_PATH, PROJECT, startWorld, type World } from '../helpers/world.js';

const GENERATE_PATH = `/v1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.0-flash:generateContent`;
const GENERATE_BODY = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hello' }] }] });
const CALLBACK_AUDIENCE = 'https://vertex-callbacks.example.com';
const SERVICE_AGENT = 'service-123456789012@gcp-sa-aiplatform.iam.gserviceaccount.com';
const SERVER = 2;
const CLIENT = 3;
const INTERNAL = 1;
const ERROR = 2;

function hex(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += Math.floor(Math.random() * 16).toString(16);
  return out;
}

/** Exports quickly, so tests do not wait for the 5 s default batch delay. */
const FAST_EXPORT = { OTEL_BSP_SCHEDULE_DELAY: '50' };

function traceparentOf(headers: Record<string, unknown>): { traceId: string; parentId: string; flags: string } | undefined {
  const value = headers.traceparent;
  if (typeof value !== 'string') return undefined;
  const [, traceId, parentId, flags] = value.split('-');
  return { traceId: traceId as string, parentId: parentId as string, flags: flags as string };
}

describe('tracing on (sampleRatio 1): one trace per request, joined to the caller and to Vertex AI', () => {
  let receiver: OtlpReceiver;
  let api: KubeApiStandIn;
  let google: IssuerStandIn;
  let backend: CallbackBackend;
  let world: World;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    api = await startKubeApiStandIn();
    api.addServiceAccount('ml', 'trainer');
    api.addPod('ml', 'trainer-0', 'trainer');
    api.addServiceAccount('web', 'frontend');
    api.addPod('web', 'frontend-0', 'frontend');
    google = await startIssuer({ kind: 'google' });
    backend = await startCallbackBackend();
    const dir = mkdtempSync(join(tmpdir(), 'kvp-tracing-'));
    const kubeconfig = api.writeKubeconfig(dir);
    world = await startWorld({
      env: FAST_EXPORT,
      config: (defaults) => ({
        ...defaults,
        issuers: [
          ...(defaults.issuers as object[]),
          { name: 'google', type: 'google', issuer: google.issuer, audiences: [CALLBACK_AUDIENCE] },
        ],
        kubernetes: { ...(defaults.kubernetes as object), kubeconfig, tokenReview: true, tokenReviewTtl: '10m' },
        audit: { durability: 'strict', sinks: [{ type: 'stdout' }, { type: 'sqlite', path: join(dir, 'audit.db') }] },
        callbacks: { routes: [{ prefix: '/callbacks/training', upstream: backend.url, callers: [SERVICE_AGENT] }] },
        tracing: {
          enabled: true,
          endpoint: receiver.url,
          sampleRatio: 1,
          resourceAttributes: { 'deployment.environment.name': 'test', 'k8s.cluster.name': 'it' },
        },
      }),
    });
    backend.trust({
      jwksUrl: `${world.proxy.adminUrl}/.well-known/jwks.json`,
      issuer: 'kube-vertex-proxy',
      audience: [`${backend.url}/callbacks/training`],
    });
  });
  afterAll(async () => {
    await world?.close();
    await Promise.all([receiver?.close(), api?.close(), google?.close(), backend?.close()]);
  });

  function boundToken(namespace = 'ml', serviceAccount = 'trainer'): string {
    return world.issuer.mintKubernetesToken({
      namespace,
      serviceAccount,
      audience: AUDIENCE,
      podName: `${serviceAccount}-0`,
      podUid: api.uidOf('pods', namespace, `${serviceAccount}-0`) as string,
      saUid: api.uidOf('serviceaccounts', namespace, serviceAccount) as string,
    });
  }

  it(
    "exports a server span under the caller's traceparent, with verify → TokenReview, audit commit and the Vertex AI client " +
      'span as children',
    async () => {
      const callerTrace = hex(32);
      const callerSpan = hex(16);
      const token = boundToken();
      const before = world.vertex.requests.length;
      const response = await world.call(GENERATE_PATH, {
        token,
        body: GENERATE_BODY,
        headers: { traceparent: `00-${callerTrace}-${callerSpan}-01`, tracestate: 'vendor=abc' },
      });
      expect(response.status).toBe(200);

      const server = await receiver.waitFor((spans) => spans.find((s) => s.traceId === callerTrace && s.kind === SERVER));
      const inTrace = await receiver.waitFor((spans) => {
        const found = spans.filter((s) => s.traceId === callerTrace);
        return found.length >= 5 ? found : undefined;
      });
      expect(server.parentSpanId).toBe(callerSpan);
      expect(server.name).toBe('POST publisherModels.generateContent');
      expect(server.scope).toBe('kube-vertex-proxy');
      expect(server.resource['service.name']).toBe('kube-vertex-proxy');
      expect(server.resource['deployment.environment.name']).toBe('test');
      expect(server.resource['k8s.cluster.name']).toBe('it');
      expect(server.attributes).toMatchObject({
        'http.request.method': 'POST',
        'http.response.status_code': 200,
        'kvp.operation': 'publisherModels.generateContent',
        'kvp.permission': 'aiplatform.endpoints.predict',
        'kvp.resource': `projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.0-flash`,
        'kvp.decision': 'allow',
        'kvp.rule': 'ml-predict',
        'kvp.principal.namespace': 'ml',
      });
      expect(server.status).not.toBe(ERROR);

      const byName = (name: string) => inTrace.find((s) => s.name === name) as ReceivedSpan;
      const verify = byName('kvp.authn.verify');
      const review = byName('kvp.authn.token_review');
      const commit = byName('kvp.audit.commit');
      const upstream = byName('generate_content gemini-2.0-flash');
      for (const span of [verify, review, commit, upstream]) expect(span, JSON.stringify(inTrace.map((s) => s.name))).toBeDefined();
      expect(verify).toMatchObject({ parentSpanId: server.spanId, kind: INTERNAL });
      expect(review).toMatchObject({ parentSpanId: verify.spanId, kind: CLIENT });
      expect(commit).toMatchObject({ parentSpanId: server.spanId, kind: INTERNAL });
      expect(upstream).toMatchObject({ parentSpanId: server.spanId, kind: CLIENT });
      expect(upstream.attributes).toMatchObject({
        'gen_ai.system': 'gcp.vertex_ai',
        'gen_ai.operation.name': 'generate_content',
        'gen_ai.request.model': 'gemini-2.0-flash',
        'http.response.status_code': 200,
      });
      // The usage the stand-in reported (usageMetadata), read as the response passed.
      expect(Number(upstream.attributes['gen_ai.usage.input_tokens'])).toBeGreaterThan(0);
      expect(Number(upstream.attributes['gen_ai.usage.output_tokens'])).toBeGreaterThan(0);

      // Vertex AI got the same trace, with the proxy's client span as parent, and the caller's tracestate.
      const received = world.vertex.requests.slice(before).at(-1)!;
      expect(traceparentOf(received.headers)).toEqual({ traceId: callerTrace, parentId: upstream.spanId, flags: '01' });
      expect(received.headers.tracestate).toBe('vendor=abc');

      // The audit record names the proxy's span in the caller's trace.
      const audit = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.traceId === callerTrace);
      expect(audit.kubeVertexProxy.spanId).toBe(server.spanId);
      expect(audit['logging.googleapis.com/spanId']).toBe(server.spanId);

      // No credential in any span.
      const exported = JSON.stringify(receiver.spans, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
      expect(exported).not.toContain(token);
      expect(exported).not.toContain(token.split('.')[2] as string);
      expect(exported).not.toContain('hello');
    },
  );

  it(
    'a cached token costs no verification span; ' + 'a request without traceparent starts a new trace that still reaches Vertex AI',
    async () => {
      const token = boundToken();
      expect((await world.call(PREDICT_PATH, { token, body: '{}' })).status).toBe(200);
      const before = world.vertex.requests.length;
      expect((await world.call(PREDICT_PATH, { token, body: '{}' })).status).toBe(200);
      const sent = traceparentOf(world.vertex.requests.slice(before).at(-1)!.headers);
      expect(sent?.flags).toBe('01');
      const spans = await receiver.waitFor((all) => {
        const found = all.filter((s) => s.traceId === sent?.traceId);
        return found.some((s) => s.kind === SERVER) ? found : undefined;
      });
      const server = spans.find((s) => s.kind === SERVER)!;
      expect(server.parentSpanId).toBeUndefined();
      expect(spans.map((s) => s.name).sort()).toEqual(['POST endpoints.predict', 'POST endpoints.predict', 'kvp.audit.commit'].sort());
      expect(spans.find((s) => s.kind === CLIENT)?.spanId).toBe(sent?.parentId);
    },
  );

  it('a denied request is a server span with the decision, no upstream span, and not an error', async () => {
    const traceId = hex(32);
    const response = await world.call(PREDICT_PATH, {
      token: boundToken('web', 'frontend'),
      body: '{}',
      headers: { traceparent: `00-${traceId}-${hex(16)}-01` },
    });
    expect(response.status).toBe(403);
    const server = await receiver.waitFor((spans) => spans.find((s) => s.traceId === traceId && s.kind === SERVER));
    expect(server.attributes).toMatchObject({
      'kvp.decision': 'deny',
      'http.response.status_code': 403,
      'kvp.error_code': 'ERR_AUTHZ_DENIED',
      'kvp.principal.namespace': 'web',
    });
    expect(server.status).not.toBe(ERROR);
    await new Promise((r) => setTimeout(r, 200));
    // TokenReview (the token was new) is the only call out of the proxy.
    expect(receiver.spans.filter((s) => s.traceId === traceId && s.kind === CLIENT).map((s) => s.name)).toEqual(['kvp.authn.token_review']);
  });

  it("a callback backend receives the trace too, under the proxy's client span", async () => {
    const traceId = hex(32);
    const before = backend.requests.length;
    const response = await world.call('/callbacks/training/jobs/1:complete', {
      token: google.mintGoogleIdToken({ email: SERVICE_AGENT, audience: CALLBACK_AUDIENCE }),
      body: '{}',
      headers: { traceparent: `00-${traceId}-${hex(16)}-01` },
    });
    expect(response.status, await response.clone().text()).toBe(200);
    const sent = traceparentOf(backend.requests.slice(before).at(-1)!.headers);
    const client = await receiver.waitFor((spans) => spans.find((s) => s.traceId === traceId && s.kind === CLIENT));
    expect(client.name).toBe('POST callback:/callbacks/training');
    expect(sent).toEqual({ traceId, parentId: client.spanId, flags: '01' });
    const server = await receiver.waitFor((spans) => spans.find((s) => s.traceId === traceId && s.kind === SERVER));
    expect(client.parentSpanId).toBe(server.spanId);
    expect(server.attributes['kvp.direction']).toBe('inbound');
  });

  it('request-duration histograms carry the trace id as an exemplar in the OpenMetrics exposition, and only there', async () => {
    const traceId = hex(32);
    expect(
      (await world.call(PREDICT_PATH, { token: boundToken(), body: '{}', headers: { traceparent: `00-${traceId}-${hex(16)}-01` } })).status,
    ).toBe(200);
    await world.proxy.waitForAudit((e) => e.kubeVertexProxy.traceId === traceId);
    const om = await fetch(`${world.proxy.adminUrl}/metrics`, {
      headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' },
    });
    expect(om.headers.get('content-type')).toMatch(/^application\/openmetrics-text; version=1\.0\.0/);
    const text = await om.text();
    expect(text.endsWith('# EOF\n')).toBe(true);
    const exemplar = new RegExp(
      `^kube_vertex_proxy_request_duration_seconds_bucket\\{le="[^"]+",direction="outbound",operation="endpoints.predict"\\} ` +
        `\\d+ # \\{trace_id="${traceId}",span_id="[0-9a-f]{16}"\\} [0-9.e-]+ [0-9.]+$`,
      'm',
    );
    expect(text).toMatch(exemplar);
    // OpenMetrics names counters without `_total` in TYPE and with it on samples.
    expect(text).toMatch(/^# TYPE kube_vertex_proxy_requests counter$/m);
    expect(text).toMatch(/^kube_vertex_proxy_requests_total\{/m);

    // A Prometheus-format scrape right after is unchanged: no exemplars, counter names intact.
    const plain = await fetch(`${world.proxy.adminUrl}/metrics`);
    expect(plain.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const plainText = await plain.text();
    expect(plainText).not.toContain('trace_id=');
    expect(plainText).toMatch(/^# TYPE kube_vertex_proxy_requests_total counter$/m);
  });
});

describe('sampling', () => {
  let receiver: OtlpReceiver;
  let world: World;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    world = await startWorld({
      env: FAST_EXPORT,
      config: (defaults) => ({ ...defaults, tracing: { enabled: true, endpoint: receiver.url, sampleRatio: 0.25 } }),
    });
  });
  afterAll(async () => {
    await world?.close();
    await receiver?.close();
  });

  it('records about sampleRatio of new traces, exactly those whose traceparent to Vertex AI says sampled', async () => {
    const token = world.token();
    const before = world.vertex.requests.length;
    const n = 200;
    for (let i = 0; i < n; i += 20) {
      const batch = Array.from({ length: 20 }, () => world.call(PREDICT_PATH, { token, body: '{}' }).then((r) => r.status));
      expect(await Promise.all(batch)).toEqual(Array(20).fill(200));
    }
    const sent = world.vertex.requests.slice(before).map((r) => traceparentOf(r.headers)!);
    expect(sent).toHaveLength(n);
    expect(new Set(sent.map((s) => s.traceId)).size).toBe(n);
    const sampled = new Set(sent.filter((s) => s.flags === '01').map((s) => s.traceId));
    // Binomial(200, 0.25): mean 50, sd 6.1; these bounds are more than 4 sd away.
    expect(sampled.size).toBeGreaterThan(24);
    expect(sampled.size).toBeLessThan(76);
    const exported = await receiver.waitFor((spans) => {
      const servers = spans.filter((s) => s.kind === SERVER && s.parentSpanId === undefined);
      return servers.length >= sampled.size ? servers : undefined;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(new Set(receiver.spans.filter((s) => s.kind === SERVER && s.parentSpanId === undefined).map((s) => s.traceId))).toEqual(sampled);
    expect(exported.length).toBe(sampled.size);
  });

  it("follows the caller's sampled flag (parent-based): 01 is recorded, 00 is not, and 00 goes on to Vertex AI", async () => {
    const yes = hex(32);
    const no = hex(32);
    const before = world.vertex.requests.length;
    expect((await world.call(PREDICT_PATH, { body: '{}', headers: { traceparent: `00-${yes}-${hex(16)}-01` } })).status).toBe(200);
    expect((await world.call(PREDICT_PATH, { body: '{}', headers: { traceparent: `00-${no}-${hex(16)}-00` } })).status).toBe(200);
    const sent = world.vertex.requests.slice(before).map((r) => traceparentOf(r.headers)!);
    expect(sent.map((s) => [s.traceId, s.flags])).toEqual([
      [yes, '01'],
      [no, '00'],
    ]);
    await receiver.waitFor((spans) => spans.find((s) => s.traceId === yes && s.kind === SERVER));
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.spans.filter((s) => s.traceId === no)).toEqual([]);
  });
});

describe('tracing off (the default)', () => {
  let world: World;
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => {
    await world?.close();
  });

  it("passes the caller's traceparent to Vertex AI unchanged, records the caller's span id, and serves no exemplars", async () => {
    const traceparent = `00-${hex(32)}-${hex(16)}-01`;
    const before = world.vertex.requests.length;
    expect((await world.call(PREDICT_PATH, { body: '{}', headers: { traceparent } })).status).toBe(200);
    expect(world.vertex.requests.slice(before).at(-1)!.headers.traceparent).toBe(traceparent);
    const audit = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.traceId === traceparent.split('-')[1]);
    expect(audit.kubeVertexProxy.spanId).toBe(traceparent.split('-')[2]);
    const text = await (await fetch(`${world.proxy.adminUrl}/metrics`, { headers: { accept: 'application/openmetrics-text' } })).text();
    expect(text).toContain('kube_vertex_proxy_request_duration_seconds_bucket');
    expect(text).not.toContain('trace_id=');
    expect(world.proxy.stdoutText()).not.toContain('OpenTelemetry tracing on');
  });
});

describe('collector unreachable', () => {
  let world: World;
  beforeAll(async () => {
    const closed = await startOtlpReceiver();
    const url = closed.url;
    await closed.close();
    world = await startWorld({
      env: FAST_EXPORT,
      config: (defaults) => ({ ...defaults, tracing: { enabled: true, endpoint: url, sampleRatio: 1 } }),
    });
  });
  afterAll(async () => {
    await world?.close();
  });

  it('serves requests as usual and says once in the log that spans are being dropped', async () => {
    for (let i = 0; i < 5; i++) expect((await world.call(PREDICT_PATH, { body: '{}' })).status).toBe(200);
    await until(
      () => world.proxy.lines.some((l) => l.message === 'trace export failed; spans are dropped until the collector answers') || undefined,
      'the export failure log line',
    );
    for (let i = 0; i < 5; i++) expect((await world.call(PREDICT_PATH, { body: '{}' })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(
      world.proxy.lines.filter((l) => l.message === 'trace export failed; spans are dropped until the collector answers'),
    ).toHaveLength(1);
  });
});
