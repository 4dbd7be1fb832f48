/**
 * readTopLevelMembers against JSON.parse: on random bodies (well-formed,
 * with duplicate and escaped keys, unicode escapes and raw non-ASCII bytes,
 * deep nesting, random whitespace) and on random corruptions of them (a byte
 * deleted, inserted or replaced: control characters, invalid UTF-8, quotes,
 * backslashes, brackets), it gives exactly the members JSON.parse gives when
 * JSON.parse reads a non-array object, and nothing (the caller then parses
 * whole and refuses as before) otherwise: never a different answer.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readTopLevelMembers } from './top-level.js';

const WANTED = new Set(['cachedContent', 'model', 'labels', 'deployedModel']);

/** What JSON.parse makes of the body, as the inspect step reads it: the wanted members, or undefined (refused). */
function oracle(bytes: Buffer): Record<string, unknown> | undefined {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return undefined;
  const out: Record<string, unknown> = {};
  for (const key of WANTED) if (Object.hasOwn(json, key)) out[key] = (json as Record<string, unknown>)[key];
  return out;
}

function check(bytes: Buffer, compare: (a: unknown, b: unknown) => boolean = isDeepStrictEqual): void {
  const expected = oracle(bytes);
  const got = readTopLevelMembers(bytes, WANTED);
  const shown = bytes.toString('latin1').slice(0, 200);
  if (expected === undefined) expect(got, shown).toBeUndefined();
  else {
    expect(got, shown).toBeDefined();
    // Deep and strict (-0 is not 0), the same own keys; own `constructor` or `__proto__` members are plain data here.
    expect(compare({ ...got }, expected), shown).toBe(true);
  }
}

/** JSON text of a string with some characters written as \u escapes (upper or lower case hex). */
const escapedString = fc
  .tuple(fc.string({ unit: 'binary', maxLength: 12 }), fc.array(fc.boolean(), { maxLength: 12 }), fc.boolean())
  .map(([text, escapes, upper]) => {
    let out = '"';
    let k = 0;
    for (const char of JSON.stringify(text)
      .slice(1, -1)
      .match(/\\u[0-9a-f]{4}|\\.|[\s\S]/gu) ?? []) {
      if (char.length === 1 && escapes[k++ % Math.max(1, escapes.length)] === true) {
        const hex = char.charCodeAt(0).toString(16).padStart(4, '0');
        out += `\\u${upper ? hex.toUpperCase() : hex}`;
      } else out += char;
    }
    return `${out}"`;
  });

const space = fc.constantFrom('', ' ', '\n', '\r\n', '\t', '  ');

/** JSON text of a value, with random whitespace and escapes, nested up to `depth`. */
const valueText: fc.Memo<string> = fc.memo((depth: number): fc.Arbitrary<string> => {
  const leaf = fc.oneof(
    escapedString,
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
    fc.integer().map(String),
    fc.constantFrom('true', 'false', 'null', '0', '-0', '1e5', '-2.5E-3', '0.0', '1E+2', '"a\\/b"', '"\\b\\f\\n\\r\\t\\"\\\\"'),
  );
  if (depth <= 0) return leaf;
  return fc.oneof(
    { weight: 3, arbitrary: leaf },
    fc.tuple(fc.array(valueText(depth - 1), { maxLength: 4 }), space).map(([items, ws]) => `[${ws}${items.join(`${ws},${ws}`)}${ws}]`),
    fc
      .tuple(fc.array(fc.tuple(keyText, valueText(depth - 1)), { maxLength: 4 }), space)
      .map(([members, ws]) => `{${ws}${members.map(([k, v]) => `${k}${ws}:${ws}${v}`).join(`,${ws}`)}${ws}}`),
  );
});

/** Keys: the wanted ones (also escaped, and duplicated by the arrays they are drawn into), near misses, random ones. */
const keyText = fc.oneof(
  fc.constantFrom(
    '"cachedContent"',
    '"model"',
    '"labels"',
    '"deployedModel"',
    '"cached\\u0043ontent"',
    '"\\u006dodel"',
    '"Model"',
    '"model "',
    '"modél"',
    '"__proto__"',
    '"constructor"',
  ),
  escapedString,
);

const topObject = fc
  .tuple(fc.array(fc.tuple(keyText, valueText(3)), { maxLength: 8 }), space, space)
  .map(([members, ws, outer]) => `${outer}{${ws}${members.map(([k, v]) => `${k}${ws}:${ws}${v}`).join(`,${ws}`)}${ws}}${outer}`);

const anyTop = fc.oneof({ weight: 4, arbitrary: topObject }, valueText(2));

/** A byte to put somewhere: structure, control characters, high bytes (invalid UTF-8 alone), whitespace. */
const oddByte = fc.oneof(
  fc.constantFrom(
    0x22,
    0x5c,
    0x7b,
    0x7d,
    0x5b,
    0x5d,
    0x2c,
    0x3a,
    0x00,
    0x09,
    0x0a,
    0x0d,
    0x1f,
    0x20,
    0x7f,
    0x80,
    0xbf,
    0xc0,
    0xe2,
    0xef,
    0xff,
  ),
  fc.integer({ min: 0, max: 255 }),
);

