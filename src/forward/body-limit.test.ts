import { PassThrough } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ProxyError } from '../errors.js';
import { readBody } from './body-limit.js';
import { BODY_IDLE_REASON, bodyStillToCome } from './body-progress.js';

interface Outcome {
  error?: ProxyError | undefined;
  bytes?: Buffer | undefined;
}

function read(body: PassThrough, idleMs: number): Outcome[] {
  const outcomes: Outcome[] = [];
  readBody(body, 1024, (error, bytes) => outcomes.push({ error, bytes }), idleMs);
  return outcomes;
}

describe('readBody with a body-progress timeout', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ends with 408 body-idle-timeout once nothing arrived for idleMs, and reads no further', async () => {
    vi.useFakeTimers();
    const body = new PassThrough();
    const outcomes = read(body, 1000);
    body.write('{"contents":');
    await vi.advanceTimersByTimeAsync(999);
    expect(outcomes).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]?.error).toMatchObject({ code: 'ERR_REQUEST_TIMEOUT', reason: BODY_IDLE_REASON });
    expect(outcomes[0]?.error?.headers).toMatchObject({ connection: 'close' });
    expect(body.isPaused()).toBe(true);
    // A late end changes nothing: done ran once.
    body.end('[]}');
    await vi.advanceTimersByTimeAsync(10);
    expect(outcomes).toHaveLength(1);
  });

  it('each chunk that arrives restarts the period; the whole body is read', async () => {
    vi.useFakeTimers();
    const body = new PassThrough();
    const outcomes = read(body, 1000);
    for (const part of ['{"a"', ':', '[1,', '2]']) {
      body.write(part);
      await vi.advanceTimersByTimeAsync(900);
    }
    body.end('}');
    await vi.advanceTimersByTimeAsync(0);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]?.error).toBeUndefined();
    expect(outcomes[0]?.bytes?.toString()).toBe('{"a":[1,2]}');
    // The timer went with the read.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('without idleMs no timer is set', () => {
    vi.useFakeTimers();
    read(new PassThrough(), 0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('bodyStillToCome', () => {
  const request = (complete: boolean, headers: Record<string, string>) =>
    ({ raw: { complete }, headers }) as unknown as Pick<FastifyRequest, 'raw' | 'headers'>;

  it('is true only with the timeout on and a declared body not yet complete', () => {
    expect(bodyStillToCome(request(false, { 'content-length': '10' }), 1000)).toBe(true);
    expect(bodyStillToCome(request(false, { 'transfer-encoding': 'chunked' }), 1000)).toBe(true);
    expect(bodyStillToCome(request(true, { 'content-length': '10' }), 1000)).toBe(false);
    expect(bodyStillToCome(request(false, {}), 1000)).toBe(false);
    expect(bodyStillToCome(request(false, { 'content-length': '10' }), 0)).toBe(false);
  });
});
