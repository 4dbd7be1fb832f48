/**
 * The policy as the authorize step's rules: (subject, operation) → Decision,
 * with the parts every policy decision shares whatever the route family:
 *
 * - a narrower operation may fall back to a broader one (an audit query
 *   filtered to one namespace is covered by a grant of the whole trail),
 *   but only where the policy has no rule about the narrower one;
 * - dry-run verdicts, and job-creating methods whose allow rests on job
 *   conditions (the body decides later, see policy/job-decision.ts);
 * - the stale-label rule: while the namespace-label view is stale, an allow
 *   stands only if no labelling could turn it into a deny
 *   (policy/label-independent.ts).
 *
 * In: the request context (principal, subject) and a {@link PolicyQuestion}.
 * Out: the {@link Verdict}; `operation`, `policyVersion`, `dryRun` and
 * `pendingJobCheck` are set on the context.
 *
 * @module
 * @throws ProxyError ERR_INTERNAL (500) when identity or operation is missing
 */
import type { FastifyRequest } from 'fastify';
import { principalName } from '../authn/principal.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { actionOf, type Decision } from '../policy/decision.js';
import { allowCandidates, dryRunByUrl } from '../policy/job-decision.js';
import { jobKindOf } from '../policy/job-spec.js';
import type { RequestContext } from '../request-context.js';
import type { Operation } from '../vertex/operation-types.js';
import type { AccessRules, Verdict } from './plugin.js';
import { denied, labelsStale, pipelineIncomplete } from './refusals.js';

/** What a route family's classifier asks the policy. */
export interface PolicyQuestion {
  /** The operation decided on (recorded as `request.kvp.operation`). */
  readonly operation: Operation;
  /** A broader operation whose grant covers this one where the policy has no rule about `operation`. */
  readonly broader?: Operation;
  /** Added to a denial's message: how a narrower grant could still apply. */
  readonly denialHint?: string;
}

export interface PolicyRulesOptions {
  /** The policy in force (a function so a reload can swap it between requests). */
  readonly policy: () => CompiledPolicy;
  /**
   * The same policy with every label-based grant removed and every
   * label-based deny applied regardless of labels (see label-independent.ts);
   * consulted only when the subject's label view is stale.
   */
  readonly labelIndependentPolicy?: () => CompiledPolicy;
}

/** The Vertex AI family's classifier: the operation the classify step found. */
export function classifiedOperation(request: FastifyRequest): PolicyQuestion {
  const operation = request.kvp.operation;
  if (operation === undefined) throw pipelineIncomplete('authorization reached without an operation');
  return { operation };
}

export function createPolicyRules(options: PolicyRulesOptions): AccessRules<PolicyQuestion> {
  return {
    decide(context: RequestContext, question: PolicyQuestion): Verdict {
      const { subject, principal } = context;
      // Earlier steps guarantee these; refusing keeps a wiring mistake from ever allowing.
      if (subject === undefined || principal === undefined) throw pipelineIncomplete('authorization reached without identity');
      const policy = options.policy();
      let operation = question.operation;
      let action = actionOf(operation);
      let decision = policy.evaluate(subject, action);
      if (question.broader !== undefined && !decision.allowed && decision.ruleId === null) {
        // No rule names the narrower resource: a grant of the broader one covers it (a rule that denies it still wins).
        const broaderAction = actionOf(question.broader);
        const broader = policy.evaluate(subject, broaderAction);
        if (broader.allowed) {
          operation = question.broader;
          action = broaderAction;
          decision = broader;
        }
      }
      context.operation = operation;
      context.policyVersion = policy.version;
      const jobKind = jobKindOf(operation.spec);
      const dryRun = dryRunByUrl(policy, subject, action, jobKind);
      if (dryRun !== undefined) {
        context.dryRun = dryRun.outcomes;
        if (jobKind !== undefined && dryRun.needBody.length > 0)
          context.pendingJobCheck = { kind: jobKind, candidates: [], dryRun: dryRun.needBody };
      }
      if (!decision.allowed) return { decision, refusal: denied(decision, operation, principalName(principal), question.denialHint) };
      let decidedBy: CompiledPolicy | undefined = policy;
      if (subject.labelsStale !== undefined) {
        // The last known labels say allow; go ahead only if no labelling could say otherwise.
        decidedBy = options.labelIndependentPolicy?.();
        const independent = decidedBy?.evaluate(subject, action);
        if (independent === undefined || !independent.allowed) {
          const stale: Decision = { allowed: false, ruleId: independent?.ruleId ?? decision.ruleId, reason: 'labels-stale' };
          return { decision: stale, refusal: labelsStale(stale, operation, principalName(principal), subject.labelsStale.ageSeconds) };
        }
        decision = independent;
      }
      if (jobKind !== undefined && decidedBy !== undefined) {
        // The decision may rest on an allow rule with job conditions: the body decides (see job-decision.ts).
        const candidates = allowCandidates(decidedBy, decision, subject, action);
        if (candidates.length > 0) context.pendingJobCheck = { kind: jobKind, candidates, dryRun: context.pendingJobCheck?.dryRun ?? [] };
      }
      return { decision };
    },
  };
}
