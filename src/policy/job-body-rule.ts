/**
 * The body half of authorization for job-creating methods: the BodyRule
 * `job-conditions`. It wants a request when authorize left a
 * {@link PendingJobCheck} (an allow that rests on a rule with
 * `conditions.jobs`, or a dry-run rule with them), reads the job's facts, and
 * decides again (see job-decision.ts). A refusal names the field, the value
 * found and what the rule allows; a body whose job cannot be read is refused,
 * never waved through. An allowed body is left alone (forwarded byte for
 * byte). Dry-run rules only add their verdicts to `request.kvp.dryRun`.
 *
 * @module
 */
import type { FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';
import type { BodyRule, BodyVerdict } from '../inspect/body-rule.js';
import { decideWithBody, type DryRunOutcome } from './job-decision.js';
import { extractJobFacts, JobSpecError, type JobFacts } from './job-spec.js';

/** At most this many violations are spelled out in one message. */
const MAX_LISTED = 3;

export function jobConditionsRule(): BodyRule {
  return {
    name: 'job-conditions',
    wants: (request) => request.kvp.pendingJobCheck !== undefined,
    inspect(request, body): BodyVerdict {
      const ctx = request.kvp;
      const pending = ctx.pendingJobCheck;
      if (pending === undefined) return undefined;
      let facts: JobFacts;
      try {
        facts = extractJobFacts(pending.kind, body.json);
      } catch (error) {
        if (!(error instanceof JobSpecError)) throw error;
        // A job that cannot be read satisfies no condition: dry-run rules would have refused it too.
        addDryRun(
          request,
          pending.dryRun.map((rule): DryRunOutcome => ({ rule: rule.id, outcome: 'deny' })),
        );
        const first = pending.candidates[0];
        // Only dry-run rules wanted the body: they decide nothing, and Vertex AI judges the body itself.
        if (first === undefined) return undefined;
        ctx.decision = { allowed: false, ruleId: first.id, reason: 'job-conditions-failed' };
        return {
          refuse: new ProxyError(
            'ERR_REQUEST_JOB_SPEC_INVALID',
            `The job in the request body cannot be checked against policy rule ${first.id}: ${error.message}.`,
            {
              reason: 'job-spec-invalid',
              metadata: { rule: first.id, field: error.path },
            },
          ),
        };
      }
      const decided = decideWithBody(pending, facts, ctx.decision ?? { allowed: false, ruleId: null, reason: 'no-matching-rule' });
      addDryRun(request, decided.dryRun);
      ctx.decision = decided.decision;
      if (decided.decision.allowed) return undefined;
      const operation = ctx.operation;
      const principal = ctx.principal;
      const who = principal === undefined ? 'the caller' : principal.kind === 'kubernetes' ? principal.subject : principal.email;
      const listed = decided.violations.slice(0, MAX_LISTED).map((v) => v.message);
      const more = decided.violations.length > MAX_LISTED ? `; and ${decided.violations.length - MAX_LISTED} more` : '';
      return {
        refuse: new ProxyError(
          'ERR_AUTHZ_JOB_CONDITIONS',
          `Permission '${operation?.spec.permission ?? ''}' denied on resource '//aiplatform.googleapis.com/` +
            `${operation?.resource ?? ''}' for ${who}: ${listed.join('; ')}${more}.`,
          {
            reason: 'job-conditions-failed',
            metadata: {
              permission: operation?.spec.permission ?? '',
              resource: operation?.resource ?? '',
              principal: who,
              rule: decided.decision.ruleId ?? '',
              field: decided.violations[0]?.path ?? '',
            },
          },
        ),
      };
    },
  };
}

function addDryRun(request: FastifyRequest, outcomes: readonly DryRunOutcome[]): void {
  if (outcomes.length === 0) return;
  request.kvp.dryRun = [...(request.kvp.dryRun ?? []), ...outcomes];
}
