/**
 * The audit query vocabulary as text: HTTP query parameters and CLI flags
 * → {@link AuditQuery}, and records → table, JSON lines or CSV. Shared by
 * the query API and `kube-vertex-proxy audit query`. Pure.
 *
 * Throws `TypeError` with a caller-facing message for a bad filter value.
 *
 * @module
 */
import { SUMMARY_GROUPS, type AuditQuery, type StoredRecord, type SummaryGroup, type SummaryRow, type UsageSummaryRow } from './store.js';

export const FILTER_NAMES = [
  'principal',
  'namespace',
  'permission',
  'operation',
  'resource',
  'decision',
  'status',
  'rule',
  'from',
  'to',
] as const;
export type FilterName = (typeof FILTER_NAMES)[number];

const DURATION_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_FILTER_LENGTH = 1024;

/**
 * A time bound: RFC 3339 (`2026-11-27T10:00:00Z`), epoch milliseconds, or a
 * duration meaning "that long before `now`" (`90m`, `24h`, `7d`).
 */
export function parseTime(text: string, now: number): number {
  const ago = /^([0-9]{1,9})(s|m|h|d)$/.exec(text);
  if (ago) return now - Number(ago[1]) * (DURATION_MS[ago[2] as string] as number);
  if (/^[0-9]{1,15}$/.test(text)) return Number(text);
  if (/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(text)) {
    const ms = Date.parse(text);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new TypeError(
    `invalid time "${text.slice(0, 64)}": use RFC 3339 (2026-11-27T10:00:00Z), epoch milliseconds, or a duration ago (24h, 7d)`,
  );
}

/** Filter values by name (query parameters or flags) → AuditQuery. */
export function parseFilters(values: Partial<Record<FilterName, string>>, now: number): AuditQuery {
  const query: Record<string, unknown> = {};
  for (const name of FILTER_NAMES) {
    const value = values[name];
    if (value === undefined || value === '') continue;
    if (value.length > MAX_FILTER_LENGTH) throw new TypeError(`${name} is too long`);
    switch (name) {
      case 'decision':
        if (value !== 'allow' && value !== 'deny') throw new TypeError('decision must be "allow" or "deny"');
        query.decision = value;
        break;
      case 'status':
        if (!/^[1-5][0-9]{2}$/.test(value)) throw new TypeError('status must be an HTTP status code');
        query.status = Number(value);
        break;
      case 'from':
      case 'to':
        query[name] = parseTime(value, now);
        break;
      default:
        query[name] = value;
    }
  }
  return query;
}

const TABLE_COLUMNS = ['time', 'decision', 'status', 'principal', 'operation', 'resource', 'ruleId', 'reason'] as const;
const CSV_COLUMNS = [
  'time',
  'requestId',
  'traceId',
  'principal',
  'namespace',
  'serviceAccount',
  'pod',
  'operation',
  'permission',
  'resource',
  'project',
  'location',
  'decision',
  'ruleId',
  'reason',
  'errorCode',
  'status',
  'upstreamStatus',
  'latencyMs',
  'upstreamLatencyMs',
  'requestBytes',
  'responseBytes',
  'upstreamRequestId',
  'longRunningName',
  'policyVersion',
  'clientIp',
  'userAgent',
  'complete',
  'model',
  'tokens',
  'limitRule',
] as const;

export type OutputFormat = 'table' | 'json' | 'csv';

function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- objects are handled on this line
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function csvCell(value: unknown): string {
  const text = cell(value);
  // A leading = + - @ would make a spreadsheet evaluate the cell: audit data is caller-controlled.
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export function formatRecords(records: readonly StoredRecord[], format: OutputFormat, withHeader: boolean): string {
  if (format === 'json') return records.map((r) => `${JSON.stringify(r)}\n`).join('');
  if (format === 'csv') {
    const rows = records.map((r) => CSV_COLUMNS.map((c) => csvCell((r as unknown as Record<string, unknown>)[c])).join(','));
    return `${withHeader ? `${CSV_COLUMNS.join(',')}\n` : ''}${rows.map((row) => `${row}\n`).join('')}`;
  }
  const rows = records.map((r) =>
    TABLE_COLUMNS.map((c) => (c === 'status' && !r.complete ? 'incomplete' : cell((r as unknown as Record<string, unknown>)[c]))),
  );
  return renderTable(withHeader ? [TABLE_COLUMNS.map((c) => c.toUpperCase()), ...rows] : rows);
}

export function formatSummary(rows: readonly SummaryRow[], format: OutputFormat): string {
  if (format === 'json') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  if (format === 'csv')
    return `principal,permission,decision,count\n${rows
      .map((r) => [r.principal, r.permission, r.decision, r.count].map(csvCell).join(','))
      .map((l) => `${l}\n`)
      .join('')}`;
  return renderTable([
    ['PRINCIPAL', 'PERMISSION', 'DECISION', 'COUNT'],
    ...rows.map((r) => [cell(r.principal), cell(r.permission), r.decision, String(r.count)]),
  ]);
}

function renderTable(rows: readonly string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((row) => `${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')}\n`).join('');
}

/** `principal,namespace,model` (any non-empty subset, in any order) → the groups. @throws TypeError */
export function parseGroupBy(text: string): SummaryGroup[] {
  const groups = text
    .split(',')
    .map((g) => g.trim())
    .filter((g) => g !== '');
  if (groups.length === 0) throw new TypeError(`group-by needs at least one of ${SUMMARY_GROUPS.join(', ')}`);
  for (const g of groups) {
    if (!(SUMMARY_GROUPS as readonly string[]).includes(g))
      throw new TypeError(`cannot group by "${g.slice(0, 64)}": use ${SUMMARY_GROUPS.join(', ')}`);
  }
  if (new Set(groups).size !== groups.length) throw new TypeError('group-by names a column twice');
  return groups as SummaryGroup[];
}

const USAGE_COLUMNS = [
  ['requests', 'REQUESTS'],
  ['promptTokens', 'PROMPT'],
  ['candidatesTokens', 'CANDIDATES'],
  ['thoughtsTokens', 'THOUGHTS'],
  ['cachedTokens', 'CACHED'],
  ['toolTokens', 'TOOL'],
  ['totalTokens', 'TOTAL'],
] as const;

export function formatUsageSummary(rows: readonly UsageSummaryRow[], groupBy: readonly SummaryGroup[], format: OutputFormat): string {
  if (format === 'json') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  const values = (r: UsageSummaryRow) => [...groupBy.map((g) => r[g]), ...USAGE_COLUMNS.map(([k]) => r[k])];
  if (format === 'csv') {
    const header = [...groupBy, ...USAGE_COLUMNS.map(([k]) => k)].join(',');
    return `${header}\n${rows.map((r) => `${values(r).map(csvCell).join(',')}\n`).join('')}`;
  }
  return renderTable([
    [...groupBy.map((g) => g.toUpperCase()), ...USAGE_COLUMNS.map(([, h]) => h)],
    ...rows.map((r) => values(r).map(cell)),
  ]);
}
