import { describe, expect, it } from 'vitest';
import type { PolicyRule } from '../config/schema.js';
import { compilePolicy } from './compile.js';
import type { PolicyAction, PolicySubject } from './decision.js';
import { compileLabelIndependent, labelIndependentRules } from './label-independent.js';

const context = {
  knownPermissions: new Set(['aiplatform.endpoints.predict', 'aiplatform.endpoints.get', 'aiplatform.customJobs.create']),
  projects: ['p'],
  locations: ['l'],
};
const action = (permission: string): PolicyAction => ({
  operationId: permission,
  permission,
  groups: [],
  resource: 'projects/p/locations/l/endpoints/1',
  project: 'p',
  location: 'l',
});
const subject = (namespace: string, serviceAccount: string, labels: Record<string, string> | undefined): PolicySubject => ({
  namespace,
  serviceAccount,
  labels,
});

const rules: PolicyRule[] = [
  {
    id: 'ml-predict',
    effect: 'allow',
    subjects: { namespaceSelector: { matchLabels: { team: 'ml' } } },
    permissions: ['aiplatform.endpoints.predict'],
  },
  {
    id: 'ml-read',
    effect: 'allow',
    subjects: { serviceAccounts: ['ml/*'] },
    permissions: ['aiplatform.endpoints.get', 'aiplatform.customJobs.create'],
  },
  {
    id: 'no-dev-training',
    effect: 'deny',
    subjects: { namespaceSelector: { matchLabels: { env: 'dev' } } },
    permissions: ['aiplatform.customJobs.create'],
  },
  {
    id: 'no-ml-intern-dev',
    effect: 'deny',
    subjects: { serviceAccounts: ['ml/intern'], namespaceSelector: { matchLabels: { env: 'dev' } } },
    permissions: ['aiplatform.endpoints.get'],
  },
];

describe('the label-independent policy (applied while the label view is stale)', () => {
  it('drops label-based allows and applies label-based denies whatever the labels', () => {
    expect(labelIndependentRules(rules)).toEqual([
      rules[1],
      { ...rules[2], subjects: { namespaces: ['*'] } },
      { ...rules[3], subjects: { serviceAccounts: ['ml/intern'] } },
    ]);
  });

  const independent = compileLabelIndependent(rules);
  const full = compilePolicy(rules, context).policy;
  const cases: Array<[string, PolicySubject, string, boolean, boolean]> = [
    // title, subject (last known labels), permission, full policy allows, label-independent allows
    ['a grant that rests on labels is not made', subject('ml', 'trainer', { team: 'ml' }), 'aiplatform.endpoints.predict', true, false],
    ['a grant on the service account alone stands', subject('ml', 'trainer', { team: 'ml' }), 'aiplatform.endpoints.get', true, true],
    [
      'a label-based deny that could apply stops a service-account grant',
      subject('ml', 'trainer', { env: 'prod' }),
      'aiplatform.customJobs.create',
      true,
      false,
    ],
    [
      'a label-based deny scoped to another account does not',
      subject('ml', 'trainer', { env: 'prod' }),
      'aiplatform.endpoints.get',
      true,
      true,
    ],
    ['a label-based deny scoped to this account does', subject('ml', 'intern', { env: 'prod' }), 'aiplatform.endpoints.get', true, false],
  ];
  it.each(cases)('%s', (_title, s, permission, fullAllows, independentAllows) => {
    expect(full.evaluate(s, action(permission)).allowed).toBe(fullAllows);
    expect(independent.evaluate(s, action(permission)).allowed).toBe(independentAllows);
  });

  it('never allows what the full policy denies on some labelling (checked over several labellings)', () => {
    const labellings = [undefined, {}, { team: 'ml' }, { env: 'dev' }, { team: 'ml', env: 'dev' }, { env: 'prod' }];
    for (const sa of ['trainer', 'intern']) {
      for (const permission of context.knownPermissions) {
        const s = subject('ml', sa, undefined);
        if (!independent.evaluate(s, action(permission)).allowed) continue;
        for (const labels of labellings) expect(full.evaluate({ ...s, labels }, action(permission)).allowed).toBe(true);
      }
    }
  });
});
