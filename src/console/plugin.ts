/**
 * The auditor's console at `/audit/ui/` on the data port: the audit trail
 * in a browser, read-only, off unless `audit.console.enabled`.
 *
 * Its steps, in its own encapsulated context (registered from app.ts), in
 * request order: sign in (IAP's signed header when `iapAudience` is set;
 * otherwise the Kubernetes token the page's script sends as a Bearer header;
 * with neither, a GET gets the sign-in page) → authenticate (the Vertex AI
 * path's step, skipped when IAP signed the caller in) → identify → classify
 * and authorize as an `audit.read` operation (the authorize step with the query API's classifier) →
 * the view, which reads the trail through the query API's functions. Every
 * request, page views included, gets its audit record like any other on the
 * data port. The script and stylesheet are served from a sibling context
 * without sign-in (they hold no data).
 *
 * Every response carries a strict Content-Security-Policy (scripts, styles
 * and connections from this origin only; no inline script or style; no
 * framing), `nosniff` and `no-referrer`. The one state-changing request
 * (running a verification) must carry the console's `x-kvp-console` header,
 * which a cross-site form cannot send, so IAP's cookie cannot be ridden.
 *
 * Errors are pages, not JSON: 401 the sign-in page (or IAP's refusal), 403
 * the refusal page (who, what, and nothing of the trail), 400/404/503 an
 * error page.
 *
 * @module
 */
import { Readable } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import {
  invalid as invalidQuery,
  operationFor,
  queryRecords,
  querySummary,
  queryUsageSummary,
  auditReadClassifier,
  unavailable,
} from '../audit/query-api.js';
import { formatRecords, parseTime } from '../audit/query.js';
import type { AuditQuery, AuditStore, StoredRecord } from '../audit/store.js';
import { authnPlugin } from '../authn/plugin.js';
import { principalName } from '../authn/principal.js';
import type { TokenVerifier } from '../authn/verifier.js';
import type { PolicyRule } from '../config/schema.js';
import { ProxyError, toProxyError, unauthenticated } from '../errors.js';
import type { NamespaceLabelSource } from '../identity/labels.js';
import { identityPlugin } from '../identity/plugin.js';
import { authorizePlugin } from '../authorize/plugin.js';
import type { PolicyQuestion } from '../authorize/policy-rules.js';
import type { AccessRules } from '../authorize/plugin.js';
import type { CompiledPolicy } from '../policy/compile.js';
import type { Decision } from '../policy/decision.js';
import type { Operation } from '../vertex/operation-types.js';
import { CONSOLE_ICON, CONSOLE_SCRIPT, CONSOLE_STYLES } from './assets.js';
import type { TimeBucket } from './chart.js';
import { IAP_ASSERTION_HEADER, type IapVerifier } from './iap.js';
import { readConsoleParams, toAuditQuery, type ConsoleParams } from './params.js';
import {
  BASE,
  chainView,
  errorView,
  EXPORT_LIMIT,
  recordView,
  refusalView,
  searchView,
  signInView,
  summaryView,
  type Viewer,
  type VerifyRun,
} from './views.js';

export interface ConsoleOptions {
  readonly store: AuditStore | undefined;
  readonly policy: () => CompiledPolicy;
  /** The policy's rules as the authorize step applies them (the data port's, stale-label rule included). */
  readonly policyRules: AccessRules<PolicyQuestion>;
  /** The rules in force, to show the rule that decided a record. */
  readonly rules: () => readonly PolicyRule[];
  readonly verifier: TokenVerifier;
  readonly labels: NamespaceLabelSource;
  /** Present when `audit.console.iapAudience` is set. */
  readonly iap: IapVerifier | undefined;
}

const CONSOLE_HEADER = 'x-kvp-console';
const PAGE_SIZE = 50;
const EXPORT_PAGE = 1000;
const SUMMARY_ROWS = 500;
const BUCKETS = 24;
const DAY_MS = 86_400_000;

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};
const HTML = 'text/html; charset=utf-8';

