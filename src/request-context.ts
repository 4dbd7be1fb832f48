/**
 * What the pipeline learns about one request, step by step. One object per
 * request (allocated by the audit step, the first hook), read by the audit
 * record at the end: who (authn, identity), what (classify), the verdict
 * (authorize) and what happened upstream (forward).
 *
 * @module
 */
import type { Principal } from './authn/principal.js';
import type { ProxyError } from './errors.js';
import type { Decision, PolicySubject } from './policy/decision.js';
import type { TraceSpan } from './tracing/tracing.js';
import type { DryRunOutcome, PendingJobCheck } from './policy/job-decision.js';
import type { Operation } from './vertex/operation-types.js';
import type { ResponseUsage } from './usage/usage.js';

export interface RequestContext {
  /** process.hrtime.bigint() at arrival. */
  readonly startedAt: bigint;
  /** Wall clock at arrival (epoch ms). */
  readonly receivedAt: number;
  direction: 'outbound' | 'inbound';
  principal: Principal | undefined;
  subject: PolicySubject | undefined;
  operation: Operation | undefined;
  /** Inbound only: the callback route's prefix (from the config, so a bounded set). */
  route: string | undefined;
  decision: Decision | undefined;
  /** Policy checksum in force when the decision was made. */
  policyVersion: string | undefined;
  /** Origin the request is forwarded to (validated location → host). */
  upstreamBase: string | undefined;
  /** The refusal or failure, when there was one. */
  failure: ProxyError | undefined;
  upstreamStartedAt: bigint | undefined;
  upstreamHeadersAt: bigint | undefined;
  upstreamStatus: number | undefined;
  /** Set when the upstream response stream failed after headers were sent. */
  upstreamStreamError: string | undefined;
  /** Vertex AI's `x-goog-request-id`, when the response carried one. */
  upstreamRequestId: string | undefined;
  /** The operation or job name a long-running call's response named (read from its first bytes, never stored whole). */
  longRunningName: string | undefined;
  requestBytes: number;
  /** Verdicts of the dry-run rules that matched (they never change `decision`). */
  dryRun: DryRunOutcome[] | undefined;
  /** Set by authorize when the decision (or a dry-run verdict) depends on the job spec in the body. */
  pendingJobCheck: PendingJobCheck | undefined;
  /** The Google service account the request went upstream as, when it was not the proxy's own (vertex.identities). */
  upstreamIdentity: string | undefined;
  /** Token usage read from the response as it passed (operations that carry usage, 2xx only). */
  usage: ResponseUsage | undefined;
  /** The limit rules that applied to this request (ids, config order). */
  limitRules: readonly string[] | undefined;
  /** The limit rule that refused it (or would have, in dry-run: `limitDryRunRefusals`). */
  limitRefusedBy: string | undefined;
  /** Dry-run limit rules that would have refused this request. */
  limitDryRunRefusals: readonly string[] | undefined;
  /**
   * Set by the inspect step when it read the body whole: exactly the bytes to forward (the caller's, or a rewrite the config asked for).
   */
  forwardBody: Buffer | undefined;
  /** The request's server span; undefined when tracing is off (every step's tracing code checks this one field). */
  span: TraceSpan | undefined;
  /** The upstream call's client span, ended with the response. */
  upstreamSpan: TraceSpan | undefined;
}

export function newRequestContext(): RequestContext {
  return {
    startedAt: process.hrtime.bigint(),
    receivedAt: Date.now(),
    direction: 'outbound',
    principal: undefined,
    subject: undefined,
    operation: undefined,
    route: undefined,
    decision: undefined,
    policyVersion: undefined,
    upstreamBase: undefined,
    failure: undefined,
    upstreamStartedAt: undefined,
    upstreamHeadersAt: undefined,
    upstreamStatus: undefined,
    upstreamStreamError: undefined,
    upstreamRequestId: undefined,
    longRunningName: undefined,
    requestBytes: 0,
    dryRun: undefined,
    pendingJobCheck: undefined,
    upstreamIdentity: undefined,
    usage: undefined,
    limitRules: undefined,
    limitRefusedBy: undefined,
    limitDryRunRefusals: undefined,
    forwardBody: undefined,
    span: undefined,
    upstreamSpan: undefined,
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    kvp: RequestContext;
  }
}
