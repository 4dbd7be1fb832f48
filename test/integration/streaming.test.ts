/**
 * streamGenerateContent?alt=sse must reach the caller event by event, not
 * buffered until the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCATION, PROJECT, startWorld, type World } from '../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => {
  await world?.close();
});

describe('server-sent events', () => {
  it('arrive incrementally through the proxy', async () => {
    world.vertex.streamChunks = 5;
    world.vertex.streamDelayMs = 200;
    const started = Date.now();
    const response = await world.call(
      `/v1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse`,
      { body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'count' }] }] }) },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const arrivals: number[] = [];
    let text = '';
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      const piece = decoder.decode(chunk, { stream: true });
      text += piece;
      for (let i = 0; i < (piece.match(/\r\n\r\n/g) ?? []).length; i++) arrivals.push(Date.now() - started);
    }
    const events = text.split('\r\n\r\n').filter((e) => e.startsWith('data: '));
    expect(events.length).toBeGreaterThanOrEqual(3);
    for (const event of events) JSON.parse(event.slice('data: '.length));
    expect(arrivals).toHaveLength(events.length);
    // Buffered delivery would hand every event over at once at the end; streamed, they arrive ~200 ms apart.
    expect(arrivals[arrivals.length - 1]! - arrivals[0]!).toBeGreaterThanOrEqual((events.length - 1) * 150);
  });

  it('without alt=sse stream a JSON array whose first byte is [', async () => {
    world.vertex.streamChunks = 3;
    world.vertex.streamDelayMs = 10;
    const response = await world.call(
      `/v1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.5-flash:streamGenerateContent`,
      { body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'x' }] }] }) },
    );
    const text = await response.text();
    expect(text.trimStart()[0]).toBe('[');
    expect((JSON.parse(text) as unknown[]).length).toBe(3);
  });
});
