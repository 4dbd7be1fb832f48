/**
 * `compilePolicy`'s checks: every semantic problem reported with its path in
 * the config file, all at once, and the policy checksum.
 *
 * @module
 */
import { describe, expect, it } from 'vitest';
import type { LabelSelector, PolicyRule } from '../config/schema.js';
import { canonicalJson, compilePolicy, type PolicyProblem } from './compile.js';

const CONTEXT = {
  knownPermissions: new Set([
    'aiplatform.endpoints.predict',
    'aiplatform.endpoints.explain',
    'aiplatform.endpoints.get',
    'aiplatform.customJobs.create',
    'aiplatform.models.get',
  ]),
  projects: ['my-proj', 'other-proj'],
  locations: ['us-central1', 'europe-west4', 'global'],
};

type RuleFields = Partial<Omit<PolicyRule, 'id' | 'effect'>>;
const allow = (id: string, fields: RuleFields = {}): PolicyRule => ({
  id,
  effect: 'allow',
  subjects: { serviceAccounts: ['ml/*'] },
  permissions: ['predict'],
  ...fields,
});

const problemsOf = (rules: readonly PolicyRule[]): PolicyProblem[] => compilePolicy(rules, CONTEXT).problems;
/** Problems of a single rule at index 0. */
const problemsOfRule = (fields: RuleFields): PolicyProblem[] => problemsOf([allow('r', fields)]);
const selector = (namespaceSelector: LabelSelector): RuleFields => ({ subjects: { namespaceSelector } });

describe('compilePolicy accepts', () => {
  it.each<[string, RuleFields]>([
    ['every operation group', { permissions: ['predict', 'generate', 'embed', 'training', 'read'] }],
    ['known exact permissions', { permissions: ['aiplatform.endpoints.predict', 'aiplatform.models.get'] }],
    ['patterns that match a known permission', { permissions: ['aiplatform.endpoints.*', '*.get', '*', 'aiplatform.*.create'] }],
    [
      'service-account, namespace and selector matchers together',
      {
        subjects: {
          serviceAccounts: ['ml/*', '*/trainer', 'ml-*/x'],
          namespaces: ['ml', 'ml-*'],
          namespaceSelector: {
            matchLabels: { team: 'ml', 'app.kubernetes.io/name': 'trainer', empty: '' },
            matchExpressions: [
              { key: 'env', operator: 'In', values: ['prod', 'v1.0_x'] },
              { key: 'env', operator: 'NotIn', values: ['dev'] },
              { key: 'kubernetes.io/metadata.name', operator: 'Exists' },
              { key: 'gpu', operator: 'DoesNotExist', values: [] },
            ],
          },
        },
      },
    ],
    ['an empty selector', selector({})],
    ['a 63-character label name and value', selector({ matchLabels: { [`a${'b'.repeat(61)}c`]: 'x'.repeat(63) } })],
    [
      'resource patterns with *, ** and model names',
      {
        resources: [
          'projects/my-proj/locations/*/endpoints/*',
          'projects/*/**',
          '**',
          'publishers/google/models/gemini-2.0-flash@001',
          '**/endpoints/e*',
        ],
      },
    ],
    ['configured projects and locations', { projects: ['my-proj'], locations: ['global', 'us-central1'] }],
  ])('%s', (_title, fields) => {
    expect(problemsOfRule(fields)).toEqual([]);
  });
});

