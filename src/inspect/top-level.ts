/**
 * A few members of a JSON request body's top-level object, read without
 * parsing the rest: the rules that only look at `cachedContent`, `model` or
 * `labels` of a `generateContent` body do not need its megabytes of inline
 * images and documents turned into JavaScript strings and objects (a large
 * string on the V8 heap is what makes the garbage collector work). The whole
 * body is still checked byte by byte against JSON's grammar, so a body
 * `JSON.parse` would refuse is never accepted here.
 *
 * The answer is either exactly what `JSON.parse(bytes.toString('utf8'))`
 * gives for those members (the last of duplicate keys, escapes decoded, each
 * value parsed by `JSON.parse` from its own bytes), or `undefined`: the body
 * is not a well-formed JSON object, or not one this reader follows; the
 * caller then parses it whole and refuses it in `JSON.parse`'s own words.
 * What a body is forwarded or refused for is therefore the same either way
 * (property-tested against `JSON.parse` in top-level.test.ts).
 *
 * Why bytes can be checked without decoding UTF-8 first: every byte of
 * JSON's structure is ASCII, an ASCII byte is never part of a multi-byte
 * sequence (so decoding never merges it with its neighbours), and no
 * sequence decodes to a control character (invalid ones become U+FFFD).
 * Outside strings any byte ≥ 0x80 is a syntax error either way.
 *
 * @module
 */

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const PLUS = 0x2b;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const SLASH = 0x2f;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const BACKSLASH = 0x5c;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const IN_OBJECT = 1;
const IN_ARRAY = 2;
const TRUE = Buffer.from('true');
/** 0x01 in every byte of a 32-bit word, and the masks of the word-at-a-time tests (see {@link plainWord}). */
const ONES = 0x01010101;
const HIGH_BITS = 0x80808080;
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

/**
 * The `keys` members of the body's top-level object, each as `JSON.parse`
 * would give it (an absent key is absent), on an object without prototype;
 * undefined when the body is not a well-formed JSON object.
 */
export function readTopLevelMembers(bytes: Buffer, keys: ReadonlySet<string>): Record<string, unknown> | undefined {
  const n = bytes.length;
  const text = textOf(bytes);
  let i = skipSpace(bytes, 0);
  if (bytes[i] !== OPEN_OBJECT) return undefined;
  i = skipSpace(bytes, i + 1);
  const found = new Map<string, { start: number; end: number }>();
  if (bytes[i] === CLOSE_OBJECT) i += 1;
  else {
    for (;;) {
      if (bytes[i] !== QUOTE) return undefined;
      const keyStart = i;
      const keyEnd = skipString(text, i);
      if (keyEnd === -1) return undefined;
      i = skipSpace(bytes, keyEnd);
      if (bytes[i] !== COLON) return undefined;
      i = skipSpace(bytes, i + 1);
      const valueEnd = skipValue(text, i);
      if (valueEnd === -1) return undefined;
      const key = wantedKey(bytes, keyStart, keyEnd, keys);
      // The last of duplicate keys wins, as in JSON.parse.
      if (key !== undefined) found.set(key, { start: i, end: valueEnd });
      i = skipSpace(bytes, valueEnd);
      if (bytes[i] === COMMA) {
        i = skipSpace(bytes, i + 1);
        continue;
      }
      if (bytes[i] !== CLOSE_OBJECT) return undefined;
      i += 1;
      break;
    }
  }
  if (skipSpace(bytes, i) !== n) return undefined;
  const members = Object.create(null) as Record<string, unknown>;
  try {
    for (const [key, { start, end }] of found) members[key] = JSON.parse(bytes.toString('utf8', start, end));
  } catch {
    // Cannot happen for a value the grammar above accepted; if it did, the whole parse decides (and refuses).
    return undefined;
  }
  return members;
}

/** The key whose quoted text is `bytes[start, end)`, when it is one of `keys`. */
function wantedKey(bytes: Buffer, start: number, end: number, keys: ReadonlySet<string>): string | undefined {
  let escaped = false;
  for (let k = start + 1; k < end - 1; k++) {
    const c = bytes[k] as number;
    // The keys wanted are ASCII: a key with any other character is none of them, however decoded.
    if (c >= 0x80) return undefined;
    if (c === BACKSLASH) escaped = true;
  }
  // An escaped key (`"cached\u0043ontent"`) is decoded as JSON.parse decodes it.
  const key = escaped ? (JSON.parse(bytes.toString('latin1', start, end)) as string) : bytes.toString('latin1', start + 1, end - 1);
  return keys.has(key) ? key : undefined;
}

function skipSpace(bytes: Buffer, from: number): number {
  let i = from;
  for (;;) {
    const c = bytes[i];
    if (c !== SPACE && c !== LF && c !== CR && c !== TAB) return i;
    i += 1;
  }
}

/** The body, and a 32-bit view of its aligned middle for reading long strings four bytes at a time. */
interface Text {
  readonly bytes: Buffer;
  readonly words: Uint32Array;
  /** `words[w]` holds `bytes[shift + 4w … shift + 4w + 3]`. */
  readonly shift: number;
}

function textOf(bytes: Buffer): Text {
  const shift = (4 - (bytes.byteOffset & 3)) & 3;
  const count = bytes.length > shift ? (bytes.length - shift) >>> 2 : 0;
  return { bytes, words: new Uint32Array(bytes.buffer, bytes.byteOffset + shift, count), shift };
}

