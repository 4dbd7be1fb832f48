/**
 * `kube-vertex-proxy audit query|summary|verify`: the audit trail from the
 * command line, read from the store named in the config (the postgres sink if
 * there is one, else the first sqlite sink) or, with `--proxy URL --token-file FILE`, from a running
 * proxy's query API.
 *
 * Exit codes: 0 done (verify: chain intact), 1 verify found a broken link or
 * the config is invalid, 2 usage error.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import {
  formatRecords,
  formatSummary,
  formatUsageSummary,
  parseFilters,
  parseGroupBy,
  type FilterName,
  type OutputFormat,
} from '../audit/query.js';
import { queryStoreOf } from '../audit/settings.js';
import type { AuditStore, StoredRecord, SummaryGroup, SummaryRow, UsageSummaryRow } from '../audit/store.js';
import { loadOrReport, parse, UsageError, usageOf } from './args.js';

export const AUDIT_USAGE = `Usage:
  kube-vertex-proxy audit query   --config FILE [filters] [--limit N] [--format table|json|csv]
  kube-vertex-proxy audit summary --config FILE [filters] [--group-by principal|namespace|model[,…]] [--format table|json|csv]
  kube-vertex-proxy audit verify  --config FILE [--since T] [--until T]
Filters: --principal P --namespace NS --permission PERM|PATTERN --operation OP --resource R|PATTERN
         --decision allow|deny --status CODE --rule ID --since T --until T
         (T: RFC 3339, epoch ms, or a duration ago: 90m, 24h, 7d; patterns use *)
--group-by sums requests and tokens per group (without it: counts by principal, permission, decision).
Instead of --config, --proxy URL --token-file FILE asks a running proxy (needs an audit.read grant).
`;

const FILTER_OPTIONS = {
  principal: { type: 'string' },
  namespace: { type: 'string' },
  permission: { type: 'string' },
  operation: { type: 'string' },
  resource: { type: 'string' },
  decision: { type: 'string' },
  status: { type: 'string' },
  rule: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
} as const;

const PAGE = 1000;

export async function runAudit(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'query':
    case 'summary':
      return runQuery(sub, rest);
    case 'verify':
      return runVerify(rest);
    default:
      process.stderr.write(`${sub === undefined ? '' : `audit: unknown subcommand "${sub}"\n`}${AUDIT_USAGE}`);
      return 2;
  }
}

async function openConfiguredStore(configPath: string | undefined): Promise<AuditStore | undefined> {
  const settings = await loadOrReport(configPath ?? process.env.KVP_CONFIG);
  if (settings === undefined) return undefined;
  const first = queryStoreOf(settings.audit);
  if (first === undefined) throw new UsageError('the config names no audit store (a sqlite or postgres sink)');
  if (first.type === 'sqlite') {
    const { openSqliteStore } = await import('../audit/sqlite.js');
    return openSqliteStore({ path: first.path, writer: 'cli', maxBatch: 1, readOnly: true });
  }
  const { openPostgresStore } = await import('../audit/postgres.js');
  return openPostgresStore({
    ...first,
    writer: 'cli',
    maxBatch: 1,
    migrate: false,
    onError: (error) => process.stderr.write(`audit store: ${(error as Error).message}\n`),
  });
}

async function runQuery(kind: 'query' | 'summary', argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string', short: 'c' },
    format: { type: 'string' },
    limit: { type: 'string' },
    proxy: { type: 'string' },
    'token-file': { type: 'string' },
    'group-by': { type: 'string' },
    ...FILTER_OPTIONS,
  });
  if (values['group-by'] !== undefined && kind !== 'summary') throw new UsageError('--group-by is for audit summary');
  const groupByText = values['group-by'];
  const groupBy = groupByText === undefined ? undefined : usageOf(() => parseGroupBy(groupByText));
  const format = (values.format ?? 'table') as OutputFormat;
  if (!['table', 'json', 'csv'].includes(format)) throw new UsageError('--format must be table, json or csv');
  const limit = values.limit === undefined ? Infinity : Number(values.limit);
  if (!(limit > 0)) throw new UsageError('--limit must be a positive number');
  const filters: Partial<Record<FilterName, string>> = {};
  for (const name of ['principal', 'namespace', 'permission', 'operation', 'resource', 'decision', 'status', 'rule'] as const) {
    if (values[name] !== undefined) filters[name] = values[name];
  }
  if (values.since !== undefined) filters.from = values.since;
  if (values.until !== undefined) filters.to = values.until;
  const query = usageOf(() => parseFilters(filters, Date.now()));

  if (values.proxy !== undefined && !URL.canParse(values.proxy))
    throw new UsageError('--proxy must be a URL, e.g. http://kube-vertex-proxy.kvp:8080');
  if (values.proxy !== undefined) return queryProxy(kind, values.proxy, values['token-file'], filters, format, limit, groupBy);

  const store = await openConfiguredStore(values.config);
  if (store === undefined) return 1;
  try {
    if (kind === 'summary') {
      process.stdout.write(
        groupBy === undefined
          ? formatSummary(await store.summary(query), format)
          : formatUsageSummary(await store.usageSummary(query, groupBy), groupBy, format),
      );
      return 0;
    }
    let cursor: string | undefined;
    let shown = 0;
    do {
      const page = await store.query(query, Math.min(PAGE, limit - shown), cursor);
      process.stdout.write(formatRecords(page.records, format, shown === 0));
      shown += page.records.length;
      cursor = page.nextCursor;
    } while (cursor !== undefined && shown < limit);
    return 0;
  } finally {
    await store.close();
  }
}

async function queryProxy(
  kind: 'query' | 'summary',
  base: string,
  tokenFile: string | undefined,
  filters: Partial<Record<FilterName, string>>,
  format: OutputFormat,
  limit: number,
  groupBy: SummaryGroup[] | undefined,
): Promise<number> {
  if (tokenFile === undefined)
    throw new UsageError('--proxy needs --token-file FILE (a Kubernetes service-account token with an audit.read grant)');
  const token = (await readFile(tokenFile, 'utf8')).trim();
  const get = async (path: string, params: URLSearchParams) => {
    const response = await fetch(`${base.replace(/\/+$/, '')}${path}?${params.toString()}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = (await response.json()) as Record<string, unknown>;
    if (!response.ok) {
      const error = body.error as { message?: string } | undefined;
      throw new Error(`the proxy answered ${response.status}: ${error?.message ?? 'no message'}`);
    }
    return body;
  };
  const params = new URLSearchParams(Object.entries<string>(filters));
  if (kind === 'summary') {
    if (groupBy !== undefined) params.set('groupBy', groupBy.join(','));
    const body = await get('/audit/v1/summary', params);
    process.stdout.write(
      groupBy === undefined
        ? formatSummary(body.rows as SummaryRow[], format)
        : formatUsageSummary(body.rows as UsageSummaryRow[], groupBy, format),
    );
    return 0;
  }
  let shown = 0;
  let token_: string | undefined;
  do {
    params.set('pageSize', String(Math.min(PAGE, limit - shown)));
    if (token_ !== undefined) params.set('pageToken', token_);
    const body = await get('/audit/v1/records', params);
    const records = body.records as StoredRecord[];
    process.stdout.write(formatRecords(records, format, shown === 0));
    shown += records.length;
    token_ = body.nextPageToken as string | undefined;
  } while (token_ !== undefined && shown < limit);
  return 0;
}

async function runVerify(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: 'string', short: 'c' }, since: { type: 'string' }, until: { type: 'string' } });
  const range = usageOf(() =>
    parseFilters(
      { ...(values.since === undefined ? {} : { from: values.since }), ...(values.until === undefined ? {} : { to: values.until }) },
      Date.now(),
    ),
  );
  const store = await openConfiguredStore(values.config);
  if (store === undefined) return 1;
  try {
    const result = await store.verify({
      ...(range.from === undefined ? {} : { from: range.from }),
      ...(range.to === undefined ? {} : { to: range.to }),
    });
    if (result.ok) {
      process.stdout.write(
        `ok: ${result.entries} entries from ${result.writers} writer${result.writers === 1 ? '' : 's'}; every hash chain is intact\n`,
      );
      return 0;
    }
    const b = result.broken as NonNullable<typeof result.broken>;
    process.stdout.write(
      `BROKEN: writer ${b.writer}, seq ${b.seq} (row id ${b.id}): ${b.problem}\n${result.entries} entries checked from ` +
        `${result.writers} writer${result.writers === 1 ? '' : 's'}\n`,
    );
    return 1;
  } finally {
    await store.close();
  }
}