const verifyOperation = operationFor('audit.console.verify', 'ConsoleVerify', 'audit/chain');
const OPERATIONS = {
  records: operationFor('audit.console.records', 'ConsoleSearch', 'audit/records'),
  record: operationFor('audit.console.record', 'ConsoleRecord', 'audit/records'),
  export: operationFor('audit.console.export', 'ConsoleExport', 'audit/records'),
  summary: operationFor('audit.console.summary', 'ConsoleSummary', 'audit/summary'),
  chain: operationFor('audit.console.chain', 'ConsoleChain', 'audit/chain'),
  verify: { ...verifyOperation, spec: { ...verifyOperation.spec, httpMethod: 'POST' } },
} satisfies Record<string, Operation>;

/** No policy question is asked for a page without audit data; its record says so (and names no operation or permission). */
const PUBLIC_PAGE: Decision = Object.freeze({ allowed: true, ruleId: null, reason: 'public-page' });

/** The console's routes → the audit-read operation each is (undefined: not a console page). */
export function consoleOperation(path: string, method: string): Operation | undefined {
  if (method === 'POST') return path === `${BASE}/chain/verify` ? OPERATIONS.verify : undefined;
  if (method !== 'GET' && method !== 'HEAD') return undefined;
  if (path === `${BASE}/`) return OPERATIONS.records;
  if (path === `${BASE}/summary`) return OPERATIONS.summary;
  if (path === `${BASE}/chain`) return OPERATIONS.chain;
  if (path === `${BASE}/export.csv` || path === `${BASE}/export.json`) return OPERATIONS.export;
  if (/^\/audit\/ui\/records\/[^/]+$/.test(path)) return OPERATIONS.record;
  return undefined;
}

function viewerOf(request: FastifyRequest): Viewer {
  const principal = (request.kvp as typeof request.kvp | null)?.principal; // null before the audit hook
  if (principal === undefined) return { auth: 'none', name: undefined };
  return { auth: principal.kind === 'google' ? 'iap' : 'token', name: principalName(principal) };
}

function sendPage(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').type(HTML).send(body);
}

