/**
 * The Vertex AI stand-in on the wire: streaming framing and timing, raw
 * prediction headers, the error envelope, request recording and fault
 * injection, the behaviours proxy tests lean on.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startVertexStandIn, type VertexStandIn } from '../../dev/standins/vertex.js';

const BASE = '/v1/projects/demo-project/locations/us-central1';
const MODEL = `${BASE}/publishers/google/models/gemini-2.5-flash`;
const AUTH = { authorization: 'Bearer ya29.wire-test' };
const GENERATE_BODY = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hello there' }] }] });

/** Reads a response body chunk by chunk, stamping each chunk's arrival. */
async function timedBody(response: Response): Promise<{ chunks: Array<{ at: number; text: string }>; text: string }> {
  const chunks: Array<{ at: number; text: string }> = [];
  const decoder = new TextDecoder();
  for await (const chunk of response.body as AsyncIterable<Uint8Array>)
    chunks.push({ at: performance.now(), text: decoder.decode(chunk, { stream: true }) });
  return { chunks, text: chunks.map((c) => c.text).join('') };
}

describe('Vertex AI stand-in on the wire', () => {
  let vertex: VertexStandIn;
  beforeAll(async () => {
    vertex = await startVertexStandIn();
  });
  afterAll(() => vertex.close());
  beforeEach(() => {
    vertex.reset();
    vertex.streamChunks = 3;
    vertex.streamDelayMs = 0;
    vertex.delayResponseMs = 0;
    vertex.requireAuthorization = undefined;
  });
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${vertex.url}${path}`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json', ...headers }, body });

  it('streams SSE events one by one, each flushed as it is produced', async () => {
    vertex.streamChunks = 4;
    vertex.streamDelayMs = 50;
    const started = performance.now();
    const response = await post(`${MODEL}:streamGenerateContent?alt=sse`, GENERATE_BODY);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const { chunks, text } = await timedBody(response);

    expect(text).toMatch(/^(data: \{[^\r\n]*\}\r\n\r\n){4}$/);
    const events = text
      .split('\r\n\r\n')
      .filter((e) => e !== '')
      .map((e) => JSON.parse(e.slice('data: '.length)) as Record<string, unknown>);
    expect(events).toHaveLength(4);
    expect(new Set(events.map((e) => e['responseId'])).size).toBe(1);
    expect(events[3]).toHaveProperty('usageMetadata');
    expect(events[0]).not.toHaveProperty('usageMetadata');

    // Arrival time of each event (the chunk that completed it). Buffered delivery
    // would bring all four together after ~150 ms; flushed, they are spread over it.
    const arrivals = chunks.flatMap((c) => Array.from(c.text.matchAll(/\r\n\r\n/g), () => c.at - started));
    expect(arrivals).toHaveLength(4);
    expect(new Set(arrivals).size).toBeGreaterThanOrEqual(3);
    expect(arrivals[3]! - arrivals[0]!).toBeGreaterThanOrEqual(100);
  });

  it('sends exactly streamChunks messages, whose texts concatenate to the whole answer', async () => {
    for (const count of [1, 5, 11, 20]) {
      vertex.streamChunks = count;
      const text = await (await post(`${MODEL}:streamGenerateContent?alt=sse`, GENERATE_BODY)).text();
      const events = text
        .split('\r\n\r\n')
        .filter((e) => e !== '')
        .map((e) => JSON.parse(e.slice('data: '.length)) as { candidates: Array<{ content: { parts: Array<{ text: string }> } }> });
      expect(events, `streamChunks ${count}`).toHaveLength(count);
      expect(events.map((e) => e.candidates[0]!.content.parts[0]!.text).join('')).toBe(
        'This answer comes from the Vertex AI stand-in running on loopback.',
      );
    }
  });

  it('streams a JSON array without alt=sse: first byte "[", elements as they come', async () => {
    vertex.streamDelayMs = 30;
    const response = await post(`${MODEL}:streamGenerateContent`, GENERATE_BODY);
    expect(response.headers.get('content-type')).toBe('application/json; charset=UTF-8');
    const { chunks, text } = await timedBody(response);
    expect(text.startsWith('[{')).toBe(true);
    expect(text.endsWith(']')).toBe(true);
    expect((JSON.parse(text) as unknown[]).length).toBe(3);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
  });

  it('answers unary methods in their real shapes, pretty-printed unless $prettyPrint=0', async () => {
    const pretty = await post(`${MODEL}:generateContent`, GENERATE_BODY);
    expect(pretty.headers.get('content-type')).toBe('application/json; charset=UTF-8');
    const prettyText = await pretty.text();
    expect(prettyText).toMatch(/^\{\n {2}"candidates": \[/);
    const compact = await post(`${MODEL}:generateContent?$alt=json%3Benum-encoding=int&$prettyPrint=0`, GENERATE_BODY);
    const body = (await compact.json()) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['candidates', 'usageMetadata', 'modelVersion', 'createTime', 'responseId']);
    expect(body['createTime']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    const embed = (await (
      await post(
        `${MODEL.replace('gemini-2.5-flash', 'gemini-embedding-001')}:embedContent`,
        JSON.stringify({ content: { parts: [{ text: 'a b' }] }, outputDimensionality: 8 }),
      )
    ).json()) as Record<string, unknown>;
    expect(embed).toMatchObject({ embedding: { values: expect.any(Array) }, usageMetadata: { promptTokenCount: 2 }, truncated: false });
    expect((embed['embedding'] as { values: number[] }).values).toHaveLength(8);

    const explain = (await (await post(`${BASE}/endpoints/42:explain`, JSON.stringify({ instances: [{ x: 1 }] }))).json()) as Record<
      string,
      unknown
    >;
    expect(Object.keys(explain)).toEqual(['explanations', 'deployedModelId', 'predictions']);

    const computed = (await (
      await post(
        `/v1/publishers/google/models/gemini-2.5-flash:computeTokens`,
        JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'x y' }] }] }),
      )
    ).json()) as {
      tokensInfo: Array<{ tokenIds: unknown[] }>;
    };
    expect(computed.tokensInfo[0]!.tokenIds.every((id) => typeof id === 'string')).toBe(true);

    const streamingPredict = await post(
      `${BASE}/endpoints/42:serverStreamingPredict?alt=sse`,
      JSON.stringify({ inputs: [{ stringVal: ['x'] }] }),
    );
    expect(await streamingPredict.text()).toMatch(/^data: \{"outputs":\[/);
  });

  it('echoes rawPredict with the endpoint and deployed-model headers; streamRawPredict streams the bytes', async () => {
    const raw = await post(`${BASE}/endpoints/42:rawPredict`, 'any bytes at all', { 'content-type': 'text/plain' });
    expect(raw.headers.get('x-vertex-ai-endpoint-id')).toBe('42');
    expect(raw.headers.get('x-vertex-ai-deployed-model-id')).toMatch(/^\d{19}$/);
    expect(raw.headers.get('content-type')).toBe('text/plain');
    expect(await raw.text()).toBe('any bytes at all');

    vertex.streamDelayMs = 20;
    const streamed = await post(`${BASE}/endpoints/42:streamRawPredict`, 'abcdefghi', { 'content-type': 'application/octet-stream' });
    const { chunks, text } = await timedBody(streamed);
    expect(text).toBe('abcdefghi');
    expect(chunks.length).toBe(3);
  });

  it('requires a bearer token and answers the real 401, naming the RPC', async () => {
    const missing = await fetch(`${vertex.url}/v1beta1/projects/p/locations/l/endpoints/1:countTokens`, { method: 'POST', body: '{}' });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('content-type')).toBe('application/json; charset=UTF-8');
    expect(await missing.json()).toEqual({
      error: {
        code: 401,
        message:
          'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid ' +
          'authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
        status: 'UNAUTHENTICATED',
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'ACCESS_TOKEN_TYPE_UNSUPPORTED',
            metadata: { method: 'google.cloud.aiplatform.v1beta1.PredictionService.CountTokens', service: 'aiplatform.googleapis.com' },
          },
        ],
      },
    });
    vertex.requireAuthorization = (header) => header === AUTH.authorization;
    expect((await post(`${MODEL}:countTokens`, GENERATE_BODY)).status).toBe(200);
    expect((await post(`${MODEL}:countTokens`, GENERATE_BODY, { authorization: 'Bearer other' })).status).toBe(401);
  });

  it('with acceptMissingAuthorization answers a request without the header, and still checks one that is present', async () => {
    const open = await startVertexStandIn({ acceptMissingAuthorization: true, requireAuthorization: (h) => h === 'Bearer good' });
    try {
      const url = `${open.url}/v1beta1/projects/p/locations/l/endpoints/1:countTokens`;
      expect((await fetch(url, { method: 'POST', body: GENERATE_BODY })).status).toBe(200);
      expect((await fetch(url, { method: 'POST', body: GENERATE_BODY, headers: { authorization: 'Bearer bad' } })).status).toBe(401);
      expect((await fetch(url, { method: 'POST', body: GENERATE_BODY, headers: { authorization: 'Basic x' } })).status).toBe(401);
    } finally {
      await open.close();
    }
  });

  it('answers unknown paths and wrong methods with the NOT_FOUND envelope', async () => {
    for (const [method, path] of [
      ['POST', `${BASE}/endpoints/1:fooBar`],
      ['GET', `${BASE}/endpoints/1:predict`],
      ['POST', `/v1/endpoints/1:predict`],
      ['GET', `/v2/projects/p/locations/l/endpoints/1`],
      ['GET', `/ui/projects/p/locations/l/endpoints/1`],
    ] as const) {
      const response = await fetch(`${vertex.url}${path}`, { method, headers: AUTH, ...(method === 'POST' && { body: '{}' }) });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(await response.json()).toEqual({ error: { code: 404, message: 'Requested entity was not found.', status: 'NOT_FOUND' } });
    }
  });

  it('records requests as received and injects failures N times', async () => {
    vertex.failNext(503, 2);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await post(`${BASE}/endpoints/1:predict`, '{"instances":[1]}', { 'X-Custom-Case': 'Kept' })).status);
    expect(statuses).toEqual([503, 503, 200]);
    expect(vertex.requests).toHaveLength(3);
    const [first] = vertex.requests;
    expect(first).toMatchObject({ method: 'POST', url: `${BASE}/endpoints/1:predict`, bodyBytes: 17 });
    expect(first!.headers['x-custom-case']).toBe('Kept');
    expect(first!.rawHeaders).toContain('X-Custom-Case');

    vertex.failNext(400, 1, { status: 'FAILED_PRECONDITION', message: 'nope' });
    const failed = await post(`${BASE}/endpoints/1:predict`, '{}');
    expect(await failed.json()).toEqual({ error: { code: 400, message: 'nope', status: 'FAILED_PRECONDITION' } });
  });

  it('delays headers by delayResponseMs', async () => {
    vertex.delayResponseMs = 150;
    const started = performance.now();
    const response = await post(`${BASE}/endpoints/1:predict`, '{}');
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(response.status).toBe(200);
  });

  it('hangs the next request until close, and close destroys it and open streams', async () => {
    const standIn = await startVertexStandIn({ streamChunks: 100, streamDelayMs: 50 });
    standIn.hangNext();
    const hung = new Promise<string>((resolve) => {
      const req = httpRequest(`${standIn.url}${BASE}/endpoints/1:predict`, { method: 'POST', headers: AUTH }, () => resolve('answered'));
      req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      req.end('{}');
    });
    const stream = await fetch(`${standIn.url}${MODEL}:streamGenerateContent?alt=sse`, {
      method: 'POST',
      headers: AUTH,
      body: GENERATE_BODY,
    });
    const reader = stream.body!.getReader();
    await reader.read();
    await new Promise((r) => setTimeout(r, 50));
    expect(standIn.requests).toHaveLength(2);

    const started = performance.now();
    await standIn.close();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await hung).toBe('ECONNRESET');
    await expect(
      (async () => {
        for (;;) if ((await reader.read()).done) return 'ended';
      })(),
    ).rejects.toThrow();
  });

  it('serves jobs, endpoints and operations (also under /ui/)', async () => {
    const created = (await (await post(`${BASE}/customJobs`, JSON.stringify({ displayName: 'j', jobSpec: {} }))).json()) as Record<
      string,
      string
    >;
    expect(created).toMatchObject({ displayName: 'j', state: 'JOB_STATE_PENDING' });
    const get = (path: string) => fetch(`${vertex.url}${path}`, { headers: AUTH });
    expect((await get(`/v1/${created['name']!}`)).status).toBe(200);
    expect(await (await get(`${BASE.replace('us-central1', 'europe-west4')}/customJobs`)).json()).toEqual({});

    const operation = vertex.addOperation('projects/123456789012/locations/us-central1/endpoints/9/operations/77', { done: false });
    expect(await (await get(`${BASE}/endpoints/9/operations/77`)).json()).toEqual(operation);
    expect((await get(`/ui/projects/123456789012/locations/us-central1/endpoints/9/operations/77`)).status).toBe(200);
    expect((await get(`${BASE}/operations/78`)).status).toBe(404);
    const endpoint = (await (await get(`${BASE}/endpoints/9`)).json()) as Record<string, unknown>;
    expect(endpoint['name']).toBe(`projects/${vertex.projectNumber}/locations/us-central1/endpoints/9`);
  });
});