describe('readTopLevelMembers', () => {
  it('reads exactly what JSON.parse reads, on well-formed bodies (duplicate and escaped keys, unicode, whitespace)', () => {
    fc.assert(
      fc.property(anyTop, (text) => check(Buffer.from(text, 'utf8'))),
      { numRuns: 3000 },
    );
  });

  it('never accepts what JSON.parse refuses, on corrupted bodies (a byte deleted, inserted or replaced)', () => {
    fc.assert(
      fc.property(topObject, fc.nat(), fc.constantFrom('delete', 'insert', 'replace'), oddByte, (text, at, how, byte) => {
        const bytes = Buffer.from(text, 'utf8');
        const k = bytes.length === 0 ? 0 : at % bytes.length;
        const parts = [bytes.subarray(0, k), how === 'delete' ? Buffer.alloc(0) : Buffer.from([byte])];
        parts.push(bytes.subarray(how === 'insert' ? k : k + 1));
        check(Buffer.concat(parts));
      }),
      { numRuns: 5000 },
    );
  });

  it('follows JSON.parse on bodies cut short anywhere', () => {
    fc.assert(
      fc.property(topObject, fc.nat(), (text, at) => {
        const bytes = Buffer.from(text, 'utf8');
        check(bytes.subarray(0, at % (bytes.length + 1)));
      }),
      { numRuns: 2000 },
    );
  });

  it('handles deep nesting without recursion, as JSON.parse does', () => {
    // Compared by their text (a recursive deep-equal would exhaust the stack first); one bracket short or over is refused.
    const sameText = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    for (const depth of [1, 100, 1000]) {
      check(
        Buffer.from(`{"model": ${'['.repeat(depth)}${']'.repeat(depth)}, "labels": ${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`),
        sameText,
      );
      check(Buffer.from(`{"model": ${'['.repeat(depth)}${']'.repeat(depth - 1)}}`));
      check(Buffer.from(`{"model": ${'['.repeat(depth)}${']'.repeat(depth + 1)}}`));
    }
    // Deeper than any recursion would go: accepted (and skipped) as JSON.parse accepts it.
    const deep = 1_000_000;
    expect(readTopLevelMembers(Buffer.from(`{"contents": ${'['.repeat(deep)}${']'.repeat(deep)}, "model": "m"}`), WANTED)).toEqual({
      model: 'm',
    });
    expect(
      readTopLevelMembers(Buffer.from(`{"contents": ${'['.repeat(deep)}${']'.repeat(deep - 1)}, "model": "m"}`), WANTED),
    ).toBeUndefined();
  });

  it('takes the last of duplicate keys, decodes escaped keys and values, and skips the rest unparsed', () => {
    const big = 'A'.repeat(1024 * 1024);
    const body = Buffer.from(
      `{"model":"first","contents":[{"parts":[{"inlineData":{"data":"${big}"}}]}],"\\u006dodel":"m\\u00e9","labels":{"a":"b"},"model2":1}`,
    );
    const members = readTopLevelMembers(body, WANTED);
    expect(members).toBeDefined();
    expect(Object.getPrototypeOf(members)).toBeNull();
    expect({ ...members }).toStrictEqual({ model: 'mé', labels: { a: 'b' } });
  });

  it('refuses what JSON.parse refuses that a lenient reader might let through', () => {
    for (const text of [
      '',
      ' ',
      '\ufeff{}',
      '{"model":"a",}',
      '{"model":"a"}x',
      '{"model":"a\u0001"}',
      '{"model":01}',
      '{"model":1.}',
      '{"model":.5}',
      '{"model":+1}',
      '{"model":"\\x41"}',
      '{"model":"\\u12G4"}',
      "{'model':1}",
      '{model:1}',
      '{"model":1 /* c */}',
      '{"model":NaN}',
      '{"model":tru}',
      '{"a":[1,]}',
      '{"a":{"b"}}',
      '{"a" "b"}',
      '[{"model":"a"}]',
      '"model"',
      'null',
      '{"model":"a"}\u00a0',
    ])
      check(Buffer.from(text, 'utf8'));
    // Invalid UTF-8 inside a string is U+FFFD to JSON.parse (accepted); outside one it is a syntax error.
    check(Buffer.from([0x7b, 0x22, 0x6d, 0x6f, 0x64, 0x65, 0x6c, 0x22, 0x3a, 0x22, 0xff, 0xc0, 0x80, 0x22, 0x7d]));
    check(Buffer.from([0x7b, 0x22, 0x6d, 0x6f, 0x64, 0x65, 0x6c, 0x22, 0x3a, 0x31, 0xff, 0x7d]));
  });
});
