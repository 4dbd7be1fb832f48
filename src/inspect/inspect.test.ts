import { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import type { BodyRule, InspectedBody } from './body-rule.js';
import { inspectBody, isJsonContentType } from './inspect.js';
import { readBody } from '../forward/body-limit.js';

/** readBody as a promise, for the cases below. */
const readWhole = (body: NodeJS.ReadableStream, limit: number): Promise<Buffer> =>
  new Promise((resolve, reject) =>
    readBody(body, limit, (error, bytes) => (error === undefined ? resolve(bytes as Buffer) : reject(error))),
  );

const request = {} as FastifyRequest;
const JSON_TYPE = 'application/json; charset=utf-8';

function rule(name: string, inspect: (body: InspectedBody) => ReturnType<BodyRule['inspect']>): BodyRule {
  return { name, wants: () => true, inspect: (_request, body) => inspect(body) };
}

describe('inspectBody', () => {
  it("forwards the caller's own bytes when no rule rewrites", () => {
    const bytes = Buffer.from('{ "b": 1,\n  "a": [1, 2.50] }');
    const seen: unknown[] = [];
    const result = inspectBody(request, bytes, JSON_TYPE, [rule('look', (body) => void seen.push(body.json))]);
    expect(result).toEqual({ forward: bytes, rewritten: false });
    if ('forward' in result) expect(result.forward).toBe(bytes);
    expect(seen).toEqual([{ b: 1, a: [1, 2.5] }]);
  });

  it('stops at the first refusal; later rules do not run', () => {
    const refusal = new ProxyError('ERR_AUTHZ_DENIED', 'no');
    let ran = false;
    const result = inspectBody(request, Buffer.from('{}'), JSON_TYPE, [
      rule('refuse', () => ({ refuse: refusal })),
      rule('later', () => {
        ran = true;
        return undefined;
      }),
    ]);
    expect(result).toEqual({ refuse: refusal });
    expect(ran).toBe(false);
  });

  it('applies rewrites to a copy, in order, and re-serialises', () => {
    const bytes = Buffer.from('{"labels":{"a":"1"},"x":true}');
    let parsedSeen: unknown;
    const result = inspectBody(request, bytes, JSON_TYPE, [
      rule('first', (body) => {
        parsedSeen = body.json;
        return { rewrite: (json) => void ((json.labels as Record<string, string>).b = '2') };
      }),
      rule('second', () => ({ rewrite: (json) => void ((json.labels as Record<string, string>).c = '3') })),
    ]);
    expect('forward' in result && result.rewritten).toBe(true);
    if ('forward' in result) expect(JSON.parse(result.forward.toString())).toEqual({ labels: { a: '1', b: '2', c: '3' }, x: true });
    expect(parsedSeen).toEqual({ labels: { a: '1' }, x: true });
  });

  it('refuses bodies that are not JSON objects, without echoing their content', () => {
    const cases: Array<[string, string | undefined]> = [
      ['{"a":', JSON_TYPE],
      ['[1,2]', JSON_TYPE],
      ['"secret-ish text"', JSON_TYPE],
      ['{"a":1}', 'text/plain'],
      ['{"a":1}', undefined],
    ];
    for (const [text, type] of cases) {
      const result = inspectBody(request, Buffer.from(text), type, [rule('any', () => undefined)]);
      expect('refuse' in result, `${text} ${type}`).toBe(true);
      if ('refuse' in result) {
        expect(result.refuse.httpStatus).toBe(400);
        expect(result.refuse.message).not.toContain('secret-ish');
      }
    }
  });

  it('treats an empty body as {}', () => {
    const seen: unknown[] = [];
    const result = inspectBody(request, Buffer.alloc(0), undefined, [rule('look', (body) => void seen.push(body.json))]);
    expect('forward' in result).toBe(true);
    expect(seen).toEqual([{}]);
  });

  it('gives rules that name their top-level members just those (as JSON.parse reads them); a rewrite still gets the whole body', () => {
    const bytes = Buffer.from('{"contents":[{"parts":[{"text":"hi"}]}],"labels":{"a":"1"},"cachedContent":"c1","cachedContent":"c2"}');
    const seen: unknown[] = [];
    const labels: BodyRule = {
      ...rule('labels', (body) => {
        seen.push({ ...(body.json as object) });
        return { rewrite: (json) => void ((json.labels as Record<string, string>).b = '2') };
      }),
      topLevelMembers: ['labels'],
    };
    const cached: BodyRule = {
      ...rule('cached', (body) => void seen.push({ ...(body.json as object) })),
      topLevelMembers: ['cachedContent'],
    };
    const result = inspectBody(request, bytes, JSON_TYPE, [labels, cached]);
    expect(seen).toEqual([
      { labels: { a: '1' }, cachedContent: 'c2' },
      { labels: { a: '1' }, cachedContent: 'c2' },
    ]);
    expect('forward' in result && JSON.parse(result.forward.toString())).toEqual({
      contents: [{ parts: [{ text: 'hi' }] }],
      labels: { a: '1', b: '2' },
      cachedContent: 'c2',
    });
  });

  it('parses the whole body when one of the rules reads all of it', () => {
    const bytes = Buffer.from('{"labels":{"a":"1"},"x":true}');
    const seen: unknown[] = [];
    const named: BodyRule = { ...rule('named', (body) => void seen.push(body.json)), topLevelMembers: ['labels'] };
    inspectBody(request, bytes, JSON_TYPE, [named, rule('whole', (body) => void seen.push(body.json))]);
    expect(seen).toEqual([
      { labels: { a: '1' }, x: true },
      { labels: { a: '1' }, x: true },
    ]);
  });

  it('refuses a malformed body in the same words whether or not the rules name their members', () => {
    for (const text of ['{"labels":{"a":"1"},}', '[{"labels":{}}]', '{"labels":"\\u00"}', '{"labels":1} x']) {
      const whole = inspectBody(request, Buffer.from(text), JSON_TYPE, [rule('whole', () => undefined)]);
      const named = inspectBody(request, Buffer.from(text), JSON_TYPE, [
        { ...rule('named', () => undefined), topLevelMembers: ['labels'] },
      ]);
      expect('refuse' in whole, text).toBe(true);
      expect(named, text).toEqual(whole);
    }
  });

  it('knows JSON content types', () => {
    expect(isJsonContentType('application/json')).toBe(true);
    expect(isJsonContentType('Application/JSON; charset=UTF-8')).toBe(true);
    expect(isJsonContentType('application/merge-patch+json')).toBe(true);
    expect(isJsonContentType('text/json-ish')).toBe(false);
    expect(isJsonContentType(undefined)).toBe(false);
  });
});

describe('readWhole', () => {
  it('joins chunks', async () => {
    const bytes = await readWhole(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), 10);
    expect(bytes.toString()).toBe('abcd');
  });

  it('fails with 413 as soon as the limit is passed', async () => {
    let pulled = 0;
    const endless = new Readable({
      read() {
        pulled += 1;
        this.push(Buffer.alloc(1024));
      },
    });
    await expect(readWhole(endless, 4096)).rejects.toMatchObject({ code: 'ERR_REQUEST_BODY_TOO_LARGE', httpStatus: 413 });
    // Reading stopped: at most the stream's own read-ahead (16 KiB of 1 KiB chunks) more is pulled.
    const atRefusal = pulled;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(pulled - atRefusal).toBeLessThanOrEqual(16);
    endless.destroy();
  });

  it('fails with 499 when the body breaks off', async () => {
    const broken = new Readable({ read() {} });
    const reading = readWhole(broken, 100);
    broken.push(Buffer.from('ab'));
    broken.destroy(new Error('socket hang up'));
    await expect(reading).rejects.toMatchObject({ code: 'ERR_REQUEST_BODY_INCOMPLETE' });
  });
});
