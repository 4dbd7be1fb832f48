import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../audit/record.js';
import { newRequestContext } from '../request-context.js';
import { classify } from '../vertex/classify.js';
import {
  serverSpanAttributes,
  serverSpanFailed,
  serverSpanName,
  upstreamSpanEndAttributes,
  upstreamSpanFailed,
  vertexSpanStart,
} from './attributes.js';

const HOST = 'us-central1-aiplatform.googleapis.com';
const ORIGIN = `https://${HOST}`;

describe('vertexSpanStart', () => {
  it('names a generative call by the GenAI conventions, with the publisher model', () => {
    const operation = classify(
      'POST',
      '/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse',
    );
    const { name, attributes } = vertexSpanStart(operation, 'POST', ORIGIN, HOST);
    expect(name).toBe('generate_content gemini-2.0-flash');
    expect(attributes).toMatchObject({
      'gen_ai.system': 'gcp.vertex_ai',
      'gen_ai.provider.name': 'gcp.vertex_ai',
      'gen_ai.operation.name': 'generate_content',
      'gen_ai.request.model': 'gemini-2.0-flash',
      'server.address': HOST,
      'url.scheme': 'https',
      'kvp.operation': 'publisherModels.streamGenerateContent',
    });
  });

  it('knows embeddings, and leaves the model out when the path names an endpoint', () => {
    const embed = vertexSpanStart(
      classify('POST', '/v1/projects/p/locations/us-central1/publishers/google/models/text-embedding-005:embedContent'),
      'POST',
      ORIGIN,
      HOST,
    );
    expect(embed.attributes['gen_ai.operation.name']).toBe('embeddings');
    const tuned = vertexSpanStart(
      classify('POST', '/v1/projects/p/locations/us-central1/endpoints/123:generateContent'),
      'POST',
      ORIGIN,
      HOST,
    );
    expect(tuned.name).toBe('generate_content');
    expect(tuned.attributes['gen_ai.request.model']).toBeUndefined();
  });

  it('adds the usage the response reported (output = candidates + thoughts), and nothing without usage', () => {
    const ctx = newRequestContext();
    ctx.upstreamStatus = 200;
    expect(Object.keys(upstreamSpanEndAttributes(ctx)).filter((k) => k.startsWith('gen_ai.'))).toEqual([]);
    ctx.usage = { tokens: { prompt: 12, candidates: 30, thoughts: 8, total: 50 }, modelVersion: 'gemini-2.5-flash' };
    expect(upstreamSpanEndAttributes(ctx)).toMatchObject({
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 38,
      'gen_ai.response.model': 'gemini-2.5-flash',
    });
  });

  it('gives other calls HTTP client attributes only', () => {
    const { name, attributes } = vertexSpanStart(
      classify('POST', '/v1/projects/p/locations/us-central1/endpoints/1:predict'),
      'POST',
      ORIGIN,
      HOST,
    );
    expect(name).toBe('POST endpoints.predict');
    expect(Object.keys(attributes).filter((k) => k.startsWith('gen_ai.'))).toEqual([]);
  });
});

describe('server span', () => {
  const record = {
    httpMethod: 'POST',
    path: '/v1/x',
    status: 403,
    requestId: 'r',
    direction: 'outbound',
    operation: 'endpoints.predict',
    route: undefined,
    permission: 'aiplatform.endpoints.predict',
    resource: 'projects/p/locations/l/endpoints/1',
    project: 'p',
    location: 'l',
    decision: 'deny',
    ruleId: 'no-intern',
    reason: 'denied-by-rule',
    errorCode: 'ERR_AUTHZ_DENIED',
    namespace: 'ml',
    policyVersion: 'v',
    upstreamError: undefined,
    principal: 'system:serviceaccount:ml:summer-student',
    serviceAccount: 'summer-student',
    tokenId: 'tok-id-7',
  } as unknown as AuditRecord;

  it("carries the decision and the caller's namespace, never the principal or token id", () => {
    const attributes = serverSpanAttributes(record);
    expect(attributes).toMatchObject({
      'kvp.decision': 'deny',
      'kvp.rule': 'no-intern',
      'kvp.principal.namespace': 'ml',
      'http.response.status_code': 403,
    });
    expect(JSON.stringify(attributes)).not.toContain('summer-student');
    expect(JSON.stringify(attributes)).not.toContain('tok-id-7');
    expect(serverSpanName(record)).toBe('POST endpoints.predict');
    expect(serverSpanName({ ...record, operation: undefined, route: '/cb' })).toBe('POST callback:/cb');
  });

  it('is an error for 5xx and broken streams only', () => {
    expect(serverSpanFailed(record)).toBe(false);
    expect(serverSpanFailed({ ...record, status: 503 })).toBe(true);
    expect(serverSpanFailed({ ...record, status: 200, upstreamError: 'socket hang up' })).toBe(true);
  });
});

describe('upstream span end', () => {
  it("records Vertex AI's status and request id, and fails on 5xx, no answer or a broken stream", () => {
    const ctx = newRequestContext();
    ctx.upstreamStatus = 200;
    ctx.upstreamRequestId = 'g-1';
    expect(upstreamSpanEndAttributes(ctx)).toEqual({ 'http.response.status_code': 200, 'kvp.upstream_request_id': 'g-1' });
    expect(upstreamSpanFailed(ctx)).toBeUndefined();
    ctx.upstreamStatus = 500;
    expect(upstreamSpanFailed(ctx)).toBe('http-500');
    ctx.upstreamStreamError = 'boom';
    expect(upstreamSpanFailed(ctx)).toBe('upstream-stream-error');
    expect(upstreamSpanFailed(newRequestContext())).toBe('no-response');
  });
});