describe('compilePolicy reports', () => {
  const cases: [string, RuleFields, string, RegExp][] = [
    ['a rule with no subject matcher', { subjects: {} }, 'policy.rules[0].subjects', /names no subject/],
    [
      'an unknown group, suggesting the closest one',
      { permissions: ['predict', 'trainng'] },
      'policy.rules[0].permissions[1]',
      /unknown group "trainng".*did you mean "training"/,
    ],
    [
      'an exact permission nothing needs, suggesting the closest known one',
      { permissions: ['aiplatform.endpoint.predict'] },
      'policy.rules[0].permissions[0]',
      /unknown permission "aiplatform.endpoint.predict".*did you mean "aiplatform.endpoints.predict"/,
    ],
    [
      'an exact permission far from every known one, without a suggestion',
      { permissions: ['storage.objects.get'] },
      'policy.rules[0].permissions[0]',
      /^unknown permission "storage.objects.get": no operation the proxy forwards needs it$/,
    ],
    [
      'a pattern matching no known permission',
      { permissions: ['aiplatform.datasets.*'] },
      'policy.rules[0].permissions[0]',
      /pattern "aiplatform.datasets.\*" matches no permission/,
    ],
    [
      'a star-containing word as a pattern, not a group',
      { permissions: ['pred*'] },
      'policy.rules[0].permissions[0]',
      /pattern "pred\*" matches no/,
    ],
    [
      'In without values',
      selector({ matchExpressions: [{ key: 'env', operator: 'In', values: [] }] }),
      'policy.rules[0].subjects.namespaceSelector.matchExpressions[0].values',
      /In needs at least one value/,
    ],
    [
      'NotIn with values left out',
      selector({ matchExpressions: [{ key: 'env', operator: 'NotIn' }] }),
      'policy.rules[0].subjects.namespaceSelector.matchExpressions[0].values',
      /NotIn needs at least one value/,
    ],
    [
      'Exists with values',
      selector({ matchExpressions: [{ key: 'env', operator: 'Exists', values: ['x'] }] }),
      'policy.rules[0].subjects.namespaceSelector.matchExpressions[0].values',
      /Exists takes no values/,
    ],
    [
      'DoesNotExist with values',
      selector({ matchExpressions: [{ key: 'env', operator: 'DoesNotExist', values: ['x'] }] }),
      'policy.rules[0].subjects.namespaceSelector.matchExpressions[0].values',
      /DoesNotExist takes no values/,
    ],
    [
      'an expression key that is not a label key',
      selector({ matchExpressions: [{ key: '-env', operator: 'Exists' }] }),
      'policy.rules[0].subjects.namespaceSelector.matchExpressions[0].key',
      /label key name "-env"/,
    ],
    [
      'an expression value that is not a label value',
      selector({ matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'a b'] }] }),
      'policy.rules[0].subjects.namespaceSelector.matchExpressions[0].values[1]',
      /label value "a b"/,
    ],
    [
      'a label name ending in a dash',
      selector({ matchLabels: { 'team-': 'ml' } }),
      'policy.rules[0].subjects.namespaceSelector.matchLabels.team-',
      /label key name "team-"/,
    ],
    [
      'a label name of 64 characters',
      selector({ matchLabels: { ['n'.repeat(64)]: 'ml' } }),
      `policy.rules[0].subjects.namespaceSelector.matchLabels.${'n'.repeat(64)}`,
      /must be up to 63 characters/,
    ],
    [
      'a label key prefix that is not a DNS subdomain',
      selector({ matchLabels: { 'Example.com/team': 'ml' } }),
      'policy.rules[0].subjects.namespaceSelector.matchLabels.Example.com/team',
      /prefix "Example.com" must be a DNS subdomain/,
    ],
    [
      'a label key with an empty prefix',
      selector({ matchLabels: { '/team': 'ml' } }),
      'policy.rules[0].subjects.namespaceSelector.matchLabels./team',
      /empty prefix/,
    ],
    [
      'a label key with an empty name',
      selector({ matchLabels: { 'example.com/': 'ml' } }),
      'policy.rules[0].subjects.namespaceSelector.matchLabels.example.com/',
      /empty name/,
    ],
    [
      'a label key with two slashes',
      selector({ matchLabels: { 'a/b/c': 'ml' } }),
      'policy.rules[0].subjects.namespaceSelector.matchLabels.a/b/c',
      /more than one "\/"/,
    ],
    [
      'a label value of 64 characters',
      selector({ matchLabels: { team: 'v'.repeat(64) } }),
      'policy.rules[0].subjects.namespaceSelector.matchLabels.team',
      /label value "v+" must be empty or up to 63/,
    ],
    [
      'a label value starting with a dot',
      selector({ matchLabels: { team: '.ml' } }),
      'policy.rules[0].subjects.namespaceSelector.matchLabels.team',
      /label value ".ml"/,
    ],
    [
      'a project the proxy does not serve, suggesting the closest',
      { projects: ['my-proj', 'my-prj'] },
      'policy.rules[0].projects[1]',
      /project "my-prj" is not in vertex.projects \(my-proj, other-proj\).*did you mean "my-proj"/,
    ],
    [
      'a location the proxy does not serve',
      { locations: ['asia-east1'] },
      'policy.rules[0].locations[0]',
      /location "asia-east1" is not in vertex.locations/,
    ],
    [
      'a resource pattern with an empty segment',
      { resources: ['projects/my-proj//endpoints/*'] },
      'policy.rules[0].resources[0]',
      /empty path segment/,
    ],
    [
      'a resource pattern with a trailing slash',
      { resources: ['projects/my-proj/'] },
      'policy.rules[0].resources[0]',
      /empty path segment/,
    ],
    ['a resource pattern with a leading slash', { resources: ['/projects/my-proj'] }, 'policy.rules[0].resources[0]', /empty path segment/],
    [
      'a resource pattern with ** inside a segment',
      { resources: ['projects/my-proj/endpoints/e**'] },
      'policy.rules[0].resources[0]',
      /"\*\*" must be a whole path segment/,
    ],
    [
      'a resource pattern naming a project the proxy does not serve',
      { resources: ['projects/nope/**'] },
      'policy.rules[0].resources[0]',
      /project "nope" is not in vertex.projects/,
    ],
    [
      'a resource pattern naming a location the proxy does not serve',
      { resources: ['projects/*/locations/asia-east1/**'] },
      'policy.rules[0].resources[0]',
      /location "asia-east1" is not in vertex.locations/,
    ],
    [
      'a service-account pattern that is not NAMESPACE/NAME',
      { subjects: { serviceAccounts: ['ml/*', 'trainer'] } },
      'policy.rules[0].subjects.serviceAccounts[1]',
      /must be NAMESPACE\/NAME/,
    ],
    ['an empty permission list', { permissions: [] }, 'policy.rules[0].permissions', /must not be empty/],
    ['an empty resource list', { resources: [] }, 'policy.rules[0].resources', /must not be empty/],
    [
      'an empty service-account list',
      { subjects: { serviceAccounts: [] } },
      'policy.rules[0].subjects.serviceAccounts',
      /must not be empty/,
    ],
  ];
  it.each(cases)('%s', (_title, fields, path, message) => {
    const problems = problemsOfRule(fields);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.path).toBe(path);
    expect(problems[0]?.message).toMatch(message);
  });

  it('a duplicate rule id, at the later rule, naming the first', () => {
    expect(problemsOf([allow('a'), allow('b'), allow('a')])).toEqual([
      { path: 'policy.rules[2].id', message: 'duplicate rule id "a" (first used by policy.rules[0])' },
    ]);
  });

  it('an unknown operator without throwing', () => {
    const bad = { key: 'env', operator: 'Matches' } as unknown as NonNullable<LabelSelector['matchExpressions']>[number];
    const { problems } = compilePolicy([allow('r', selector({ matchExpressions: [bad] }))], CONTEXT);
    expect(problems).toEqual([
      {
        path: 'policy.rules[0].subjects.namespaceSelector.matchExpressions[0].operator',
        message: expect.stringMatching(/unknown operator "Matches"/),
      },
    ]);
  });

  it('every problem of every rule at once, in file order', () => {
    const rules: PolicyRule[] = [
      allow('ok'),
      allow('many', {
        subjects: { namespaceSelector: { matchLabels: { 'bad key': 'v' }, matchExpressions: [{ key: 'env', operator: 'In' }] } },
        permissions: ['predict', 'nonsense', 'aiplatform.nothing.here', 'aiplatform.zzz.*'],
        resources: ['a//b', 'x/y**'],
        projects: ['elsewhere'],
        locations: ['mars-north1'],
      }),
      { id: 'ok', effect: 'deny', subjects: {}, permissions: ['read'] },
    ];
    expect(problemsOf(rules).map((p) => p.path)).toEqual([
      'policy.rules[1].subjects.namespaceSelector.matchLabels.bad key',
      'policy.rules[1].subjects.namespaceSelector.matchExpressions[0].values',
      'policy.rules[1].permissions[1]',
      'policy.rules[1].permissions[2]',
      'policy.rules[1].permissions[3]',
      'policy.rules[1].resources[0]',
      'policy.rules[1].resources[1]',
      'policy.rules[1].projects[0]',
      'policy.rules[1].locations[0]',
      'policy.rules[2].id',
      'policy.rules[2].subjects',
    ]);
  });

  it('problems and still a policy that evaluates, with the broken parts matching nothing', () => {
    const { policy, problems } = compilePolicy(
      [allow('broken', { subjects: { serviceAccounts: ['trainer'] } }), allow('fine', { permissions: ['predict', 'nonsense'] })],
      CONTEXT,
    );
    expect(problems).toHaveLength(2);
    const decision = policy.evaluate(
      { namespace: 'ml', serviceAccount: 'trainer', labels: undefined },
      {
        operationId: 'endpoints.predict',
        permission: 'aiplatform.endpoints.predict',
        groups: ['predict'],
        resource: 'projects/my-proj/locations/us-central1/endpoints/1',
        project: 'my-proj',
        location: 'us-central1',
      },
    );
    expect(decision).toEqual({ allowed: true, ruleId: 'fine', reason: 'allowed-by-rule' });
  });
});