/**
 * Whether none of a word's four bytes is a quote, a backslash or a control
 * character, i.e. all four are plain string contents. The classic
 * word-at-a-time tests (exact, no false negatives): a byte below 0x20, and
 * a zero byte after XOR with the quote or the backslash.
 */
function plainWord(x: number): boolean {
  const below = (x - ONES * SPACE) & ~x;
  const q = x ^ (ONES * QUOTE);
  const b = x ^ (ONES * BACKSLASH);
  return ((below | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGH_BITS) === 0;
}

/** Past the string starting at `bytes[from]` (a quote), or -1 when it is malformed. */
function skipString(text: Text, from: number): number {
  const { bytes, words, shift } = text;
  const n = bytes.length;
  let i = from + 1;
  for (;;) {
    let c = 0;
    // Most of a body is string contents: skipped four bytes at a time where aligned, then byte by byte.
    for (;;) {
      if (((i - shift) & 3) === 0 && i >= shift) {
        let w = (i - shift) >>> 2;
        while (w < words.length && plainWord(words[w] as number)) w += 1;
        i = shift + w * 4;
      }
      if (i >= n) break;
      c = bytes[i] as number;
      if (c === QUOTE || c === BACKSLASH || c < SPACE) break;
      i += 1;
    }
    if (i >= n || c < SPACE) return -1;
    if (c === QUOTE) return i + 1;
    const e = bytes[i + 1];
    if (e === QUOTE || e === BACKSLASH || e === SLASH || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
      i += 2;
    } else if (e === 0x75) {
      for (let k = i + 2; k < i + 6; k++) if (!isHex(bytes[k])) return -1;
      i += 6;
    } else return -1;
  }
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= ZERO && c <= NINE;
}

/** Past the number starting at `bytes[from]` (`-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`), or -1. */
function skipNumber(bytes: Buffer, from: number): number {
  let i = from;
  if (bytes[i] === MINUS) i += 1;
  if (bytes[i] === ZERO) i += 1;
  else if (isDigit(bytes[i])) while (isDigit(bytes[i])) i += 1;
  else return -1;
  if (bytes[i] === DOT) {
    i += 1;
    if (!isDigit(bytes[i])) return -1;
    while (isDigit(bytes[i])) i += 1;
  }
  if (bytes[i] === 0x65 || bytes[i] === 0x45) {
    i += 1;
    if (bytes[i] === PLUS || bytes[i] === MINUS) i += 1;
    if (!isDigit(bytes[i])) return -1;
    while (isDigit(bytes[i])) i += 1;
  }
  return i;
}

function skipLiteral(bytes: Buffer, from: number, literal: Buffer): number {
  for (let k = 0; k < literal.length; k++) if (bytes[from + k] !== literal[k]) return -1;
  return from + literal.length;
}

/** Past a key, its colon and the space after it, in an object (`bytes[from]` must be the key's quote), or -1. */
function skipKey(text: Text, from: number): number {
  const bytes = text.bytes;
  if (bytes[from] !== QUOTE) return -1;
  const end = skipString(text, from);
  if (end === -1) return -1;
  const colon = skipSpace(bytes, end);
  return bytes[colon] === COLON ? skipSpace(bytes, colon + 1) : -1;
}

/**
 * Past the value starting at `bytes[from]`, or -1 when it is malformed.
 * Containers are followed with a stack of their own, not by recursion: a
 * deeply nested body cannot exhaust the call stack.
 */
function skipValue(text: Text, from: number): number {
  const bytes = text.bytes;
  const open: number[] = [];
  let i = from;
  for (;;) {
    // A value starts at i.
    const c = bytes[i];
    if (c === OPEN_OBJECT) {
      i = skipSpace(bytes, i + 1);
      if (bytes[i] === CLOSE_OBJECT) i += 1;
      else {
        open.push(IN_OBJECT);
        i = skipKey(text, i);
        if (i === -1) return -1;
        continue;
      }
    } else if (c === OPEN_ARRAY) {
      i = skipSpace(bytes, i + 1);
      if (bytes[i] === CLOSE_ARRAY) i += 1;
      else {
        open.push(IN_ARRAY);
        continue;
      }
    } else if (c === QUOTE) i = skipString(text, i);
    else if (c === MINUS || isDigit(c)) i = skipNumber(bytes, i);
    else if (c === 0x74) i = skipLiteral(bytes, i, TRUE);
    else if (c === 0x66) i = skipLiteral(bytes, i, FALSE);
    else if (c === 0x6e) i = skipLiteral(bytes, i, NULL);
    else return -1;
    if (i === -1) return -1;
    // A value ended at i: close the containers it ends, or go on to the next value.
    for (;;) {
      const top = open[open.length - 1];
      if (top === undefined) return i;
      i = skipSpace(bytes, i);
      const next = bytes[i];
      if (next === COMMA) {
        i = skipSpace(bytes, i + 1);
        if (top === IN_OBJECT) {
          i = skipKey(text, i);
          if (i === -1) return -1;
        }
        break;
      }
      if ((top === IN_OBJECT && next === CLOSE_OBJECT) || (top === IN_ARRAY && next === CLOSE_ARRAY)) {
        open.pop();
        i += 1;
        continue;
      }
      return -1;
    }
  }
}
