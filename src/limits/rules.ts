/**
 * Limit rules, compiled: which rules apply to a request (the policy's own
 * subject and scope matchers), the bucket each one counts the request in, and
 * the counter keys and windows of its limits. Pure.
 *
 * Windows are fixed calendar windows in UTC: the minute, the day, the month
 * (a request at 10:00:59 and one at 10:01:00 are in different minutes). A
 * fixed window admits at most twice the limit across a window boundary in the
 * worst case; it is what a budget ("per day", "per month") means, and what
 * two replicas can agree on from their clocks alone.
 *
 * @module
 */
import type { LimitRule, PolicyRule } from '../config/schema.js';
import { compilePolicy, type PolicyContext, type PolicyProblem } from '../policy/compile.js';
import type { PolicyAction, PolicySubject } from '../policy/decision.js';
import { compileRule, ruleMatches, type CompiledRule } from '../policy/evaluator.js';

export const LIMIT_KINDS = ['requestsPerMinute', 'concurrentRequests', 'tokensPerMinute', 'tokensPerDay', 'tokensPerMonth'] as const;
export type LimitKind = (typeof LIMIT_KINDS)[number];
export const TOKEN_KINDS = ['tokensPerMinute', 'tokensPerDay', 'tokensPerMonth'] as const satisfies readonly LimitKind[];

export interface CompiledLimit {
  readonly id: string;
  readonly enforce: boolean;
  readonly per: 'namespace' | 'serviceAccount';
  readonly limits: ReadonlyArray<{ readonly kind: LimitKind; readonly limit: number }>;
  readonly matcher: CompiledRule;
}

/** One counter a request is checked against. */
export interface LimitCheck {
  readonly rule: CompiledLimit;
  readonly kind: LimitKind;
  readonly limit: number;
  /** Counter key (without the store's prefix): rule, bucket, kind and window. */
  readonly key: string;
  /** The bucket as the caller may read it (`namespace ml`, `service account ml/trainer`). */
  readonly bucket: string;
  /** End of the current window (epoch ms); undefined for concurrency. */
  readonly windowEndMs: number | undefined;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

/** The window a moment falls in, for a kind: its id and its end. */
export function windowOf(kind: LimitKind, nowMs: number): { id: string; endMs: number } | undefined {
  switch (kind) {
    case 'requestsPerMinute':
    case 'tokensPerMinute': {
      const n = Math.floor(nowMs / MINUTE);
      return { id: `m${n}`, endMs: (n + 1) * MINUTE };
    }
    case 'tokensPerDay': {
      const n = Math.floor(nowMs / DAY);
      return { id: `d${n}`, endMs: (n + 1) * DAY };
    }
    case 'tokensPerMonth': {
      const date = new Date(nowMs);
      const y = date.getUTCFullYear();
      const m = date.getUTCMonth();
      return { id: `M${y}-${m + 1}`, endMs: Date.UTC(y, m + 1, 1) };
    }
    case 'concurrentRequests':
      return undefined;
  }
}

const SHORT: Record<LimitKind, string> = {
  requestsPerMinute: 'rpm',
  concurrentRequests: 'cc',
  tokensPerMinute: 'tpm',
  tokensPerDay: 'tpd',
  tokensPerMonth: 'tpM',
};

export function bucketOf(rule: CompiledLimit, subject: PolicySubject): { key: string; text: string } {
  return rule.per === 'namespace'
    ? { key: `ns/${subject.namespace}`, text: `namespace ${subject.namespace}` }
    : { key: `sa/${subject.namespace}/${subject.serviceAccount}`, text: `service account ${subject.namespace}/${subject.serviceAccount}` };
}

export function checkKey(rule: CompiledLimit, bucketKey: string, kind: LimitKind, windowId: string | undefined): string {
  return `${rule.id}:${bucketKey}:${SHORT[kind]}${windowId === undefined ? '' : `:${windowId}`}`;
}

/** Every check for the rules that apply, at `nowMs`. */
export function checksFor(
  rules: readonly CompiledLimit[],
  subject: PolicySubject,
  nowMs: number,
  kinds?: ReadonlySet<LimitKind>,
): LimitCheck[] {
  const checks: LimitCheck[] = [];
  for (const rule of rules) {
    const bucket = bucketOf(rule, subject);
    for (const { kind, limit } of rule.limits) {
      if (kinds !== undefined && !kinds.has(kind)) continue;
      const window = windowOf(kind, nowMs);
      checks.push({
        rule,
        kind,
        limit,
        key: checkKey(rule, bucket.key, kind, window?.id),
        bucket: bucket.text,
        windowEndMs: window?.endMs,
      });
    }
  }
  return checks;
}

/** The rules whose subjects and scope match, in config order. */
export function applicableLimits(rules: readonly CompiledLimit[], subject: PolicySubject, action: PolicyAction): CompiledLimit[] {
  const out: CompiledLimit[] = [];
  for (const rule of rules) if (ruleMatches(rule.matcher, subject, action)) out.push(rule);
  return out;
}

function asPolicyRule(rule: LimitRule): PolicyRule {
  return {
    id: rule.id,
    effect: 'allow',
    subjects: rule.subjects,
    permissions: rule.permissions ?? ['*'],
    ...(rule.resources === undefined ? {} : { resources: rule.resources }),
  };
}

/** Compiles the rules; problems use the loader's path syntax (`limits.rules[2].permissions[0]`). */
export function compileLimits(rules: readonly LimitRule[], context: PolicyContext): { limits: CompiledLimit[]; problems: PolicyProblem[] } {
  const { problems: policyProblems } = compilePolicy(rules.map(asPolicyRule), context);
  const problems = policyProblems.map((p) => ({
    path: p.path.replace(/^policy\.rules/, 'limits.rules'),
    message: p.message.replaceAll('policy.rules[', 'limits.rules['),
  }));
  const limits = rules.map((rule, i): CompiledLimit => {
    const list = LIMIT_KINDS.flatMap((kind) => (rule[kind] === undefined ? [] : [{ kind, limit: rule[kind] }]));
    if (list.length === 0)
      problems.push({ path: `limits.rules[${i}]`, message: `sets no limit: give at least one of ${LIMIT_KINDS.join(', ')}` });
    return { id: rule.id, enforce: rule.mode !== 'dryRun', per: rule.per, limits: list, matcher: compileRule(asPolicyRule(rule), i) };
  });
  return { limits, problems };
}
