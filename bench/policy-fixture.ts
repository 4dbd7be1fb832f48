/**
 * A large, realistic policy for the benchmarks: one rule per namespace, in
 * the shapes platform teams write (service-account patterns, label
 * selectors, namespace names, deny guard rails), over namespaces with team
 * and env labels. Deterministic: the same arguments give the same policy.
 *
 * @module
 */
import type { PolicyRule } from '../src/config/schema.js';

export const POLICY_PROJECT = 'demo-project';
export const POLICY_LOCATION = 'us-central1';

export interface GeneratedPolicy {
  readonly rules: PolicyRule[];
  /** Namespace → labels, for `kubernetes.static`. */
  readonly namespaces: Record<string, Record<string, string>>;
  /** A namespace whose `trainer` is allowed to predict (by a rule near the end of the list). */
  readonly allowedNamespace: string;
}

export function namespaceName(i: number): string {
  return `ns-${String(i).padStart(5, '0')}`;
}

export function generatePolicy(ruleCount: number, namespaceCount: number): GeneratedPolicy {
  const namespaces: Record<string, Record<string, string>> = {};
  for (let i = 0; i < namespaceCount; i++) {
    namespaces[namespaceName(i)] = { team: `team-${i % 500}`, env: i % 3 === 0 ? 'dev' : 'prod', 'cost-center': `cc-${i % 97}` };
  }
  const rules: PolicyRule[] = [];
  for (let i = 0; i < ruleCount; i++) {
    const ns = namespaceName(i % namespaceCount);
    const id = `rule-${i}`;
    switch (i % 10) {
      case 0:
      case 1:
      case 2:
      case 3:
        rules.push({
          id,
          effect: 'allow',
          subjects: { serviceAccounts: [`${ns}/*`] },
          permissions: ['predict', 'generate'],
          resources: [`projects/${POLICY_PROJECT}/locations/${POLICY_LOCATION}/**`],
        });
        break;
      case 4:
      case 5:
      case 6:
        rules.push({
          id,
          effect: 'allow',
          subjects: { namespaceSelector: { matchLabels: { team: `team-${i % 500}`, env: 'prod' } } },
          permissions: ['predict'],
          resources: [`projects/${POLICY_PROJECT}/locations/*/endpoints/*`],
        });
        break;
      case 7:
      case 8:
        rules.push({ id, effect: 'allow', subjects: { namespaces: [ns] }, permissions: ['read'] });
        break;
      default:
        rules.push({ id, effect: 'deny', subjects: { serviceAccounts: [`${ns}/intern`] }, permissions: ['*'] });
    }
  }
  // The last namespace with a service-account rule: its rule is among the last ones written.
  let last = ruleCount - 1;
  while (last % 10 > 3) last--;
  return { rules, namespaces, allowedNamespace: namespaceName(last % namespaceCount) };
}
