/**
 * The policy as it must be applied when namespace labels cannot be trusted
 * (the label view is past its staleness bound, or has never synced).
 *
 * Derived from the rules, compiled once with the real policy:
 * - an **allow** rule with a `namespaceSelector` is dropped: a grant that
 *   rests on labels is not made on a stale view;
 * - a **deny** rule with a `namespaceSelector` keeps its other matchers and
 *   loses the selector, so it matches as if the labels said yes: a guard
 *   rail written on labels still stops whatever it could stop;
 * - every other rule is unchanged.
 *
 * So the derived policy allows a request only if the real policy allows it
 * under EVERY possible labelling of the namespace; when it denies and the
 * real policy (on the last known labels) allows, the decision depends on
 * labels and the request is refused as "label view stale".
 *
 * In: validated rules. Out: a {@link CompiledPolicy}.
 *
 * @module
 */
import type { PolicyRule } from '../config/schema.js';
import { compilePolicy, type CompiledPolicy, type PolicyContext } from './compile.js';

export function labelIndependentRules(rules: readonly PolicyRule[]): PolicyRule[] {
  const out: PolicyRule[] = [];
  for (const rule of rules) {
    if (rule.subjects.namespaceSelector === undefined) {
      out.push(rule);
      continue;
    }
    if (rule.effect === 'allow') continue;
    const { namespaceSelector: _dropped, ...rest } = rule.subjects;
    // A deny on labels alone applies to every namespace whose labels are unknown.
    const subjects = rest.serviceAccounts === undefined && rest.namespaces === undefined ? { namespaces: ['*'] } : rest;
    out.push({ ...rule, subjects });
  }
  return out;
}

/**
 * Compiles the derived rules. The rules were validated with the real policy;
 * the context only feeds those checks (matching never reads it), so an empty
 * one is passed and the problems list is ignored.
 */
export function compileLabelIndependent(rules: readonly PolicyRule[]): CompiledPolicy {
  const context: PolicyContext = { knownPermissions: new Set(), projects: [], locations: [] };
  return compilePolicy(labelIndependentRules(rules), context).policy;
}