export const consolePlugin = fp<ConsoleOptions>(
  async (app, options) => {
    // Script and stylesheet: no sign-in, no data, cached for a year under content-hashed names.
    // eslint-disable-next-line @typescript-eslint/require-await -- a fastify plugin: async tells fastify when registration is done
    await app.register(async function consoleAssets(scope) {
      scope.addHook('onSend', async (_request, reply) => {
        reply.headers(SECURITY_HEADERS);
      });
      const serve = (asset: { name: string; body: string }, type: string) =>
        scope.get(`${BASE}/static/${asset.name}`, async (request, reply) => {
          request.kvp.decision = PUBLIC_PAGE;
          return reply.header('cache-control', 'public, max-age=31536000, immutable').type(type).send(asset.body);
        });
      serve(CONSOLE_SCRIPT, 'text/javascript; charset=utf-8');
      serve(CONSOLE_STYLES, 'text/css; charset=utf-8');
      serve(CONSOLE_ICON, 'image/svg+xml');
      scope.get(BASE, async (request, reply) => {
        request.kvp.decision = PUBLIC_PAGE;
        return reply.redirect(`${BASE}/`, 308);
      });
    });

    await app.register(async function consolePages(scope) {
      scope.addHook('onSend', async (_request, reply) => {
        reply.headers(SECURITY_HEADERS);
      });
      scope.setErrorHandler((error: FastifyError | ProxyError, request, reply) => {
        const refusal =
          error instanceof ProxyError
            ? error
            : typeof error.statusCode === 'number' && error.statusCode < 500
              ? new ProxyError('ERR_REQUEST_MALFORMED', 'The request is malformed.', {
                  cause: error,
                  reason: 'malformed-request',
                })
              : toProxyError(error);
        if (request.kvp as typeof request.kvp | null) request.kvp.failure ??= refusal;
        if (refusal.httpStatus >= 500)
          request.log.error({ err: refusal.cause ?? refusal, code: refusal.code, requestId: request.id }, refusal.message);
        const viewer = viewerOf(request);
        const message = refusal.expose ? refusal.message : 'The audit store is unavailable right now; try again shortly.';
        const viaIap = options.iap !== undefined && request.headers[IAP_ASSERTION_HEADER] !== undefined;
        const body =
          refusal.httpStatus === 401 && !viaIap
            ? signInView(`That token was not accepted: ${message}`)
            : refusal.httpStatus === 401
              ? errorView(viewer, 401, `Your Identity-Aware Proxy sign-in could not be verified: ${message}`)
              : refusal.code === 'ERR_AUTHZ_DENIED'
                ? refusalView(viewer, refusalMessage(request, viewer))
                : errorView(viewer, refusal.httpStatus, message);
        if (refusal.headers) reply.headers(refusal.headers);
        sendPage(reply, refusal.httpStatus, body);
      });

      // Sign-in: IAP's header, else the script's Bearer header (next step), else the sign-in page.
      scope.addHook('onRequest', (request, reply, done) => {
        const assertion = request.headers[IAP_ASSERTION_HEADER];
        if (options.iap !== undefined && assertion !== undefined) {
          if (typeof assertion !== 'string') {
            done(
              unauthenticated('ERR_AUTHN_MALFORMED_CREDENTIALS', 'The IAP assertion header is repeated.', {
                reason: 'malformed-credentials',
              }),
            );
            return;
          }
          options.iap.verify(assertion).then(
            (principal) => {
              request.kvp.principal = principal;
              done();
            },
            (error: unknown) => done(error as Error),
          );
          return;
        }
        if (request.headers.authorization === undefined && request.method === 'GET' && request.headers[CONSOLE_HEADER] === undefined) {
          // A browser's navigation (no script yet, or a token that only the page's script can send).
          request.kvp.decision = PUBLIC_PAGE;
          sendPage(reply, 200, signInView(undefined));
          return;
        }
        done();
      });
      await scope.register(authnPlugin, { verifier: options.verifier, accept: 'kubernetes' });
      await scope.register(identityPlugin, { labels: options.labels });
      await scope.register(authorizePlugin({ classifier: auditReadClassifier(consoleOperation), rules: options.policyRules }));
      await scope.register(consoleRoutes, options);
    });
  },
  { name: 'kvp-console', fastify: '5.x', dependencies: ['kvp-audit'] },
);

function parseOrError<T>(parse: () => T): { value: T; error?: undefined } | { value?: undefined; error: string } {
  try {
    return { value: parse() };
  } catch (error) {
    if (error instanceof TypeError) return { error: error.message };
    throw error;
  }
}

