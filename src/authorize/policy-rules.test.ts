import { describe, expect, it } from 'vitest';
import { operationFor } from '../audit/query-api.js';
import type { Principal } from '../authn/principal.js';
import { parseConfig } from '../config/load.js';
import { ProxyError } from '../errors.js';
import { compileLabelIndependent } from '../policy/label-independent.js';
import { newRequestContext, type RequestContext } from '../request-context.js';
import { createPolicyRules, type PolicyQuestion } from './policy-rules.js';

const settings = parseConfig(
  `
issuers:
  - name: cluster
    type: kubernetes
    issuer: https://kubernetes.default.svc.cluster.local
    audiences: [kube-vertex-proxy]
vertex:
  projects: [my-proj]
  locations: [us-central1]
policy:
  rules:
    - id: no-secret
      effect: deny
      subjects: { namespaces: [audit] }
      permissions: [audit.read]
      resources: ["audit/namespaces/secret"]
    - id: whole-trail
      effect: allow
      subjects: { namespaceSelector: { matchLabels: { role: auditor } } }
      permissions: [audit.read]
      resources: ["audit/records"]
    - id: own-namespace
      effect: allow
      subjects: { namespaces: [ml] }
      permissions: [audit.read]
      resources: ["audit/namespaces/ml"]
`,
  'policy-rules.test.yaml',
);
const independent = compileLabelIndependent(settings.policyRules);
const rules = createPolicyRules({ policy: () => settings.policy, labelIndependentPolicy: () => independent });

const whole = operationFor('audit.records.list', 'ListRecords', 'audit/records');
const scoped = (namespace: string): PolicyQuestion => ({
  operation: { ...whole, resource: `audit/namespaces/${namespace}` },
  broader: whole,
});

function contextOf(namespace: string, labels: Record<string, string>, stale = false): RequestContext {
  const context = newRequestContext();
  const principal: Principal = {
    kind: 'kubernetes',
    issuer: 'cluster',
    subject: `system:serviceaccount:${namespace}:reader`,
    namespace,
    serviceAccount: 'reader',
    uid: undefined,
    pod: undefined,
    tokenId: undefined,
    expiresAt: 0,
  };
  context.principal = principal;
  context.subject = { namespace, serviceAccount: 'reader', labels, ...(stale ? { labelsStale: { ageSeconds: 90 } } : {}) };
  return context;
}

describe('createPolicyRules', () => {
  const rows: Array<[string, RequestContext, PolicyQuestion, string | null, boolean, string]> = [
    // name, context, question, deciding rule, allowed, resource decided on
    ['a grant of the narrower resource decides', contextOf('ml', {}), scoped('ml'), 'own-namespace', true, 'audit/namespaces/ml'],
    [
      'no rule names the narrower resource: the broader grant covers it',
      contextOf('audit', { role: 'auditor' }),
      scoped('ml'),
      'whole-trail',
      true,
      'audit/records',
    ],
    [
      'a rule that denies the narrower resource wins over the broader grant',
      contextOf('audit', { role: 'auditor' }),
      scoped('secret'),
      'no-secret',
      false,
      'audit/namespaces/secret',
    ],
    ['neither is granted: the narrower default deny', contextOf('dev', {}), scoped('ml'), null, false, 'audit/namespaces/ml'],
    [
      'a broader operation is never consulted without a narrower one',
      contextOf('ml', {}),
      { operation: whole },
      null,
      false,
      'audit/records',
    ],
  ];
  it.each(rows)('%s', (_name, context, question, ruleId, allowed, resource) => {
    const verdict = rules.decide(context, question);
    expect(verdict.decision).toMatchObject({ allowed, ruleId });
    expect(context.operation?.resource).toBe(resource);
    expect(context.policyVersion).toBe(settings.policy.version);
    expect(verdict.refusal === undefined).toBe(allowed);
    if (!allowed) expect(verdict.refusal?.message).toContain(`'//aiplatform.googleapis.com/${resource}'`);
  });

  it('stale labels: an allow that rests on labels is refused; one by namespace name stands', () => {
    const byLabels = rules.decide(contextOf('audit', { role: 'auditor' }, true), { operation: whole });
    expect(byLabels.decision).toEqual({ allowed: false, ruleId: 'whole-trail', reason: 'labels-stale' });
    expect(byLabels.refusal?.code).toBe('ERR_IDENTITY_LABELS_STALE');
    const byName = rules.decide(contextOf('ml', {}, true), scoped('ml'));
    expect(byName.decision).toMatchObject({ allowed: true, ruleId: 'own-namespace' });
  });

  it('stale labels without a label-independent policy: nothing is allowed', () => {
    const strict = createPolicyRules({ policy: () => settings.policy });
    expect(strict.decide(contextOf('ml', {}, true), scoped('ml')).refusal?.code).toBe('ERR_IDENTITY_LABELS_STALE');
  });

  it("a denial carries the classifier's hint", () => {
    const verdict = rules.decide(contextOf('ml', {}), { operation: whole, denialHint: 'Filter to one namespace.' });
    expect(verdict.refusal?.message).toMatch(/: no policy rule allows it\. Filter to one namespace\.$/);
  });

  it('refuses, never allows, when identity is missing', () => {
    expect(() => rules.decide(newRequestContext(), { operation: whole })).toThrow(ProxyError);
  });
});
