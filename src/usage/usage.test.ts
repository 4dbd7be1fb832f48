import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonScanner, MAX_CAPTURE_BYTES, nextQuotedName } from './json-scanner.js';
import { chargeableTokens, createUsageMeter, type UsageFraming } from './usage.js';

const USAGE = {
  promptTokenCount: 400,
  candidatesTokenCount: 600,
  thoughtsTokenCount: 7,
  cachedContentTokenCount: 3,
  toolUsePromptTokenCount: 2,
  totalTokenCount: 1009,
};
const EXPECTED = { prompt: 400, candidates: 600, thoughts: 7, cached: 3, tool: 2, total: 1009 };

function response(text: string, usage?: Record<string, number>): Record<string, unknown> {
  return {
    candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP' }],
    ...(usage === undefined
      ? {}
      : { usageMetadata: { ...usage, promptTokensDetails: [{ modality: 'TEXT', tokenCount: 400 }], trafficType: 'ON_DEMAND' } }),
    modelVersion: 'gemini-2.5-flash',
    createTime: '2026-12-04T10:00:00.000000Z',
    responseId: 'abc',
  };
}

/** Tricky text: quotes, escaped backslashes before quotes, braces and keys-lookalikes inside strings. */
const TRICKY = 'He said \\"usageMetadata\\": {\\"totalTokenCount\\": 1} \\\\ and [ends] } with a backslash \\\\';

function meterAll(framing: UsageFraming, bytes: Buffer, cuts: number[]) {
  const meter = createUsageMeter(framing);
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    meter.push(bytes.subarray(at, cut));
    at = cut;
  }
  meter.push(bytes.subarray(at));
  return meter.finish();
}

const cutsOf = (length: number) => fc.array(fc.integer({ min: 0, max: length }), { maxLength: 40 });

describe('usage from a generateContent JSON answer', () => {
  const body = Buffer.from(JSON.stringify({ ...response(JSON.parse(`"${TRICKY}"`) as string, USAGE) }, null, 2));

  it('reads usageMetadata and modelVersion', () => {
    expect(meterAll('gemini-json', body, [])).toEqual({ tokens: EXPECTED, modelVersion: 'gemini-2.5-flash' });
  });

  it('gets the same answer however the bytes are cut into chunks (one byte at a time included)', () => {
    expect(meterAll('gemini-json', body, [...body.keys()])).toEqual({ tokens: EXPECTED, modelVersion: 'gemini-2.5-flash' });
    fc.assert(
      fc.property(cutsOf(body.length), (cuts) => {
        expect(meterAll('gemini-json', body, cuts)).toEqual({ tokens: EXPECTED, modelVersion: 'gemini-2.5-flash' });
      }),
    );
  });

  it('ignores a usageMetadata key nested deeper than the response object, and lookalikes inside strings', () => {
    const nested = Buffer.from(
      JSON.stringify({ candidates: [{ usageMetadata: { totalTokenCount: 5 } }], note: '"usageMetadata": {"totalTokenCount": 9}' }),
    );
    expect(meterAll('gemini-json', nested, [])).toEqual({ tokens: undefined, modelVersion: undefined });
  });

  it('says "no usage" for an answer without usageMetadata (a blocked prompt), and absent counts stay absent', () => {
    expect(meterAll('gemini-json', Buffer.from(JSON.stringify({ promptFeedback: { blockReason: 'SAFETY' } })), []).tokens).toBeUndefined();
    const partial = Buffer.from(JSON.stringify({ usageMetadata: { promptTokenCount: 4, totalTokenCount: 4 } }));
    expect(meterAll('gemini-json', partial, []).tokens).toEqual({ prompt: 4, total: 4 });
  });

  it('survives garbage without throwing and reports nothing', () => {
    for (const text of ['<html>502</html>', '}}}]]', '{"usageMetadata": {"totalTokenCount": ', '"unterminated']) {
      expect(meterAll('gemini-json', Buffer.from(text), []).tokens).toBeUndefined();
    }
  });

  it('skips a wanted value larger than the capture bound instead of holding it', () => {
    const huge = Buffer.from(JSON.stringify({ usageMetadata: { totalTokenCount: 1, padding: 'x'.repeat(MAX_CAPTURE_BYTES) } }));
    expect(meterAll('gemini-json', huge, [1000, 30_000]).tokens).toBeUndefined();
  });
});

