/**
 * One audit record per request, allowed, denied and failed alike, built from
 * what the pipeline learnt (`RequestContext`). Pure: no I/O.
 *
 * What never goes in: the bearer token, the proxy's own token, request or
 * response bodies, the query string (it could carry a credential a caller
 * tried to smuggle).
 *
 * @module
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ProxyError } from '../errors.js';
import type { RequestContext } from '../request-context.js';
import { modelOf } from '../usage/operations.js';
import type { TokenUsage } from '../usage/usage.js';

export type AuditDecision = 'allow' | 'deny';

export interface AuditRecord {
  /** RFC 3339 time the request arrived. */
  readonly time: string;
  readonly requestId: string;
  readonly direction: 'outbound' | 'inbound';
  readonly traceId: string | undefined;
  readonly spanId: string | undefined;
  readonly traceSampled: boolean | undefined;
  /** `system:serviceaccount:NS:SA`, or a Google email; undefined when unauthenticated. */
  readonly principal: string | undefined;
  readonly issuer: string | undefined;
  readonly namespace: string | undefined;
  /** The namespace's labels as the policy saw them (what label selectors matched against); undefined when unknown. */
  readonly namespaceLabels: Readonly<Record<string, string>> | undefined;
  readonly serviceAccount: string | undefined;
  readonly pod: string | undefined;
  readonly podUid: string | undefined;
  readonly tokenId: string | undefined;
  /** Operation id from the table (`endpoints.predict`), when the path classified. */
  readonly operation: string | undefined;
  /** Inbound (callbacks): the route prefix from the config, when the path fell under one. */
  readonly route?: string | undefined;
  readonly methodName: string | undefined;
  readonly permission: string | undefined;
  readonly permissionType: string | undefined;
  readonly resource: string | undefined;
  readonly project: string | undefined;
  readonly location: string | undefined;
  readonly decision: AuditDecision;
  /** The rule that decided; undefined when no rule did (default deny, or refused before policy). */
  readonly ruleId: string | undefined;
  /** Why: `allowed-by-rule`, `no-matching-rule`, `token-expired`, `upstream-timeout`, … */
  readonly reason: string;
  /** The stable error code, when the request was refused or failed. */
  readonly errorCode: string | undefined;
  readonly policyVersion: string | undefined;
  readonly httpMethod: string;
  /** Path only, truncated; never the query. */
  readonly path: string;
  readonly status: number;
  readonly upstreamStatus: number | undefined;
  /** Set when the upstream stream broke after the response had started. */
  readonly upstreamError: string | undefined;
  /** Vertex AI's request id (`x-goog-request-id`), when it sent one. */
  readonly upstreamRequestId: string | undefined;
  /** For long-running operations: the operation or job name Vertex AI returned, to join later calls to this one. */
  readonly longRunningName: string | undefined;
  readonly latencyMs: number;
  readonly upstreamLatencyMs: number | undefined;
  readonly requestBytes: number;
  readonly responseBytes: number;
  readonly clientIp: string | undefined;
  readonly userAgent: string | undefined;
  /**
   * Set on the summary record of unauthenticated requests (see audit/flood.ts):
   * how many more requests from this address with this reason were refused in
   * the window (beyond the one stored whole), first and last time.
   */
  readonly aggregated?: { readonly count: number; readonly firstAt: string; readonly lastAt: string } | undefined;
  /** Dry-run rules that matched and what each would have decided; they did not change `decision`. */
  readonly dryRun?: ReadonlyArray<{ readonly rule: string; readonly outcome: 'allow' | 'deny' }> | undefined;
  /** The Google service account the request went upstream as (vertex.identities); absent: the proxy's own identity. */
  readonly upstreamIdentity?: string | undefined;
  /**
   * The model the call used: `google/gemini-2.5-flash` (publisher model), `endpoints/E`, or the OpenAI-compatible endpoint's `model`. Only
   * for operations that carry usage.
   */
  readonly model?: string | undefined;
  /** The model version the response named. */
  readonly modelVersion?: string | undefined;
  /** Token counts the response reported (absent counts were not reported). */
  readonly tokens?: TokenUsage | undefined;
  /** For a successful call of an operation that carries usage: whether its response reported any. */
  readonly usageReported?: boolean | undefined;
  /** Limit rules that applied (ids). */
  readonly limitRules?: readonly string[] | undefined;
  /** The limit rule that refused the request. */
  readonly limitRule?: string | undefined;
  /** Dry-run limit rules that would have refused it. */
  readonly limitDryRun?: readonly string[] | undefined;
}

export interface ResponseFacts {
  readonly requestId: string;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly clientIp: string | undefined;
  readonly status: number;
  readonly responseBytes: number;
  /** Whether the response ended before it was complete (client went away, upstream broke). */
  readonly aborted: boolean;
  /** Whether a status line went out; when not, `status` is only node's default. */
  readonly responseStarted: boolean;
  readonly endedAt: bigint;
}

/**
 * The status recorded when the caller went away before any response started
 * (nginx's 499; Google's CANCELLED): node's default 200 would claim a success
 * nobody received.
 */
export const CLIENT_CLOSED_REQUEST = 499;

const MAX_PATH = 512;
const MAX_USER_AGENT = 256;

