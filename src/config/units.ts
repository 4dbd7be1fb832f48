/**
 * Durations (`250ms`, `30s`, `5m`, `1h`) and sizes (`512KiB`, `10MiB`) as the
 * config file writes them. The schema's patterns guarantee the shape; these
 * functions only convert.
 *
 * @module
 */

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_BYTES: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** @throws TypeError on a string the schema would have refused. */
export function parseDuration(text: string): number {
  const match = /^([0-9]+)(ms|s|m|h)$/.exec(text);
  if (!match) throw new TypeError(`not a duration: ${JSON.stringify(text)}`);
  return Number(match[1]) * (DURATION_MS[match[2] as string] as number);
}

/** @throws TypeError on a string the schema would have refused. */
export function parseSize(text: string): number {
  const match = /^([0-9]+)(B|KiB|MiB|GiB)?$/.exec(text);
  if (!match) throw new TypeError(`not a size: ${JSON.stringify(text)}`);
  return Number(match[1]) * (SIZE_BYTES[match[2] ?? 'B'] as number);
}
