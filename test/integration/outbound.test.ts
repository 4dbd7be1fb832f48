/**
 * The outbound path end to end: real proxy process, loopback stand-ins.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkedBody, PREDICT_PATH, PROJECT, LOCATION, startWorld, type World } from '../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => {
  await world?.close();
});

const predictBody = JSON.stringify({ instances: [{ feature: 1 }] });

async function googleError(response: Response) {
  expect(response.headers.get('content-type')).toBe('application/json; charset=UTF-8');
  return ((await response.json()) as { error: { code: number; status: string; message: string; details: Array<Record<string, unknown>> } })
    .error;
}

describe('an allowed predict', () => {
  it("reaches Vertex AI with the proxy's own token and returns the answer", async () => {
    const token = world.token();
    const before = world.vertex.requests.length;
    const response = await world.call(PREDICT_PATH, {
      token,
      body: predictBody,
      headers: {
        cookie: 'session=abc',
        'x-forwarded-for': '6.6.6.6',
        'x-kvp-caller-email': 'admin@example.com',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        'x-cloud-trace-context': '4bf92f3577b34da6a3ce929d0e0e4736/1;o=1',
      },
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { predictions: unknown[]; deployedModelId: string };
    expect(body.predictions.length).toBeGreaterThan(0);
    expect(typeof body.deployedModelId).toBe('string');

    const seen = world.vertex.requests.slice(before);
    expect(seen).toHaveLength(1);
    const upstream = seen[0]!;
    expect(upstream.url).toBe(PREDICT_PATH);
    expect(world.metadata.issuedTokens).toContain((upstream.headers.authorization as string).replace(/^Bearer /, ''));
    expect(JSON.stringify(upstream.headers)).not.toContain(token);
    expect(upstream.headers.cookie).toBeUndefined();
    expect(upstream.headers['x-forwarded-for']).toBeUndefined();
    expect(upstream.headers['x-kvp-caller-email']).toBeUndefined();
    expect(upstream.headers.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(upstream.headers['x-cloud-trace-context']).toBe('4bf92f3577b34da6a3ce929d0e0e4736/1;o=1');
    expect(upstream.bodyBytes).toBe(Buffer.byteLength(predictBody));
  });

  it('writes one audit line in Cloud Logging format naming the rule, without the token', async () => {
    const token = world.token('ml', 'scorer');
    const response = await world.call(PREDICT_PATH, {
      token,
      body: predictBody,
      headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
    expect(response.status).toBe(200);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:ml:scorer');
    expect(entry).toMatchObject({
      severity: 'INFO',
      'logging.googleapis.com/trace': `projects/${PROJECT}/traces/0af7651916cd43dd8448eb211c80319c`,
      httpRequest: { requestMethod: 'POST', status: 200 },
      'logging.googleapis.com/labels': { 'kube-vertex-proxy/decision': 'allow', 'kube-vertex-proxy/namespace': 'ml' },
      kubeVertexProxy: {
        decision: 'allow',
        ruleId: 'ml-predict',
        reason: 'allowed-by-rule',
        operation: 'endpoints.predict',
        permission: 'aiplatform.endpoints.predict',
        resource: `projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`,
        namespace: 'ml',
        status: 200,
        upstreamStatus: 200,
      },
    });
    // The compact line (the default): no AuditLog-shaped copy of the same facts.
    expect(entry).not.toHaveProperty('authenticationInfo');
    expect(entry).not.toHaveProperty('message');
    // Left to the durable store by the compact line (audit.test.ts reads it there).
    expect(entry.kubeVertexProxy.policyVersion).toBeUndefined();
    expect(world.proxy.stdoutText()).not.toContain(token);
    expect(world.proxy.stdoutText()).not.toContain(token.split('.')[2]!);
  });

  it("passes the Google client's $alt=json;enum-encoding=int query on verbatim", async () => {
    const before = world.vertex.requests.length;
    const path = `${PREDICT_PATH}?$alt=json;enum-encoding=int`;
    expect((await world.call(path, { body: predictBody })).status).toBe(200);
    expect(world.vertex.requests.slice(before)[0]!.url).toBe(path);
  });
});

describe('a denied predict', () => {
  it('gets PERMISSION_DENIED naming identity, permission, resource and reason; nothing is forwarded', async () => {
    const before = world.vertex.requests.length;
    const response = await world.call(PREDICT_PATH, { token: world.token('web', 'frontend'), body: predictBody });
    expect(response.status).toBe(403);
    const error = await googleError(response);
    expect(error.status).toBe('PERMISSION_DENIED');
    expect(error.message).toContain("'aiplatform.endpoints.predict'");
    expect(error.message).toContain(`projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`);
    expect(error.message).toContain('system:serviceaccount:web:frontend');
    expect(error.message).toContain('no policy rule allows it');
    expect(error.details[0]).toMatchObject({ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'AUTHZ_DENIED' });
    expect(world.vertex.requests.length).toBe(before);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:web:frontend');
    expect(entry.kubeVertexProxy).toMatchObject({ decision: 'deny', reason: 'no-matching-rule', status: 403 });
    expect(entry.severity).toBe('NOTICE');
  });

  it('an explicit deny wins over an allow and names its rule', async () => {
    const response = await world.call(PREDICT_PATH, { token: world.token('ml', 'intern'), body: predictBody });
    expect(response.status).toBe(403);
    expect((await googleError(response)).message).toContain('denied by policy rule "no-intern"');
  });

  it('a permission outside the grant is denied (training is not granted to ml)', async () => {
    const response = await world.call(`/v1/projects/${PROJECT}/locations/${LOCATION}/customJobs`, {
      body: JSON.stringify({ displayName: 'x' }),
    });
    expect(response.status).toBe(403);
  });
});

describe('requests refused before policy', () => {
  it.each([
    ['an unknown verb', 'POST', `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/1:predictt`, 404, 'NOT_FOUND'],
    ['an unknown collection', 'GET', `/v1/projects/${PROJECT}/locations/${LOCATION}/secrets/x`, 404, 'NOT_FOUND'],
    ['a GET on :predict', 'GET', PREDICT_PATH, 405, 'INVALID_ARGUMENT'],
    ['an encoded slash', 'POST', `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/1%2F..%2F2:predict`, 400, 'INVALID_ARGUMENT'],
    ['a dot segment', 'POST', `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/../endpoints/1:predict`, 400, 'INVALID_ARGUMENT'],
    ['an empty segment', 'POST', `/v1/projects/${PROJECT}/locations/${LOCATION}//endpoints/1:predict`, 400, 'INVALID_ARGUMENT'],
    ['an API key in the query', 'POST', `${PREDICT_PATH}?key=AIzaSy-other`, 400, 'INVALID_ARGUMENT'],
    ['an access token in the query', 'POST', `${PREDICT_PATH}?access_token=ya29.other`, 400, 'INVALID_ARGUMENT'],
    ['a location not served', 'POST', `/v1/projects/${PROJECT}/locations/asia-east1/endpoints/1:predict`, 400, 'INVALID_ARGUMENT'],
    ['a project not served', 'POST', `/v1/projects/someone-else/locations/${LOCATION}/endpoints/1:predict`, 403, 'PERMISSION_DENIED'],
    ['the location-less form', 'POST', '/v1/publishers/google/models/gemini-2.5-flash:generateContent', 400, 'INVALID_ARGUMENT'],
    ['a non-Vertex path', 'GET', '/admin', 404, 'NOT_FOUND'],
  ])('%s (%s %s) → %i %s, nothing forwarded', async (_title, method, path, status, googleStatus) => {
    const before = world.vertex.requests.length;
    const response = await world.raw(method, path, method === 'POST' ? { body: predictBody } : {});
    expect(response.status).toBe(status);
    expect(response.headers['content-type']).toBe('application/json; charset=UTF-8');
    expect((JSON.parse(response.body) as { error: { status: string } }).error.status).toBe(googleStatus);
    expect(world.vertex.requests.length).toBe(before);
  });

  it('a 405 names the allowed method', async () => {
    const response = await world.call(PREDICT_PATH, { method: 'GET' });
    expect(response.headers.get('allow')).toBe('POST');
  });

  it.each(['x-goog-user-project', 'x-goog-api-key'])('refuses the %s header', async (header) => {
    const response = await world.call(PREDICT_PATH, { body: predictBody, headers: { [header]: 'x' } });
    expect(response.status).toBe(400);
  });

  it('refuses a body over the limit with 413 (Content-Length)', async () => {
    const before = world.vertex.requests.length;
    const response = await world.call(PREDICT_PATH, { body: 'x'.repeat(1024 * 1024 + 1) });
    expect(response.status).toBe(413);
    expect(world.vertex.requests.length).toBe(before);
  });

  it('refuses a chunked body that grows over the limit with 413', async () => {
    const body = chunkedBody(Array.from({ length: 6 }, () => new Uint8Array(256 * 1024)));
    const response = await world.call(PREDICT_PATH, { method: 'POST', body, duplex: 'half' });
    expect(response.status).toBe(413);
  });
});

describe('request bodies', () => {
  // Small bodies are read whole before forwarding, larger and chunked ones
  // stream (src/forward/plugin.ts BUFFERED_BODY_MAX_BYTES = 64 KiB): both must arrive byte for byte.
  it.each([
    ['a small body (read whole, sent as one buffer)', 10],
    ['a body just under the buffered size', 1_100],
    ['a body over the buffered size (streamed)', 12_000],
  ])('%s arrives intact', async (_label, count) => {
    const instances = Array.from({ length: count }, (_, i) => ({ feature: i, text: `instance-${i}` }));
    const body = JSON.stringify({ instances });
    const response = await world.call(PREDICT_PATH, { body });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { predictions: unknown[] }).predictions).toEqual(instances);
    expect(world.vertex.requests.at(-1)?.bodyBytes).toBe(Buffer.byteLength(body));
  });

  it('a chunked body (no Content-Length) streams and arrives intact', async () => {
    const instances = Array.from({ length: 500 }, (_, i) => ({ feature: i }));
    const bytes = new TextEncoder().encode(JSON.stringify({ instances }));
    const body = chunkedBody(Array.from({ length: Math.ceil(bytes.length / 1000) }, (_, i) => bytes.subarray(i * 1000, i * 1000 + 1000)));
    const response = await world.call(PREDICT_PATH, { method: 'POST', body, duplex: 'half' });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { predictions: unknown[] }).predictions).toEqual(instances);
  });

  it.each([['text/plain'], ['application/octet-stream'], ['application/x-www-form-urlencoded']])(
    'a rawPredict body sent as %s arrives byte for byte (no content type is parsed on the way)',
    async (contentType) => {
      const body = 'a=1&b=two words\n\u00e9';
      const response = await world.call(PREDICT_PATH.replace(':predict', ':rawPredict'), {
        body,
        headers: { 'content-type': contentType },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe(contentType);
      expect(await response.text()).toBe(body);
      expect(world.vertex.requests.at(-1)?.bodyBytes).toBe(Buffer.byteLength(body));
    },
  );

  it(
    'a body that stops short of its Content-Length (the caller went away) is not forwarded; the record says 499 ' + 'client-aborted',
    async () => {
      const before = world.vertex.requests.length;
      const token = world.token('ml', 'short-body');
      const socket = connect(world.proxy.dataPort, '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(
        `POST ${PREDICT_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: ` +
          `application/json\r\nContent-Length: 1000\r\n\r\n{"instances":[`,
      );
      // The caller goes away with 985 bytes still owed.
      await new Promise((r) => setTimeout(r, 100));
      socket.destroy();
      const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:ml:short-body');
      // Nothing was answered: 499 (CANCELLED), not node's default 200.
      expect(entry.kubeVertexProxy).toMatchObject({ decision: 'allow', status: 499, reason: 'client-aborted', requestBytes: 1000 });
      expect(entry.kubeVertexProxy['upstreamStatus']).toBeUndefined();
      expect(world.vertex.requests.length).toBe(before);
    },
  );
});

describe('the generative path', () => {
  it('generateContent on a publisher model is allowed by the generate group', async () => {
    const response = await world.call(
      `/v1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.5-flash:generateContent`,
      {
        body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
      },
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { candidates: unknown[]; usageMetadata: { totalTokenCount: number } };
    expect(body.candidates.length).toBeGreaterThan(0);
    expect(body.usageMetadata.totalTokenCount).toBeGreaterThan(0);
  });
});