export function buildAuditRecord(ctx: RequestContext, facts: ResponseFacts): AuditRecord {
  const principal = ctx.principal;
  const operation = ctx.operation;
  // With tracing on, the record names the proxy's own span (whose parent is the caller's, if any).
  const trace: TraceContext | undefined = ctx.span !== undefined ? ctx.span : parseTrace(facts.headers);
  const failure: ProxyError | undefined = ctx.failure;
  const allowed = ctx.decision?.allowed === true;
  const queryAt = facts.url.indexOf('?');
  const path = queryAt === -1 ? facts.url : facts.url.slice(0, queryAt);
  const userAgent = facts.headers['user-agent'];
  return {
    time: new Date(ctx.receivedAt).toISOString(),
    requestId: facts.requestId,
    direction: ctx.direction,
    traceId: trace?.traceId,
    spanId: trace?.spanId,
    traceSampled: trace?.sampled,
    principal: principal === undefined ? undefined : principal.kind === 'kubernetes' ? principal.subject : principal.email,
    issuer: principal?.issuer,
    namespace: principal?.kind === 'kubernetes' ? principal.namespace : undefined,
    namespaceLabels: ctx.subject?.labels,
    serviceAccount: principal?.kind === 'kubernetes' ? principal.serviceAccount : undefined,
    pod: principal?.kind === 'kubernetes' ? principal.pod?.name : undefined,
    podUid: principal?.kind === 'kubernetes' ? principal.pod?.uid : undefined,
    tokenId: principal?.kind === 'kubernetes' ? principal.tokenId : undefined,
    operation: operation?.spec.id,
    route: ctx.route,
    methodName: operation?.methodName,
    permission: operation?.spec.permission,
    permissionType: operation?.spec.permissionType,
    resource: operation?.resource,
    project: operation?.project ?? undefined,
    location: operation?.location ?? undefined,
    // Allowed means the policy allowed it; whether the upstream then succeeded is in status/upstreamStatus.
    decision: allowed ? 'allow' : 'deny',
    ruleId: ctx.decision?.ruleId ?? undefined,
    reason: reasonOf(ctx, failure, facts),
    errorCode: failure?.code,
    policyVersion: ctx.policyVersion,
    httpMethod: facts.method,
    path: sanitize(path, MAX_PATH),
    status: facts.aborted && !facts.responseStarted ? CLIENT_CLOSED_REQUEST : facts.status,
    upstreamStatus: ctx.upstreamStatus,
    upstreamError: ctx.upstreamStreamError,
    upstreamRequestId: ctx.upstreamRequestId,
    longRunningName: ctx.longRunningName,
    latencyMs: msBetween(ctx.startedAt, facts.endedAt),
    upstreamLatencyMs: ctx.upstreamStartedAt === undefined ? undefined : msBetween(ctx.upstreamStartedAt, facts.endedAt),
    requestBytes: ctx.requestBytes,
    responseBytes: facts.responseBytes,
    clientIp: facts.clientIp,
    userAgent: typeof userAgent === 'string' ? sanitize(userAgent, MAX_USER_AGENT) : undefined,
    // Only when present, so records without them serialize (and chain) exactly as before.
    ...(ctx.dryRun === undefined || ctx.dryRun.length === 0 ? {} : { dryRun: ctx.dryRun }),
    ...(ctx.upstreamIdentity === undefined ? {} : { upstreamIdentity: ctx.upstreamIdentity }),
    model: modelOf(operation, ctx.usage?.modelVersion),
    modelVersion: ctx.usage?.modelVersion === undefined ? undefined : sanitize(ctx.usage.modelVersion, 128),
    tokens: ctx.usage?.tokens,
    usageReported: ctx.usage === undefined ? undefined : ctx.usage.tokens !== undefined,
    limitRules: ctx.limitRules,
    limitRule: ctx.limitRefusedBy,
    limitDryRun: ctx.limitDryRunRefusals,
  };
}

function reasonOf(ctx: RequestContext, failure: ProxyError | undefined, facts: ResponseFacts): string {
  if (failure !== undefined) return failure.reason;
  if (ctx.upstreamStreamError !== undefined) return 'upstream-stream-error';
  if (facts.aborted) return 'client-aborted';
  return ctx.decision?.reason ?? 'not-decided';
}

function msBetween(start: bigint, end: bigint): number {
  return Math.round(Number(end - start) / 1e4) / 100;
}

/** Control characters would let a caller forge log lines. */
function sanitize(text: string, max: number): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  // eslint-disable-next-line no-control-regex
  return cut.replace(/[\u0000-\u001f\u007f]/g, '?');
}

export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string | undefined;
  readonly sampled: boolean | undefined;
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const CLOUD_TRACE = /^([0-9a-fA-F]{32})(?:\/([0-9]{1,20}))?(?:;o=([01]))?$/;

/** W3C `traceparent` first, then Google's `X-Cloud-Trace-Context`. */
export function parseTrace(headers: IncomingHttpHeaders): TraceContext | undefined {
  const traceparent = headers.traceparent;
  if (typeof traceparent === 'string') {
    const m = TRACEPARENT.exec(traceparent);
    if (m && m[1] !== '00000000000000000000000000000000') {
      return { traceId: m[1] as string, spanId: m[2], sampled: (parseInt(m[3] as string, 16) & 1) === 1 };
    }
  }
  const cloud = headers['x-cloud-trace-context'];
  if (typeof cloud === 'string') {
    const m = CLOUD_TRACE.exec(cloud);
    if (m) {
      const span = m[2] === undefined ? undefined : BigInt(m[2]).toString(16).padStart(16, '0').slice(-16);
      return { traceId: (m[1] as string).toLowerCase(), spanId: span, sampled: m[3] === undefined ? undefined : m[3] === '1' };
    }
  }
  return undefined;
}