// eslint-disable-next-line @typescript-eslint/require-await -- a fastify plugin: async tells fastify when registration is done
async function consoleRoutes(app: FastifyInstance, options: ConsoleOptions): Promise<void> {
  const { store } = options;
  let lastVerify: VerifyRun | undefined;
  let verifying = false;

  app.get(`${BASE}/`, async (request, reply) => {
    const raw = request.query as Record<string, unknown>;
    const pageToken = typeof raw.pageToken === 'string' && raw.pageToken !== '' ? raw.pageToken : undefined;
    const parsed = parseOrError(() => {
      const params = readConsoleParams(raw);
      return { params, query: toAuditQuery(params, Date.now()) };
    });
    if (parsed.error !== undefined) {
      request.kvp.failure = invalidQuery(parsed.error);
      return sendPage(
        reply,
        400,
        searchView(viewerOf(request), {
          params: safeParams(raw),
          records: [],
          nextPageToken: undefined,
          paged: false,
          error: parsed.error,
        }),
      );
    }
    const page = await queryRecords(store, request.kvp, parsed.value.query, PAGE_SIZE, pageToken);
    return sendPage(
      reply,
      200,
      searchView(viewerOf(request), {
        params: parsed.value.params,
        records: page.records,
        nextPageToken: page.nextCursor,
        paged: pageToken !== undefined,
      }),
    );
  });

  app.get<{ Params: { requestId: string } }>(`${BASE}/records/:requestId`, async (request, reply) => {
    const at = (request.query as Record<string, unknown>).at;
    if (typeof at !== 'string' || !/^[0-9]{1,15}$/.test(at))
      throw invalidQuery('a record link needs the time of the record (?at=epoch milliseconds)');
    const from = Number(at);
    // The record's arrival time narrows the look-up to one millisecond of the time index.
    const page = await queryRecords(store, request.kvp, { from, to: from + 1 }, EXPORT_PAGE, undefined);
    const record = page.records.find((r) => r.requestId === request.params.requestId);
    if (record === undefined)
      throw new ProxyError('ERR_REQUEST_UNKNOWN_ROUTE', 'No record with this id at this time (it may have passed the retention period).', {
        reason: 'record-not-found',
      });
    const rule = record.ruleId === undefined ? undefined : options.rules().find((r) => r.id === record.ruleId);
    return sendPage(reply, 200, recordView(viewerOf(request), { record, rule, policyVersion: options.policy().version }));
  });

  app.get(`${BASE}/summary`, async (request, reply) => {
    const raw = request.query as Record<string, unknown>;
    const now = Date.now();
    const parsed = parseOrError(() => {
      const params = readConsoleParams(raw);
      const query = toAuditQuery(params, now, { from: '24h' });
      const from = query.from ?? now - DAY_MS;
      const to = query.to ?? now;
      if (to <= from) throw new TypeError('"to" must be later than "from"');
      return { params, query, from, to };
    });
    if (parsed.error !== undefined) {
      request.kvp.failure = invalidQuery(parsed.error);
      return sendPage(
        reply,
        400,
        summaryView(viewerOf(request), {
          params: safeParams(raw),
          from: now - DAY_MS,
          to: now,
          rows: [],
          buckets: [],
          error: parsed.error,
        }),
      );
    }
    const { params, query, from, to } = parsed.value;
    const rows = await querySummary(store, request.kvp, { ...query, from, to });
    // The chart: the same summary per interval (the query API has one aggregate, and it is indexed by time).
    const width = Math.max(1, Math.ceil((to - from) / BUCKETS));
    const buckets: TimeBucket[] = [];
    for (let start = from; start < to; start += width) {
      const end = Math.min(to, start + width);
      const counts = await querySummary(store, request.kvp, { ...query, from: start, to: end });
      let allow = 0;
      let deny = 0;
      for (const row of counts) {
        if (row.decision === 'allow') allow += row.count;
        else deny += row.count;
      }
      buckets.push({ from: start, to: end, allow, deny });
    }
    const usage = await queryUsageSummary(store, request.kvp, { ...query, from, to }, ['namespace', 'model']);
    return sendPage(
      reply,
      200,
      summaryView(viewerOf(request), { params, from, to, rows: rows.slice(0, SUMMARY_ROWS), buckets, usage: usage.slice(0, SUMMARY_ROWS) }),
    );
  });

  const chainRange = (raw: Record<string, unknown>, now: number) =>
    parseOrError(() => {
      const params = readConsoleParams(raw);
      const range = {
        from: params.from === undefined ? undefined : parseTime(params.from, now),
        to: params.to === undefined ? undefined : parseTime(params.to, now),
      };
      return {
        params: {
          ...(params.from === undefined ? {} : { from: params.from }),
          ...(params.to === undefined ? {} : { to: params.to }),
        },
        range,
      };
    });

  app.get(`${BASE}/chain`, async (request, reply) => {
    const parsed = chainRange(request.query as Record<string, unknown>, Date.now());
    if (parsed.error !== undefined) {
      request.kvp.failure = invalidQuery(parsed.error);
      return sendPage(reply, 400, chainView(viewerOf(request), { params: {}, last: lastVerify, justRan: false, error: parsed.error }));
    }
    return sendPage(reply, 200, chainView(viewerOf(request), { params: parsed.value.params, last: lastVerify, justRan: false }));
  });

  app.post(`${BASE}/chain/verify`, async (request, reply) => {
    const fetchSite = request.headers['sec-fetch-site'];
    if (request.headers[CONSOLE_HEADER] !== '1' || (fetchSite !== undefined && fetchSite !== 'same-origin')) {
      throw new ProxyError('ERR_CONSOLE_CROSS_SITE', 'A verification can only be started from the console page itself.', {
        reason: 'console-cross-site',
      });
    }
    const now = Date.now();
    const parsed = chainRange(request.query as Record<string, unknown>, now);
    if (parsed.error !== undefined) throw invalidQuery(parsed.error);
    if (store === undefined) throw unavailable();
    if (verifying) {
      return sendPage(
        reply,
        409,
        chainView(viewerOf(request), {
          params: parsed.value.params,
          last: lastVerify,
          justRan: false,
          error: 'A verification is already running on this replica; try again when it has finished.',
        }),
      );
    }
    const { range, params } = parsed.value;
    verifying = true;
    const by = viewerOf(request).name ?? 'unknown';
    try {
      const result = await store.verify({
        ...(range.from === undefined ? {} : { from: range.from }),
        ...(range.to === undefined ? {} : { to: range.to }),
      });
      lastVerify = { at: now, by, from: range.from, to: range.to, result };
    } catch (error) {
      lastVerify = { at: now, by, from: range.from, to: range.to, failed: true };
      throw unavailable(error);
    } finally {
      verifying = false;
    }
    return sendPage(reply, 200, chainView(viewerOf(request), { params, last: lastVerify, justRan: true }));
  });

  const exportRoute = (format: 'csv' | 'json') =>
    app.get(`${BASE}/export.${format}`, async (request, reply) => {
      const parsed = parseOrError(() => toAuditQuery(readConsoleParams(request.query as Record<string, unknown>), Date.now()));
      if (parsed.error !== undefined) throw invalidQuery(parsed.error);
      const query: AuditQuery = parsed.value;
      // The first page is read before the response starts, so a store failure is still a clean 503.
      const first = await queryRecords(store, request.kvp, query, EXPORT_PAGE, undefined);
      const context = request.kvp;
      async function* lines(): AsyncGenerator<string> {
        let page: { records: StoredRecord[]; nextCursor: string | undefined } = first;
        let sent = 0;
        let header = true;
        for (;;) {
          const records = page.records.slice(0, EXPORT_LIMIT - sent);
          yield formatRecords(records, format, header);
          header = false;
          sent += records.length;
          if (page.nextCursor === undefined || sent >= EXPORT_LIMIT) return;
          page = await queryRecords(store, context, query, EXPORT_PAGE, page.nextCursor);
        }
      }
      return reply
        .header('cache-control', 'no-store')
        .header('content-disposition', `attachment; filename="audit-records.${format === 'csv' ? 'csv' : 'jsonl'}"`)
        .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .send(Readable.from(lines()));
    });
  exportRoute('csv');
  exportRoute('json');
}

/** Who, what, and which rule (if any) said no: nothing of the trail itself. */
function refusalMessage(request: FastifyRequest, viewer: Viewer): string {
  const decision = request.kvp.decision;
  const why = decision?.ruleId ? `policy rule "${decision.ruleId}" denies it` : 'no policy rule grants it';
  return `${viewer.name ?? 'You'} may not read ${request.kvp.operation?.resource ?? 'the audit trail'}: ${why}.`;
}

/** Filter values for re-displaying a form after an error: strings only, nothing parsed. */
function safeParams(raw: Record<string, unknown>): ConsoleParams {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) if (typeof value === 'string') out[name] = value;
  return out;
}
