/**
 * The audit query API on the data port, for auditors and on-call engineers:
 *
 *   GET /audit/v1/records?principal=&namespace=&permission=&operation=&resource=&decision=&status=&rule=&from=&to=&pageSize=&pageToken=
 *   GET /audit/v1/summary?…same filters…   (counts by principal × permission × decision)
 *   GET /audit/v1/summary?groupBy=namespace,model&…filters…   (requests and tokens summed by principal|namespace|model)
 *
 * Its steps, in its own encapsulated context (registered from app.ts):
 * authenticate (the same step as the Vertex AI path) → identify → classify
 * as the audit operation (`audit.records.list` / `audit.summary.get` on
 * resource `audit/records` / `audit/summary`, or `audit/namespaces/NS` when
 * the query is filtered to the one namespace NS) → authorize against the
 * policy for the permission `audit.read` (the Vertex AI path's authorize
 * step with this API's classifier, {@link auditReadClassifier}; the
 * stale-label rule included). A grant with
 * `resources: ["audit/namespaces/ml"]` thus reads ml's records only. Every call gets its own audit record,
 * like any data-port request. The audit console (src/console/) classifies its
 * pages with the same classifier and reads through the same functions
 * ({@link queryRecords}, {@link querySummary}).
 *
 * Errors: `ERR_AUDIT_INVALID_QUERY` (400) for a bad filter or page token,
 * `ERR_AUTHZ_DENIED` (403) without an `audit.read` grant,
 * `ERR_AUDIT_UNAVAILABLE` (503) when no store is configured or it fails.
 *
 * @module
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';
import type { PolicyQuestion } from '../authorize/policy-rules.js';
import type { Operation, OperationSpec } from '../vertex/operation-types.js';
import { FILTER_NAMES, parseFilters, parseGroupBy, type FilterName } from './query.js';
import { AUDIT_READ_PERMISSION } from './settings.js';
import type { RequestContext } from '../request-context.js';
import type { AuditQuery, AuditStore, RecordPage, SummaryGroup, SummaryRow, UsageSummaryRow } from './store.js';

const spec = (id: string, rpc: string): OperationSpec => ({
  id,
  service: 'AuditService',
  protoPackage: 'kube_vertex_proxy.audit.v1',
  rpc,
  httpMethod: 'GET',
  permission: AUDIT_READ_PERMISSION,
  permissionType: 'DATA_READ',
  groups: [],
  streaming: false,
  versions: ['v1'],
  longRunning: false,
});

/** An audit-read operation (permission `audit.read`); the console's pages are classified with it too. */
export const operationFor = (id: string, rpc: string, resource: string): Operation => ({
  spec: spec(id, rpc),
  version: 'v1',
  project: null,
  location: null,
  resource,
  methodName: `kube_vertex_proxy.audit.v1.AuditService.${rpc}`,
});

const ROUTES: Readonly<Record<string, Operation>> = {
  '/audit/v1/records': operationFor('audit.records.list', 'ListRecords', 'audit/records'),
  '/audit/v1/summary': operationFor('audit.summary.get', 'GetSummary', 'audit/summary'),
};

const MAX_PAGE_SIZE = 1000;
const DEFAULT_PAGE_SIZE = 100;

export interface AuditApiOptions {
  readonly store: AuditStore | undefined;
}

export function invalid(message: string): ProxyError {
  return new ProxyError('ERR_AUDIT_INVALID_QUERY', message, { reason: 'invalid-audit-query' });
}

export function unavailable(cause?: unknown): ProxyError {
  return new ProxyError('ERR_AUDIT_UNAVAILABLE', 'audit store unavailable', { cause, reason: 'audit-store-unavailable' });
}

/** The audit API's routes → the audit-read operation each is (undefined: not an audit API method). */
export function auditApiOperation(path: string): Operation | undefined {
  // Only the GET routes registered below reach the classifier (fastify answers other methods before it).
  return Object.hasOwn(ROUTES, path) ? ROUTES[path] : undefined;
}

const NAMESPACE_HINT = 'Grants scoped to namespaces (resources: ["audit/namespaces/NS"]) need the query filtered to one: namespace=NS.';

/**
 * The classifier of the audit-read routes (this API's, and the console's
 * with its own `routeOf`), for the authorize step: the policy decides who
 * may read the trail. A query filtered to one namespace asks first for that
 * namespace's records (`audit/namespaces/NS`); a grant of the whole trail
 * (`audit/records`, `audit/summary`) covers it too, unless a rule denies
 * the namespace.
 *
 * @throws ProxyError ERR_REQUEST_UNKNOWN_METHOD (404) for a path or method that is no audit-read route
 */
export function auditReadClassifier(
  routeOf: (path: string, method: string) => Operation | undefined,
): (request: FastifyRequest) => PolicyQuestion {
  return (request) => {
    const operation = routeOf(request.url.split('?', 1)[0] as string, request.method);
    if (operation === undefined)
      throw new ProxyError('ERR_REQUEST_UNKNOWN_METHOD', 'Unknown audit API method.', { reason: 'unknown-method' });
    const namespace = scopedNamespace(request.query);
    if (namespace === undefined) return { operation, denialHint: NAMESPACE_HINT };
    return { operation: { ...operation, resource: namespaceResource(namespace) }, broader: operation };
  };
}

