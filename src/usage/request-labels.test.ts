import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { inspectBody } from '../inspect/inspect.js';
import { createRequestLabelsRule, labelValue } from './request-labels.js';

function request(operationId: string, serviceAccount = 'trainer', namespace = 'ml'): FastifyRequest {
  return {
    kvp: {
      operation: { spec: { id: operationId } },
      principal: { kind: 'kubernetes', namespace, serviceAccount, subject: `system:serviceaccount:${namespace}:${serviceAccount}` },
    },
  } as unknown as FastifyRequest;
}

const rule = createRequestLabelsRule();
const run = (req: FastifyRequest, body: unknown) => inspectBody(req, Buffer.from(JSON.stringify(body)), 'application/json', [rule]);

describe('request labels', () => {
  it('wants generateContent and streamGenerateContent only', () => {
    expect(rule.wants(request('publisherModels.generateContent'))).toBe(true);
    expect(rule.wants(request('endpoints.streamGenerateContent'))).toBe(true);
    expect(rule.wants(request('publisherModels.countTokens'))).toBe(false);
    expect(rule.wants(request('endpoints.predict'))).toBe(false);
  });

  it("adds kvp-namespace and kvp-service-account, keeps the caller's labels and every other field as sent", () => {
    const body = {
      contents: [{ role: 'user', parts: [{ text: 'hi "there" \\u00e9' }] }],
      generationConfig: { temperature: 0.2, maxOutputTokens: 12 },
      labels: { team: 'ml', cost_center: '42' },
    };
    const result = run(request('publisherModels.generateContent'), body);
    expect('forward' in result && result.rewritten).toBe(true);
    const sent = JSON.parse((result as { forward: Buffer }).forward.toString()) as Record<string, unknown>;
    expect(sent).toEqual({ ...body, labels: { team: 'ml', cost_center: '42', 'kvp-namespace': 'ml', 'kvp-service-account': 'trainer' } });
  });

  it('adds labels to a body without any', () => {
    const result = run(request('publisherModels.streamGenerateContent', 'etl.bot'), { contents: [] });
    expect(JSON.parse((result as { forward: Buffer }).forward.toString())).toEqual({
      contents: [],
      labels: { 'kvp-namespace': 'ml', 'kvp-service-account': 'etl_bot' },
    });
  });

  it('refuses a caller-set kvp- label, labels that are not a map, and too many labels', () => {
    const refused = run(request('publisherModels.generateContent'), { contents: [], labels: { 'kvp-namespace': 'finance' } });
    expect('refuse' in refused && refused.refuse.code).toBe('ERR_REQUEST_RESERVED_LABEL');
    expect('refuse' in refused && refused.refuse.httpStatus).toBe(400);
    const notMap = run(request('publisherModels.generateContent'), { contents: [], labels: ['a'] });
    expect('refuse' in notMap && notMap.refuse.code).toBe('ERR_REQUEST_BODY_INVALID');
    const many = Object.fromEntries(Array.from({ length: 63 }, (_, i) => [`l${i}`, 'x']));
    const tooMany = run(request('publisherModels.generateContent'), { contents: [], labels: many });
    expect('refuse' in tooMany && tooMany.refuse.message).toContain('At most 62 labels');
  });

  it("makes label values of Kubernetes names within Google's rules, long names shortened deterministically", () => {
    expect(labelValue('Trainer.v2')).toBe('trainer_v2');
    const long = `a${'b'.repeat(100)}.c`;
    const value = labelValue(long);
    expect(value).toHaveLength(63);
    expect(value).toMatch(/^[a-z0-9_-]+$/);
    expect(labelValue(long)).toBe(value);
    expect(labelValue(`${long}d`)).not.toBe(value);
  });
});
