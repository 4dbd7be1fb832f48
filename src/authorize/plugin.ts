/**
 * Step ④ authorize: (subject, operation) → `request.kvp.decision`. Denied
 * requests end here with 403; the decision names the rule that made it.
 *
 * @module
 */
import fp from 'fastify-plugin';
import { ProxyError } from '../errors.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { actionOf, type Decision } from '../policy/decision.js';
import type { Operation } from '../vertex/operation-types.js';
import { allowCandidates, dryRunByUrl } from '../policy/job-decision.js';
import { jobKindOf } from '../policy/job-spec.js';

export interface AuthorizePluginOptions {
  /** The policy in force (a function so a reload can swap it between requests). */
  readonly policy: () => CompiledPolicy;
  /**
   * The same policy with every label-based grant removed and every
   * label-based deny applied regardless of labels (see label-independent.ts);
   * consulted only when the subject's label view is stale.
   */
  readonly labelIndependentPolicy?: () => CompiledPolicy;
}

export const authorizePlugin = fp<AuthorizePluginOptions>(
  async (app, options) => {
    app.addHook('onRequest', (request, _reply, done) => {
      const { subject, operation, principal } = request.kvp;
      if (subject === undefined || operation === undefined || principal === undefined) {
        // Earlier steps guarantee these; refusing keeps a wiring mistake from ever allowing.
        done(
          new ProxyError('ERR_INTERNAL', 'INTERNAL', 'authorization reached without identity or operation', {
            reason: 'pipeline-incomplete',
          }),
        );
        return;
      }
      const policy = options.policy();
      const decision = policy.evaluate(subject, actionOf(operation));
      request.kvp.decision = decision;
      request.kvp.policyVersion = policy.version;
      const jobKind = jobKindOf(operation.spec);
      const dryRun = dryRunByUrl(policy, subject, actionOf(operation), jobKind);
      if (dryRun !== undefined) {
        request.kvp.dryRun = dryRun.outcomes;
        if (jobKind !== undefined && dryRun.needBody.length > 0)
          request.kvp.pendingJobCheck = { kind: jobKind, candidates: [], dryRun: dryRun.needBody };
      }
      if (!decision.allowed) {
        done(denied(decision, operation, principal.kind === 'kubernetes' ? principal.subject : principal.email));
        return;
      }
      if (subject.labelsStale !== undefined) {
        // The last known labels say allow; go ahead only if no labelling could say otherwise.
        const independent = options.labelIndependentPolicy?.().evaluate(subject, actionOf(operation));
        if (independent === undefined || !independent.allowed) {
          const stale: Decision = { allowed: false, ruleId: independent?.ruleId ?? decision.ruleId, reason: 'labels-stale' };
          request.kvp.decision = stale;
          done(
            labelsStale(
              stale,
              operation,
              principal.kind === 'kubernetes' ? principal.subject : principal.email,
              subject.labelsStale.ageSeconds,
            ),
          );
          return;
        }
        request.kvp.decision = independent;
      }
      if (jobKind !== undefined && request.kvp.decision.allowed) {
        // The decision may rest on an allow rule with job conditions: the body decides (see job-decision.ts).
        const decidedBy = subject.labelsStale !== undefined ? options.labelIndependentPolicy?.() : policy;
        const candidates = decidedBy === undefined ? [] : allowCandidates(decidedBy, request.kvp.decision, subject, actionOf(operation));
        if (candidates.length > 0)
          request.kvp.pendingJobCheck = { kind: jobKind, candidates, dryRun: request.kvp.pendingJobCheck?.dryRun ?? [] };
      }
      done();
    });
  },
  { name: 'kvp-authorize', fastify: '5.x', dependencies: ['kvp-classify'] },
);

/** The 403 the caller sees: Vertex AI's own wording, plus who and why. */
export function denied(decision: Decision, operation: Operation, principalName: string): ProxyError {
  const why = decision.ruleId === null ? 'no policy rule allows it' : `denied by policy rule "${decision.ruleId}"`;
  return new ProxyError(
    'ERR_AUTHZ_DENIED',
    'PERMISSION_DENIED',
    `Permission '${operation.spec.permission}' denied on resource '//aiplatform.googleapis.com/${operation.resource}' for ${principalName}: ${why}.`,
    {
      reason: decision.reason,
      metadata: {
        permission: operation.spec.permission,
        resource: operation.resource,
        principal: principalName,
        ...(decision.ruleId === null ? {} : { rule: decision.ruleId }),
      },
    },
  );
}

/** 403 for a decision that depends on namespace labels while the label view is stale. */
export function labelsStale(decision: Decision, operation: Operation, principalName: string, ageSeconds: number | null): ProxyError {
  const age = ageSeconds === null ? 'has not synced yet' : `was last in sync ${ageSeconds}s ago`;
  return new ProxyError(
    'ERR_IDENTITY_LABELS_STALE',
    'PERMISSION_DENIED',
    `Permission '${operation.spec.permission}' denied on resource '//aiplatform.googleapis.com/${operation.resource}' for ${principalName}: the decision depends on namespace labels and the proxy's label view is stale (it ${age}).`,
    {
      reason: 'labels-stale',
      metadata: {
        permission: operation.spec.permission,
        resource: operation.resource,
        principal: principalName,
        ...(decision.ruleId === null ? {} : { rule: decision.ruleId }),
      },
    },
  );
}
