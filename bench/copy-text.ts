/**
 * Rows in PostgreSQL's COPY text format (the default of `COPY … FROM
 * STDIN`): columns separated by a tab, rows ended by a newline, NULL as
 * `\N`, and in a value the four characters that would end a column or a row
 * or start an escape written as backslash escapes. Every other character,
 * any Unicode included, goes as it is (the connection's encoding, UTF-8).
 *
 * @module
 */

/** Characters COPY text must escape in a value; nothing else needs it (with a tab delimiter). */
const SPECIAL = /[\\\t\n\r]/;
const SPECIAL_ALL = /[\\\t\n\r]/g;
const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One value as COPY text: `\N` for null, numbers as their decimal text, strings escaped. */
export function copyTextValue(value: string | number | null): string {
  if (value === null) return '\\N';
  if (typeof value === 'number') {
    // NaN and the infinities would load as something else, or not at all, in an integer column.
    if (!Number.isFinite(value)) throw new RangeError(`COPY text: ${value} is not a finite number`);
    return String(value);
  }
  // Most values need no escape: one scan to find out, no copy.
  return SPECIAL.test(value) ? value.replace(SPECIAL_ALL, (c) => ESCAPES[c] as string) : value;
}

/** One row as COPY text, newline included. */
export function copyTextRow(values: ReadonlyArray<string | number | null>): string {
  let line = '';
  for (let i = 0; i < values.length; i++) line += (i === 0 ? '' : '\t') + copyTextValue(values[i] as string | number | null);
  return `${line}\n`;
}
