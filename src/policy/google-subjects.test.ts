/**
 * `subjects.googleEmails`: Google accounts (auditors signed in through IAP)
 * as policy subjects, kept apart from Kubernetes service accounts in both
 * directions.
 */
import { describe, expect, it } from 'vitest';
import type { PolicyRule } from '../config/schema.js';
import { compilePolicy } from './compile.js';
import type { PolicyAction, PolicySubject } from './decision.js';

const context = { knownPermissions: new Set(['audit.read', 'aiplatform.endpoints.predict']), projects: ['p'], locations: ['us-central1'] };
const READ: PolicyAction = {
  operationId: 'audit.records.list',
  permission: 'audit.read',
  groups: [],
  resource: 'audit/records',
  project: null,
  location: null,
};
const google = (email: string): PolicySubject => ({ namespace: '', serviceAccount: '', labels: undefined, googleEmail: email });
const kube = (namespace: string, serviceAccount: string): PolicySubject => ({ namespace, serviceAccount, labels: { team: 'x' } });

const RULES: PolicyRule[] = [
  {
    id: 'auditors',
    effect: 'allow',
    subjects: { googleEmails: ['alice@example.com', 'audit-*@example.com'] },
    permissions: ['audit.read'],
    resources: ['audit/*'],
  },
  { id: 'no-contractors', effect: 'deny', subjects: { googleEmails: ['audit-contractor@example.com'] }, permissions: ['*'] },
  { id: 'everyone-k8s', effect: 'allow', subjects: { serviceAccounts: ['*/*'] }, permissions: ['*'] },
  { id: 'ns-star', effect: 'allow', subjects: { namespaces: ['*'] }, permissions: ['audit.read'] },
  { id: 'selector-all', effect: 'allow', subjects: { namespaceSelector: {} }, permissions: ['audit.read'] },
];

describe('googleEmails subjects', () => {
  const { policy, problems } = compilePolicy(RULES, context);

  it('compiles without problems', () => {
    expect(problems).toEqual([]);
  });

  it('grants a listed email and a pattern match, case-insensitively', () => {
    expect(policy.evaluate(google('alice@example.com'), READ)).toMatchObject({ allowed: true, ruleId: 'auditors' });
    expect(policy.evaluate(google('Alice@Example.com'), READ)).toMatchObject({ allowed: true, ruleId: 'auditors' });
    expect(policy.evaluate(google('audit-bob@example.com'), READ)).toMatchObject({ allowed: true, ruleId: 'auditors' });
  });

  it('lets a deny on an email win over the pattern that would allow it', () => {
    expect(policy.evaluate(google('audit-contractor@example.com'), READ)).toMatchObject({
      allowed: false,
      ruleId: 'no-contractors',
      reason: 'denied-by-rule',
    });
  });

  it('never lets Kubernetes rules (even */*, namespaces: [*], namespaceSelector: {}) match a Google subject', () => {
    expect(policy.evaluate(google('mallory@example.com'), READ)).toEqual({ allowed: false, ruleId: null, reason: 'no-matching-rule' });
    expect(policy.evaluate(google('alice@example.org'), READ)).toMatchObject({ allowed: false, ruleId: null });
    // A pattern's `*` never reaches past the @.
    expect(policy.evaluate(google('audit-x@evil.example.com'), READ)).toMatchObject({ allowed: false, ruleId: null });
  });

  it('never lets a googleEmails rule match a Kubernetes subject', () => {
    const only = compilePolicy([RULES[0] as PolicyRule], context).policy;
    expect(only.evaluate(kube('alice@example.com', 'x'), READ)).toMatchObject({ allowed: false, ruleId: null });
    expect(policy.evaluate(kube('ml', 'trainer'), READ)).toMatchObject({ allowed: true, ruleId: 'everyone-k8s' });
  });

  it('respects the resource scope of the grant', () => {
    expect(policy.evaluate(google('alice@example.com'), { ...READ, resource: 'other/thing' })).toMatchObject({
      allowed: false,
      ruleId: null,
    });
  });

  it('reports mixing with Kubernetes matchers, wildcard domains and non-emails', () => {
    const bad: PolicyRule[] = [
      { id: 'mixed', effect: 'allow', subjects: { googleEmails: ['a@example.com'], namespaces: ['ml'] }, permissions: ['audit.read'] },
      { id: 'wild-domain', effect: 'allow', subjects: { googleEmails: ['*@*.example.com'] }, permissions: ['audit.read'] },
      { id: 'empty', effect: 'allow', subjects: { googleEmails: [] }, permissions: ['audit.read'] },
    ];
    const found = compilePolicy(bad, context).problems;
    expect(found.map((p) => p.path)).toEqual([
      'policy.rules[0].subjects.googleEmails',
      'policy.rules[1].subjects.googleEmails[0]',
      'policy.rules[2].subjects.googleEmails',
    ]);
    expect(found[1]?.message).toMatch(/only before the "@"/);
    // And the mixed rule matches nobody at all.
    const mixed = compilePolicy([bad[0] as PolicyRule], context).policy;
    expect(mixed.evaluate(google('a@example.com'), READ).allowed).toBe(false);
    expect(mixed.evaluate(kube('ml', 'a'), READ).allowed).toBe(false);
  });

  it('changes the policy version', () => {
    const other = compilePolicy([{ ...(RULES[0] as PolicyRule), subjects: { googleEmails: ['bob@example.com'] } }], context).policy;
    expect(other.version).not.toBe(compilePolicy([RULES[0] as PolicyRule], context).policy.version);
  });
});