describe('usage from streamGenerateContent', () => {
  const events = [
    response('Hel'),
    response('lo ' + (JSON.parse(`"${TRICKY}"`) as string)),
    response('!', { ...USAGE, candidatesTokenCount: 300, totalTokenCount: 700 }),
    response('', USAGE),
  ];

  it('SSE (data: {json}\\r\\n\\r\\n): the last usageMetadata wins, whatever the chunking', () => {
    const body = Buffer.from(events.map((e) => `data: ${JSON.stringify(e)}\r\n\r\n`).join(''));
    expect(meterAll('gemini-sse', body, [])).toEqual({ tokens: EXPECTED, modelVersion: 'gemini-2.5-flash' });
    fc.assert(
      fc.property(cutsOf(body.length), (cuts) => {
        expect(meterAll('gemini-sse', body, cuts)).toEqual({ tokens: EXPECTED, modelVersion: 'gemini-2.5-flash' });
      }),
    );
  });

  it('SSE: events without a wanted key are skipped, yet a key name inside text or a later event is handled right', () => {
    const decoy = {
      candidates: [{ content: { parts: [{ text: 'the "usageMetadata": {"totalTokenCount": 1} and "modelVersion" words' }] } }],
    };
    const body = Buffer.from([decoy, events[0], decoy, events[3], decoy].map((e) => `data: ${JSON.stringify(e)}\r\n\r\n`).join(''));
    fc.assert(
      fc.property(cutsOf(body.length), (cuts) => {
        expect(meterAll('gemini-sse', body, cuts)).toEqual({ tokens: EXPECTED, modelVersion: 'gemini-2.5-flash' });
      }),
    );
    // Many events in one chunk, the usage in the middle one.
    const many = Buffer.from(
      [...(Array(50).fill(events[0]) as unknown[]), events[3], ...(Array(50).fill(events[0]) as unknown[])]
        .map((e) => `data: ${JSON.stringify(e)}\n\n`)
        .join(''),
    );
    expect(meterAll('gemini-sse', many, []).tokens).toEqual(EXPECTED);
  });

  it('SSE with LF line ends, comments and other fields', () => {
    const body = Buffer.from(
      `: keep-alive\n\nevent: message\nid: 1\ndata:${JSON.stringify(events[2])}\n\ndata: ${JSON.stringify(events[0])}\n\n`,
    );
    expect(meterAll('gemini-sse', body, []).tokens).toEqual({ ...EXPECTED, candidates: 300, total: 700 });
  });

  it('the streamed JSON array ([{…}\\r\\n,{…}]), pretty-printed or not, whatever the chunking', () => {
    for (const pretty of [undefined, 2]) {
      const body = Buffer.from(`[${events.map((e) => JSON.stringify(e, null, pretty)).join(',\r\n')}]`);
      fc.assert(
        fc.property(cutsOf(body.length), (cuts) => {
          expect(meterAll('gemini-array', body, cuts)).toEqual({ tokens: EXPECTED, modelVersion: 'gemini-2.5-flash' });
        }),
      );
    }
  });

  it('an array cut off mid-stream reports the usage seen so far', () => {
    const body = Buffer.from(`[${JSON.stringify(events[2])},${JSON.stringify(events[3]).slice(0, 40)}`);
    expect(meterAll('gemini-array', body, [10]).tokens).toEqual({ ...EXPECTED, candidates: 300, total: 700 });
  });
});