/** Kubernetes namespace names (RFC 1123 labels): nothing else names a namespace resource. */
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The one namespace a query is filtered to (an exact, valid name), or undefined. */
function scopedNamespace(query: unknown): string | undefined {
  const value = (query as Record<string, unknown> | undefined)?.namespace;
  return typeof value === 'string' && NAMESPACE_NAME.test(value) ? value : undefined;
}

/** The resource an audit-read grant names to cover one namespace's records. */
export function namespaceResource(namespace: string): string {
  return `audit/namespaces/${namespace}`;
}

function readParams(request: FastifyRequest): {
  filters: Partial<Record<FilterName, string>>;
  pageSize: number;
  pageToken: string | undefined;
  groupBy: string | undefined;
} {
  const raw = request.query as Record<string, string | string[] | undefined>;
  const filters: Partial<Record<FilterName, string>> = {};
  let pageSize = DEFAULT_PAGE_SIZE;
  let pageToken: string | undefined;
  let groupBy: string | undefined;
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value !== 'string') throw invalid(`parameter "${name.slice(0, 64)}" is given more than once`);
    if (name === 'pageSize') {
      if (!/^[0-9]{1,4}$/.test(value) || Number(value) < 1 || Number(value) > MAX_PAGE_SIZE)
        throw invalid(`pageSize must be 1…${MAX_PAGE_SIZE}`);
      pageSize = Number(value);
    } else if (name === 'pageToken') {
      pageToken = value === '' ? undefined : value;
    } else if (name === 'groupBy') {
      groupBy = value;
    } else if ((FILTER_NAMES as readonly string[]).includes(name)) {
      filters[name as FilterName] = value;
    } else {
      throw invalid(`unknown parameter "${name.slice(0, 64)}" (filters: ${FILTER_NAMES.join(', ')}, pageSize, pageToken, groupBy)`);
    }
  }
  return { filters, pageSize, pageToken, groupBy };
}

/**
 * The one read path of the trail: the query API below and the audit console
 * both read through these, after the authorize step allowed the read ({@link auditReadClassifier})
 * (`context` carries that decision, so a grant narrower than the whole
 * trail applies to both alike).
 */
export async function queryRecords(
  store: AuditStore | undefined,
  _context: RequestContext,
  query: AuditQuery,
  pageSize: number,
  pageToken: string | undefined,
): Promise<RecordPage> {
  if (store === undefined) throw unavailable();
  try {
    return await store.query(query, pageSize, pageToken);
  } catch (error) {
    if (error instanceof TypeError && error.message === 'invalid cursor') throw invalid('invalid pageToken');
    throw unavailable(error);
  }
}

/** Counts by principal × permission × decision; see {@link queryRecords}. */
export async function querySummary(store: AuditStore | undefined, _context: RequestContext, query: AuditQuery): Promise<SummaryRow[]> {
  if (store === undefined) throw unavailable();
  try {
    return await store.summary(query);
  } catch (error) {
    throw unavailable(error);
  }
}

/** Requests and summed tokens by the given groups (principal, namespace, model); see {@link queryRecords}. */
export async function queryUsageSummary(
  store: AuditStore | undefined,
  _context: RequestContext,
  query: AuditQuery,
  groupBy: readonly SummaryGroup[],
): Promise<UsageSummaryRow[]> {
  if (store === undefined) throw unavailable();
  try {
    return await store.usageSummary(query, groupBy);
  } catch (error) {
    throw unavailable(error);
  }
}

/** The routes; register inside the context that ran authn, identity and authorize with {@link auditReadClassifier}. */
// eslint-disable-next-line @typescript-eslint/require-await -- a fastify plugin: async tells fastify when registration is done
export async function auditQueryRoutes(app: FastifyInstance, { store }: AuditApiOptions): Promise<void> {
  const parse = (request: FastifyRequest) => {
    const params = readParams(request);
    try {
      return { ...params, query: parseFilters(params.filters, Date.now()) };
    } catch (error) {
      throw invalid((error as Error).message);
    }
  };

  app.get('/audit/v1/records', async (request, reply) => {
    const { query, pageSize, pageToken } = parse(request);
    const page = await queryRecords(store, request.kvp, query, pageSize, pageToken);
    reply.header('cache-control', 'no-store');
    return { records: page.records, ...(page.nextCursor === undefined ? {} : { nextPageToken: page.nextCursor }) };
  });

  app.get('/audit/v1/summary', async (request, reply) => {
    const { query, groupBy: groupText } = parse(request);
    let groupBy: SummaryGroup[] | undefined;
    try {
      groupBy = groupText === undefined ? undefined : parseGroupBy(groupText);
    } catch (error) {
      throw invalid((error as Error).message);
    }
    if (groupBy !== undefined) {
      const usageRows = await queryUsageSummary(store, request.kvp, query, groupBy);
      reply.header('cache-control', 'no-store');
      return {
        ...(query.from === undefined ? {} : { from: new Date(query.from).toISOString() }),
        ...(query.to === undefined ? {} : { to: new Date(query.to).toISOString() }),
        groupBy,
        rows: usageRows,
      };
    }
    const rows = await querySummary(store, request.kvp, query);
    reply.header('cache-control', 'no-store');
    return {
      ...(query.from === undefined ? {} : { from: new Date(query.from).toISOString() }),
      ...(query.to === undefined ? {} : { to: new Date(query.to).toISOString() }),
      rows,
    };
  });
}
