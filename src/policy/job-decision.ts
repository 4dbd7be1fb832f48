/**
 * Decisions that the URL alone cannot settle: allow rules with job conditions
 * (decided again once the body is read) and dry-run rules (evaluated and
 * recorded, never deciding). Pure.
 *
 * The URL-level decision treats a conditional allow rule as if it had no
 * conditions. When that decision is an allow by a conditional rule on a
 * job-creating method, {@link pendingJobCheck} lists, in config order, every
 * matching allow rule up to and including the first one without conditions;
 * {@link decideWithBody} then picks the first whose conditions the body
 * satisfies. So, exactly as without conditions, the request is allowed when
 * some matching allow rule (conditions included) allows it and no deny rule
 * matches, and the rule named is the first such allow rule in config order.
 *
 * @module
 */
import type { CompiledPolicy } from './compile.js';
import type { Decision, PolicyAction, PolicySubject } from './decision.js';
import { ruleMatches, type CompiledRule } from './evaluator.js';
import { checkJobConditions, type JobViolation } from './job-conditions.js';
import type { JobFacts, JobKind } from './job-spec.js';

/** One dry-run rule's verdict on one request. */
export interface DryRunOutcome {
  readonly rule: string;
  /**
   * What the rule would have decided: a dry-run deny that matches says `deny`; a dry-run allow says `allow`, or `deny` when the job fails
   * its conditions.
   */
  readonly outcome: 'allow' | 'deny';
}

/** What is left to decide once the body is read. */
export interface PendingJobCheck {
  readonly kind: JobKind;
  /** Allow candidates, config order; empty when the enforced decision does not depend on the body. */
  readonly candidates: readonly CompiledRule[];
  /** Dry-run allow rules with job conditions that match the request (their verdict needs the body). */
  readonly dryRun: readonly CompiledRule[];
}

/** The decision once the body is read, and the violations behind a refusal (first candidate's first). */
export interface BodyDecision {
  readonly decision: Decision;
  readonly violations: readonly JobViolation[];
  readonly dryRun: readonly DryRunOutcome[];
}

/**
 * Dry-run verdicts that need no body, and the dry-run rules that need one.
 * Allocates only when the policy has dry-run rules.
 */
export function dryRunByUrl(
  policy: CompiledPolicy,
  subject: PolicySubject,
  action: PolicyAction,
  kind: JobKind | undefined,
): { outcomes: DryRunOutcome[]; needBody: CompiledRule[] } | undefined {
  if (policy.dryRunRules.length === 0) return undefined;
  const outcomes: DryRunOutcome[] = [];
  const needBody: CompiledRule[] = [];
  for (const rule of policy.dryRunRules) {
    if (!ruleMatches(rule, subject, action)) continue;
    if (rule.deny) outcomes.push({ rule: rule.id, outcome: 'deny' });
    else if (kind !== undefined && rule.jobConditions !== undefined) needBody.push(rule);
    else outcomes.push({ rule: rule.id, outcome: 'allow' });
  }
  return { outcomes, needBody };
}

/** The allow candidates when `decision` is an allow by a conditional rule on a job-creating method; else empty. */
export function allowCandidates(policy: CompiledPolicy, decision: Decision, subject: PolicySubject, action: PolicyAction): CompiledRule[] {
  if (!decision.allowed || !policy.hasJobConditions || decision.ruleId === null) return [];
  const first =
    policy.rules.find((rule) => rule.decision === decision) ??
    policy.rules.find((rule) => !rule.dryRun && !rule.deny && rule.id === decision.ruleId);
  if (first === undefined || first.jobConditions === undefined) return [];
  const candidates = [first];
  for (let i = first.index + 1; i < policy.rules.length; i++) {
    const rule = policy.rules[i] as CompiledRule;
    if (rule.dryRun || rule.deny || !ruleMatches(rule, subject, action)) continue;
    candidates.push(rule);
    if (rule.jobConditions === undefined) break;
  }
  return candidates;
}

/** The decision once the job's facts are known. */
export function decideWithBody(pending: PendingJobCheck, facts: JobFacts, urlDecision: Decision): BodyDecision {
  let decision = urlDecision;
  const violations: JobViolation[] = [];
  if (pending.candidates.length > 0) {
    let allowedBy: CompiledRule | undefined;
    for (const rule of pending.candidates) {
      const failed = rule.jobConditions === undefined ? [] : checkJobConditions(rule.jobConditions, facts, rule.id);
      if (failed.length === 0) {
        allowedBy = rule;
        break;
      }
      violations.push(...failed);
    }
    decision =
      allowedBy !== undefined
        ? allowedBy.decision
        : { allowed: false, ruleId: (pending.candidates[0] as CompiledRule).id, reason: 'job-conditions-failed' };
  }
  const dryRun = pending.dryRun.map((rule): DryRunOutcome => ({
    rule: rule.id,
    outcome: rule.jobConditions === undefined || checkJobConditions(rule.jobConditions, facts, rule.id).length === 0 ? 'allow' : 'deny',
  }));
  return { decision, violations: decision.allowed ? [] : violations, dryRun };
}
