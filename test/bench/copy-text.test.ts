/**
 * COPY text rows (the benchmark's PostgreSQL bulk load): the escapes as
 * written, and a round trip through a real server, which reads back exactly
 * the values that went in, NULL, empty strings and every special character
 * included.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyTextRow, copyTextValue } from '../../bench/copy-text.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

describe('copyTextValue', () => {
  it('writes NULL as \\N and an empty string as nothing', () => {
    expect(copyTextValue(null)).toBe('\\N');
    expect(copyTextValue('')).toBe('');
  });

  it('escapes backslash, tab, newline and carriage return, and nothing else', () => {
    expect(copyTextValue('a\\b')).toBe('a\\\\b');
    expect(copyTextValue('a\tb\nc\rd')).toBe('a\\tb\\nc\\rd');
    expect(copyTextValue('\\N')).toBe('\\\\N');
    expect(copyTextValue('\\.')).toBe('\\\\.');
    expect(copyTextValue('{"q":"x\\"y","é":"ü ✓"}')).toBe('{"q":"x\\\\"y","é":"ü ✓"}');
    expect(copyTextValue('plain "quoted" , ; | text')).toBe('plain "quoted" , ; | text');
  });

  it('writes numbers as decimal text and refuses what no integer column takes', () => {
    expect(copyTextValue(0)).toBe('0');
    expect(copyTextValue(-42)).toBe('-42');
    expect(copyTextValue(1_767_571_200_000)).toBe('1767571200000');
    expect(() => copyTextValue(Number.NaN)).toThrow(RangeError);
    expect(() => copyTextValue(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

describe('copyTextRow', () => {
  it('joins the values with tabs and ends the row with a newline', () => {
    expect(copyTextRow(['a', 1, null, 'b\tc'])).toBe('a\t1\t\\N\tb\\tc\n');
    expect(copyTextRow([null])).toBe('\\N\n');
  });
});

describe('COPY FROM STDIN round trip', () => {
  let postgres: TestPostgres | undefined;
  beforeAll(async () => {
    postgres = await startTestPostgres({ fsync: false });
  });
  afterAll(async () => {
    await postgres?.stop();
  });

  it('reads back exactly the values written', async () => {
    const rows: Array<[number, string | null, number | null]> = [
      [1, 'plain', 7],
      [2, null, null],
      [3, '', 0],
      [4, '\\N', -1],
      [5, 'tab\there\nnewline\r\ncrlf \\ backslash \\\\ two', 1_767_571_200_000],
      [6, '\\.', 2],
      [7, '{"path":"C:\\\\dir","msg":"line1\\nline2","u":"é ✓ 😀"}', 3],
      [8, '\t\n\\', 4],
    ];
    const client = new pg.Client({ connectionString: (postgres as TestPostgres).url });
    await client.connect();
    try {
      await client.query('CREATE TABLE copy_text (id INTEGER, text_value TEXT, big BIGINT)');
      await pipeline(
        Readable.from(rows.map((row) => copyTextRow(row))),
        client.query(copyFrom('COPY copy_text (id, text_value, big) FROM STDIN')),
      );
      const back = await client.query<{ id: number; text_value: string | null; big: string | null }>(
        'SELECT id, text_value, big FROM copy_text ORDER BY id',
      );
      expect(back.rows.map((r) => [r.id, r.text_value, r.big === null ? null : Number(r.big)])).toEqual(rows);
    } finally {
      await client.end();
    }
  });
});