describe('usage from OpenAI-compatible chat completions', () => {
  const usage = { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42, completion_tokens_details: { reasoning_tokens: 5 } };

  it('a unary completion', () => {
    const body = Buffer.from(
      JSON.stringify({
        id: 'x',
        object: 'chat.completion',
        model: 'google/gemini-2.5-flash',
        choices: [{ index: 0, message: { role: 'assistant', content: TRICKY } }],
        usage,
      }),
    );
    expect(meterAll('openai-json', body, [7, 99])).toEqual({
      tokens: { prompt: 12, candidates: 30, thoughts: 5, total: 42 },
      modelVersion: 'google/gemini-2.5-flash',
    });
  });

  it('a stream with include_usage: chunks with "usage": null, then the usage chunk, then [DONE]', () => {
    const chunk = (content: string) => ({
      id: 'x',
      object: 'chat.completion.chunk',
      model: 'google/gemini-2.5-flash',
      choices: [{ index: 0, delta: { content } }],
      usage: null,
    });
    const body = Buffer.from(
      [chunk('a'), chunk('b'), { id: 'x', object: 'chat.completion.chunk', model: 'google/gemini-2.5-flash', choices: [], usage }]
        .map((c) => `data: ${JSON.stringify(c)}\n\n`)
        .join('') + 'data: [DONE]\n\n',
    );
    fc.assert(
      fc.property(cutsOf(body.length), (cuts) => {
        expect(meterAll('openai-sse', body, cuts).tokens).toEqual({ prompt: 12, candidates: 30, thoughts: 5, total: 42 });
      }),
    );
  });

  it('a stream without include_usage has no usage', () => {
    const body = Buffer.from(`data: ${JSON.stringify({ choices: [{ delta: { content: 'a' } }] })}\n\ndata: [DONE]\n\n`);
    expect(meterAll('openai-sse', body, []).tokens).toBeUndefined();
  });
});

describe('usage from embedding predictions', () => {
  it('sums token_count over the predictions', () => {
    const body = Buffer.from(
      JSON.stringify({
        predictions: [1, 2, 3].map((n) => ({
          embeddings: { values: [0.1, -0.2, 3e-5], statistics: { token_count: n, truncated: false } },
        })),
        deployedModelId: '1',
      }),
    );
    expect(meterAll('embeddings-json', body, [5, 50]).tokens).toEqual({ prompt: 6, total: 6 });
  });
});

describe('JsonScanner', () => {
  it(
    'captures strings, numbers, literals and containers at the requested depth (one value at a time: nothing inside a ' + 'captured one)',
    () => {
      const seen: Array<[string, string]> = [];
      const scanner = new JsonScanner(
        [
          { key: 'a', depth: 1 },
          { key: 'b', depth: 1 },
          { key: 'c', depth: 'any' },
        ],
        (k, v) => seen.push([k, v]),
      );
      scanner.push(Buffer.from('{"a":"x\\"y","b": 12.5e3 ,"z":{"c":true,"a":1},"c":[1,{"c":null}]}'));
      scanner.end();
      expect(seen).toEqual([
        ['a', '"x\\"y"'],
        ['b', '12.5e3'],
        ['c', 'true'],
        ['c', '[1,{"c":null}]'],
      ]);
    },
  );
});

describe('nextQuotedName', () => {
  it('finds exactly where the quoted name starts at or after from, as a search for the quoted name would', () => {
    const tail = Buffer.from('key"');
    fc.assert(
      fc.property(fc.array(fc.constantFrom('"', 'k', 'e', 'y', 'x', ':'), { maxLength: 40 }), fc.nat(41), (chars, start) => {
        const buf = Buffer.from(chars.join(''), 'latin1');
        const from = Math.min(start, buf.length);
        expect(nextQuotedName(buf, tail, from)).toBe(buf.indexOf('"key"', from, 'latin1'));
      }),
      { numRuns: 2000 },
    );
  });

  it('does not count a name whose opening quote lies before from, or a longer name ending the same', () => {
    const tail = Buffer.from('usageMetadata"');
    expect(nextQuotedName(Buffer.from('{"usageMetadata":1}'), tail, 1)).toBe(1);
    expect(nextQuotedName(Buffer.from('{"usageMetadata":1}'), tail, 2)).toBe(-1);
    expect(nextQuotedName(Buffer.from('{"xusageMetadata":1,"usageMetadata":2}'), tail, 0)).toBe(20);
  });
});

describe('chargeableTokens', () => {
  it('charges the total, else the sum of the parts, else nothing', () => {
    expect(chargeableTokens({ prompt: 1, total: 10 })).toBe(10);
    expect(chargeableTokens({ prompt: 1, candidates: 2, thoughts: 3 })).toBe(6);
    expect(chargeableTokens(undefined)).toBe(0);
  });
});
