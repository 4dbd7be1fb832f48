/**
 * Token usage read from Vertex AI responses as they pass: generateContent
 * (JSON), streamGenerateContent (SSE and the streamed JSON array) and
 * OpenAI-compatible chat completions (with and without streaming), into the
 * audit record and the usage metrics — and the caller still gets every byte,
 * streams event by event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/record.js';
import { DEFAULT_RULES, LOCATION, PROJECT, startWorld, type World } from '../helpers/world.js';

const MODEL = `/v1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.5-flash`;
const CHAT = `/v1beta1/projects/${PROJECT}/locations/${LOCATION}/endpoints/openapi/chat/completions`;
const PROMPT = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'one two three four' }] }] });
/** The stand-in counts a token per word: its default answer has 11, the prompt above 4, and it reports 5 thinking tokens. */

let world: World;
beforeAll(async () => {
  world = await startWorld({
    config: (defaults) => ({
      ...defaults,
      policy: { rules: [...DEFAULT_RULES, { id: 'ml-embed', effect: 'allow', subjects: { namespaces: ['ml'] }, permissions: ['embed'] }] },
      usage: { metricLabels: ['namespace'] },
    }),
  });
  world.vertex.thoughtsTokens = 5;
});
afterAll(async () => {
  await world?.close();
});

async function callAndAudit(path: string, body: string): Promise<{ response: Response; text: string; record: AuditRecord }> {
  const before = world.proxy.audit().length;
  const response = await world.call(path, { body });
  const text = await response.text();
  const entry = await world.proxy.waitForAudit(
    (e) => world.proxy.audit().indexOf(e) >= before && e.kubeVertexProxy.path === path.split('?')[0],
  );
  return { response, text, record: entry.kubeVertexProxy };
}

const EXPECTED = { prompt: 4, candidates: 11, thoughts: 5, total: 20 };

describe('usage from Gemini responses', () => {
  beforeAll(() => {
    (world.vertex as { streamChunks: number }).streamChunks = 3;
  });

  it('generateContent (JSON): model and token counts in the audit record, body untouched', async () => {
    const { response, text, record } = await callAndAudit(`${MODEL}:generateContent`, PROMPT);
    expect(response.status).toBe(200);
    const answer = JSON.parse(text) as { usageMetadata: Record<string, number> };
    expect(answer.usageMetadata.totalTokenCount).toBe(20);
    expect(record.model).toBe('google/gemini-2.5-flash');
    expect(record.modelVersion).toBe('gemini-2.5-flash');
    expect(record.tokens).toEqual(EXPECTED);
    expect(record.usageReported).toBe(true);
  });

  it('streamGenerateContent?alt=sse: counted, and the events still reach the caller one by one', async () => {
    world.vertex.streamDelayMs = 400;
    const path = `${MODEL}:streamGenerateContent?alt=sse`;
    const before = world.proxy.audit().length;
    const response = await world.call(path, { body: PROMPT });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    const firstText = new TextDecoder().decode(first.value);
    // The first event arrived on its own: the stand-in had not sent the last one (with usage) yet.
    expect(firstText.startsWith('data: ')).toBe(true);
    expect(firstText).not.toContain('usageMetadata');
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    world.vertex.streamDelayMs = 0;
    const events = (firstText + rest).split('\r\n\r\n').filter((e) => e !== '');
    expect(events).toHaveLength(3);
    const entry = await world.proxy.waitForAudit(
      (e) => world.proxy.audit().indexOf(e) >= before && e.kubeVertexProxy.operation === 'publisherModels.streamGenerateContent',
    );
    expect(entry.kubeVertexProxy.tokens).toEqual(EXPECTED);
    expect(entry.kubeVertexProxy.model).toBe('google/gemini-2.5-flash');
  });

  it('streamGenerateContent without alt=sse (the streamed JSON array)', async () => {
    const { text, record } = await callAndAudit(`${MODEL}:streamGenerateContent`, PROMPT);
    expect((JSON.parse(text) as unknown[]).length).toBe(3);
    expect(record.operation).toBe('publisherModels.streamGenerateContent');
    expect(record.tokens).toEqual(EXPECTED);
  });

  it('embedContent: usageMetadata of an embedding answer', async () => {
    const { record } = await callAndAudit(
      `/v1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-embedding-001:embedContent`,
      JSON.stringify({ content: { parts: [{ text: 'one two three' }] } }),
    );
    expect(record.model).toBe('google/gemini-embedding-001');
    expect(record.tokens).toEqual({ prompt: 3, total: 3 });
  });

  it('a call that fails upstream records no usage; the model request is still counted by code', async () => {
    world.vertex.failNext(429);
    const { response, record } = await callAndAudit(`${MODEL}:generateContent`, PROMPT);
    expect(response.status).toBe(429);
    expect(record.tokens).toBeUndefined();
    expect(record.model).toBe('google/gemini-2.5-flash');
  });
});

describe('usage from OpenAI-compatible chat completions', () => {
  const chat = (extra: Record<string, unknown>) =>
    JSON.stringify({ model: 'google/gemini-2.5-flash', messages: [{ role: 'user', content: 'one two three' }], ...extra });

  it('without streaming', async () => {
    const { response, text, record } = await callAndAudit(CHAT, chat({}));
    expect(response.status).toBe(200);
    expect((JSON.parse(text) as { usage: unknown }).usage).toEqual({ prompt_tokens: 3, completion_tokens: 11, total_tokens: 14 });
    expect(record.operation).toBe('endpoints.chatCompletions');
    expect(record.model).toBe('google/gemini-2.5-flash');
    expect(record.tokens).toEqual({ prompt: 3, candidates: 11, total: 14 });
  });

  it('streamed with stream_options.include_usage', async () => {
    const { text, record } = await callAndAudit(CHAT, chat({ stream: true, stream_options: { include_usage: true } }));
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(record.tokens).toEqual({ prompt: 3, candidates: 11, total: 14 });
    expect(record.usageReported).toBe(true);
  });

  it('streamed without include_usage: the record says no usage was reported', async () => {
    const { record } = await callAndAudit(CHAT, chat({ stream: true }));
    expect(record.tokens).toBeUndefined();
    expect(record.usageReported).toBe(false);
  });
});

describe('usage metrics', () => {
  it('count tokens by model and type, and model requests by code, with the configured identity label', async () => {
    const metrics = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
    const value = (line: string) =>
      Number(
        metrics
          .split('\n')
          .find((l) => l.startsWith(line))
          ?.split(' ')
          .pop(),
      );
    // JSON + SSE + array: three Gemini answers of 20 tokens each; two chat completions of 14.
    expect(value('kube_vertex_proxy_model_tokens_total{model="google/gemini-2.5-flash",type="total",namespace="ml"}')).toBe(
      3 * 20 + 2 * 14,
    );
    expect(value('kube_vertex_proxy_model_tokens_total{model="google/gemini-2.5-flash",type="thoughts",namespace="ml"}')).toBe(3 * 5);
    expect(value('kube_vertex_proxy_model_requests_total{model="google/gemini-2.5-flash",code="429",namespace="ml"}')).toBe(1);
    expect(value('kube_vertex_proxy_model_requests_total{model="google/gemini-2.5-flash",code="200",namespace="ml"}')).toBe(6);
  });
});