describe('the policy version', () => {
  const rules: PolicyRule[] = [
    allow('a', { resources: ['projects/my-proj/**'] }),
    { id: 'b', effect: 'deny', subjects: { namespaceSelector: { matchLabels: { env: 'dev', team: 'ml' } } }, permissions: ['training'] },
  ];
  const versionOf = (r: readonly PolicyRule[]): string => compilePolicy(r, CONTEXT).policy.version;

  it('is the SHA-256 hex of the rules', () => {
    expect(versionOf(rules)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('is stable across compilations', () => {
    expect(versionOf(rules)).toBe(versionOf(structuredClone(rules)));
  });

  it('does not depend on the key order in the file', () => {
    const reordered: PolicyRule[] = [
      { resources: ['projects/my-proj/**'], permissions: ['predict'], subjects: { serviceAccounts: ['ml/*'] }, effect: 'allow', id: 'a' },
      { permissions: ['training'], subjects: { namespaceSelector: { matchLabels: { team: 'ml', env: 'dev' } } }, effect: 'deny', id: 'b' },
    ];
    expect(versionOf(reordered)).toBe(versionOf(rules));
  });

  it.each<[string, (r: PolicyRule[]) => PolicyRule[]]>([
    ['a permission changes', (r) => [{ ...(r[0] as PolicyRule), permissions: ['read'] }, r[1] as PolicyRule]],
    ['an effect changes', (r) => [{ ...(r[0] as PolicyRule), effect: 'deny' }, r[1] as PolicyRule]],
    [
      'a label value changes',
      (r) => [
        r[0] as PolicyRule,
        { ...(r[1] as PolicyRule), subjects: { namespaceSelector: { matchLabels: { env: 'dev', team: 'web' } } } },
      ],
    ],
    ['a rule is added', (r) => [...r, allow('c')]],
    ['the rules are reordered (the reported rule may change)', (r) => [...r].reverse()],
  ])('changes when %s', (_title, change) => {
    expect(versionOf(change(rules))).not.toBe(versionOf(rules));
  });

  it('comes with the rule count', () => {
    expect(compilePolicy(rules, CONTEXT).policy.ruleCount).toBe(2);
    expect(compilePolicy([], CONTEXT).policy.ruleCount).toBe(0);
  });

  it('is computed over canonical JSON: sorted keys, absent members left out', () => {
    expect(canonicalJson({ b: [1, { d: 'x', c: undefined }], a: null })).toBe('{"a":null,"b":[1,{"d":"x"}]}');
  });
});
