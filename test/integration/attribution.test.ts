/**
 * Attribution in Google's own records: `attribution.requestLabels` adds the
 * caller's namespace and service account as `labels` on generateContent
 * bodies (everything else unchanged; caller-set `kvp-` labels refused), and
 * `attribution.requestReason` sends the proxy's request id as
 * `X-Goog-Request-Reason`, the key of the audit record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCATION, PROJECT, startWorld, type World } from '../helpers/world.js';

const MODEL = `/v1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.5-flash`;
const PREDICT = `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890:predict`;

let world: World;
beforeAll(async () => {
  world = await startWorld({
    vertex: { recordBodies: true },
    config: (defaults) => ({ ...defaults, attribution: { requestLabels: true, requestReason: true } }),
  });
});
afterAll(async () => {
  await world?.close();
});

describe('attribution', () => {
  it(
    'labels generateContent with the caller, leaving everything else in the body as sent; the request reason names the audit ' + 'record',
    async () => {
      const body = {
        contents: [{ role: 'user', parts: [{ text: 'Ünïcode "quotes" and \\\\ backslashes' }] }],
        generationConfig: { temperature: 0.25, topK: 3, stopSequences: ['\n\n'] },
        safetySettings: [{ category: 'HARM_CATEGORY_HATE_SPEECH', threshold: 'BLOCK_ONLY_HIGH' }],
        labels: { team: 'ranking', env: '' },
      };
      world.vertex.reset();
      const response = await world.call(`${MODEL}:streamGenerateContent?alt=sse`, {
        body: JSON.stringify(body),
        token: world.token('ml', 'trainer'),
      });
      expect(response.status).toBe(200);
      await response.text();
      const received = world.vertex.requests.find((r) => r.url.includes(':streamGenerateContent'));
      expect(received).toBeDefined();
      expect(JSON.parse(received!.body!.toString())).toEqual({
        ...body,
        labels: { team: 'ranking', env: '', 'kvp-namespace': 'ml', 'kvp-service-account': 'trainer' },
      });
      expect(Number(received!.headers['content-length'])).toBe(received!.body!.length);
      const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.operation === 'publisherModels.streamGenerateContent');
      expect(received!.headers['x-goog-request-reason']).toBe(entry.kubeVertexProxy.requestId);
    },
  );

  it('refuses a caller-set kvp- label, forwarding nothing', async () => {
    world.vertex.reset();
    const response = await world.call(`${MODEL}:generateContent`, {
      body: JSON.stringify({ contents: [], labels: { 'kvp-namespace': 'finance' } }),
    });
    expect(response.status).toBe(400);
    const error = (await response.json()) as { error: { status: string; message: string } };
    expect(error.error.status).toBe('INVALID_ARGUMENT');
    expect(error.error.message).toContain('reserved');
    expect(world.vertex.requests).toHaveLength(0);
  });

  it("leaves other methods' bodies byte for byte, and a caller's own X-Goog-Request-Reason never goes up", async () => {
    world.vertex.reset();
    const text = '{"instances": [ {"labels": {"kvp-namespace": "x"}} ],\n "parameters": {}}';
    const response = await world.call(PREDICT, { body: text, headers: { 'x-goog-request-reason': 'forged' } });
    expect(response.status).toBe(200);
    const received = world.vertex.requests[0]!;
    expect(received.body?.toString()).toBe(text);
    expect(received.headers['x-goog-request-reason']).not.toBe('forged');
    expect(received.headers['x-goog-request-reason']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
