/**
 * The policy's decision semantics, held to the contract written on
 * `CompiledPolicy`: table-driven cases, a property test against a naive
 * reference evaluator (every table case runs through both, so the reference
 * is itself pinned to the contract), and a 10,000-rule policy.
 *
 * @module
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LabelSelector, PolicyRule } from '../config/schema.js';
import { compilePolicy, type CompiledPolicy } from './compile.js';
import type { Decision, PolicyAction, PolicySubject } from './decision.js';
import { compileRule, createIndexedEvaluator } from './evaluator.js';

// ---------------------------------------------------------------- reference

/** `*` matches any run of characters, or of characters other than `/` when `slash` is false. */
function globMatches(pattern: string, value: string, slash: boolean): boolean {
  if (pattern === '') return value === '';
  if (pattern[0] === '*') {
    return (
      globMatches(pattern.slice(1), value, slash) ||
      (value !== '' && (slash || value[0] !== '/') && globMatches(pattern, value.slice(1), slash))
    );
  }
  return value !== '' && pattern[0] === value[0] && globMatches(pattern.slice(1), value.slice(1), slash);
}

function resourceMatches(pattern: string, resource: string): boolean {
  const p = pattern.split('/');
  const r = resource.split('/');
  const from = (i: number, j: number): boolean => {
    if (i === p.length) return j === r.length;
    if (p[i] === '**') return from(i + 1, j) || (j < r.length && from(i, j + 1));
    return j < r.length && globMatches(p[i] as string, r[j] as string, false) && from(i + 1, j + 1);
  };
  return from(0, 0);
}

function selectorMatches(selector: LabelSelector, labels: PolicySubject['labels']): boolean {
  if (labels === undefined) return false;
  const valueOf = (key: string): string | undefined => (Object.hasOwn(labels, key) ? labels[key] : undefined);
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (valueOf(key) !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const value = valueOf(key);
    const ok =
      operator === 'In'
        ? value !== undefined && values.includes(value)
        : operator === 'NotIn'
          ? value === undefined || !values.includes(value)
          : operator === 'Exists'
            ? value !== undefined
            : value === undefined;
    if (!ok) return false;
  }
  return true;
}

function referenceRuleMatches(rule: PolicyRule, subject: PolicySubject, action: PolicyAction): boolean {
  const { serviceAccounts, namespaces, namespaceSelector } = rule.subjects;
  if (serviceAccounts === undefined && namespaces === undefined && namespaceSelector === undefined) return false;
  if (
    serviceAccounts !== undefined &&
    !serviceAccounts.some((pattern) => {
      const parts = pattern.split('/');
      return (
        parts.length === 2 &&
        globMatches(parts[0] as string, subject.namespace, false) &&
        globMatches(parts[1] as string, subject.serviceAccount, false)
      );
    })
  ) {
    return false;
  }
  if (namespaces !== undefined && !namespaces.some((pattern) => globMatches(pattern, subject.namespace, false))) return false;
  if (namespaceSelector !== undefined && !selectorMatches(namespaceSelector, subject.labels)) return false;
  const permitted = rule.permissions.some((entry) =>
    entry.includes('*')
      ? globMatches(entry, action.permission, true)
      : entry.includes('.')
        ? entry === action.permission
        : action.groups.includes(entry),
  );
  if (!permitted) return false;
  if (rule.resources !== undefined && !rule.resources.some((pattern) => resourceMatches(pattern, action.resource))) return false;
  if (rule.projects !== undefined && (action.project === null || !rule.projects.includes(action.project))) return false;
  if (rule.locations !== undefined && (action.location === null || !rule.locations.includes(action.location))) return false;
  return true;
}

/** Scans every rule, in order: the obviously-right evaluator the indexed one must agree with. */
function referenceEvaluate(rules: readonly PolicyRule[], subject: PolicySubject, action: PolicyAction): Decision {
  const deny = rules.find((rule) => rule.effect === 'deny' && referenceRuleMatches(rule, subject, action));
  if (deny !== undefined) return { allowed: false, ruleId: deny.id, reason: 'denied-by-rule' };
  const allow = rules.find((rule) => rule.effect === 'allow' && referenceRuleMatches(rule, subject, action));
  if (allow !== undefined) return { allowed: true, ruleId: allow.id, reason: 'allowed-by-rule' };
  return { allowed: false, ruleId: null, reason: 'no-matching-rule' };
}

// ---------------------------------------------------------------- fixtures

const PERMISSION_GROUPS: Readonly<Record<string, readonly string[]>> = {
  'aiplatform.endpoints.predict': ['predict', 'generate'],
  'aiplatform.endpoints.explain': ['predict'],
  'aiplatform.endpoints.get': ['read'],
  'aiplatform.endpoints.list': ['read'],
  'aiplatform.customJobs.create': ['training'],
  'aiplatform.customJobs.get': ['read'],
  'aiplatform.models.get': ['read'],
};
const KNOWN_PERMISSIONS: ReadonlySet<string> = new Set(Object.keys(PERMISSION_GROUPS));
const PROJECTS = ['p1', 'p2', 'p3'];
const LOCATIONS = ['us-central1', 'europe-west4', 'global'];
const CONTEXT = { knownPermissions: KNOWN_PERMISSIONS, projects: PROJECTS, locations: LOCATIONS };

const compile = (rules: readonly PolicyRule[]): CompiledPolicy => compilePolicy(rules, CONTEXT).policy;

type RuleFields = Partial<Omit<PolicyRule, 'id' | 'effect'>>;
const rule = (effect: PolicyRule['effect'], id: string, fields: RuleFields): PolicyRule => ({
  id,
  effect,
  subjects: { serviceAccounts: ['*/*'] },
  permissions: ['*'],
  ...fields,
});
const allow = (id: string, fields: RuleFields = {}): PolicyRule => rule('allow', id, fields);
const deny = (id: string, fields: RuleFields = {}): PolicyRule => rule('deny', id, fields);

const subject = (fields: Partial<PolicySubject> = {}): PolicySubject => ({
  namespace: 'ml',
  serviceAccount: 'trainer',
  labels: { team: 'ml', env: 'prod' },
  ...fields,
});
const action = (permission = 'aiplatform.endpoints.predict', fields: Partial<PolicyAction> = {}): PolicyAction => ({
  operationId: 'endpoints.predict',
  permission,
  groups: PERMISSION_GROUPS[permission] ?? [],
  resource: 'projects/p1/locations/us-central1/endpoints/e1',
  project: 'p1',
  location: 'us-central1',
  ...fields,
});

const allowedBy = (ruleId: string): Decision => ({ allowed: true, ruleId, reason: 'allowed-by-rule' });
const deniedBy = (ruleId: string): Decision => ({ allowed: false, ruleId, reason: 'denied-by-rule' });
const DEFAULT_DENY: Decision = { allowed: false, ruleId: null, reason: 'no-matching-rule' };

interface Case {
  readonly title: string;
  readonly rules: readonly PolicyRule[];
  readonly subject?: PolicySubject;
  readonly action?: PolicyAction;
  readonly expected: Decision;
}

/** A one-rule case: does an allow rule with these fields match? */
const single = (
  title: string,
  fields: RuleFields,
  matches: boolean,
  who: PolicySubject = subject(),
  what: PolicyAction = action(),
): Case => ({
  title,
  rules: [allow('r', fields)],
  subject: who,
  action: what,
  expected: matches ? allowedBy('r') : DEFAULT_DENY,
});

function runCases(cases: readonly Case[]): void {
  it.each(cases)('$title', ({ rules, subject: who = subject(), action: what = action(), expected }) => {
    expect(referenceEvaluate(rules, who, what), 'reference evaluator').toEqual(expected);
    expect(compile(rules).evaluate(who, what)).toEqual(expected);
  });
}

const selector = (namespaceSelector: LabelSelector): RuleFields => ({ subjects: { namespaceSelector } });
const labelled = (labels: PolicySubject['labels']): PolicySubject => subject({ labels });

// ---------------------------------------------------------------- tables

describe('namespaceSelector', () => {
  runCases([
    single('matchLabels matches when every pair is present with that value', selector({ matchLabels: { team: 'ml', env: 'prod' } }), true),
    single('matchLabels does not match when a pair has another value', selector({ matchLabels: { team: 'ml', env: 'dev' } }), false),
    single('matchLabels does not match when a key is missing', selector({ matchLabels: { tier: 'gpu' } }), false),
    single(
      'matchLabels compares prefixed keys exactly',
      selector({ matchLabels: { 'kubernetes.io/metadata.name': 'ml' } }),
      true,
      labelled({ 'kubernetes.io/metadata.name': 'ml' }),
    ),
    single(
      'In matches a value in the set',
      selector({ matchExpressions: [{ key: 'env', operator: 'In', values: ['dev', 'prod'] }] }),
      true,
    ),
    single(
      'In does not match a value outside the set',
      selector({ matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }] }),
      false,
    ),
    single(
      'In does not match when the key is absent',
      selector({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['gpu'] }] }),
      false,
    ),
    single(
      'NotIn matches a value outside the set',
      selector({ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] }),
      true,
    ),
    single(
      'NotIn matches when the key is absent (Kubernetes semantics)',
      selector({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['gpu'] }] }),
      true,
    ),
    single(
      'NotIn does not match a value in the set',
      selector({ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }),
      false,
    ),
    single(
      'Exists matches a present key, even with an empty value',
      selector({ matchExpressions: [{ key: 'gpu', operator: 'Exists' }] }),
      true,
      labelled({ gpu: '' }),
    ),
    single('Exists does not match an absent key', selector({ matchExpressions: [{ key: 'gpu', operator: 'Exists' }] }), false),
    single('DoesNotExist matches an absent key', selector({ matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }] }), true),
    single('DoesNotExist does not match a present key', selector({ matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] }), false),
    single('an empty selector matches every known namespace, even one without labels', selector({}), true, labelled({})),
    single('an empty selector does not match an unknown namespace', selector({}), false, labelled(undefined)),
    single('matchLabels does not match an unknown namespace', selector({ matchLabels: { team: 'ml' } }), false, labelled(undefined)),
    single(
      'NotIn does not match an unknown namespace',
      selector({ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] }),
      false,
      labelled(undefined),
    ),
    single(
      'DoesNotExist does not match an unknown namespace',
      selector({ matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }] }),
      false,
      labelled(undefined),
    ),
    single(
      'matchLabels and matchExpressions must both hold',
      selector({ matchLabels: { team: 'ml' }, matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }] }),
      false,
    ),
    single(
      'several expressions match when every one holds',
      selector({
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod'] },
          { key: 'team', operator: 'NotIn', values: ['web'] },
          { key: 'gpu', operator: 'DoesNotExist' },
          { key: 'team', operator: 'Exists' },
        ],
      }),
      true,
    ),
    single(
      'several expressions do not match when one fails',
      selector({
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod'] },
          { key: 'team', operator: 'NotIn', values: ['ml'] },
        ],
      }),
      false,
    ),
    single(
      'inherited object properties are not labels (Exists)',
      selector({ matchExpressions: [{ key: 'toString', operator: 'Exists' }] }),
      false,
      labelled({}),
    ),
    single(
      'inherited object properties are not labels (DoesNotExist)',
      selector({ matchExpressions: [{ key: 'constructor', operator: 'DoesNotExist' }] }),
      true,
      labelled({}),
    ),
  ]);
});

describe('serviceAccounts', () => {
  const sa = (...serviceAccounts: string[]): RuleFields => ({ subjects: { serviceAccounts } });
  const as = (namespace: string, serviceAccount: string): PolicySubject => subject({ namespace, serviceAccount });
  runCases([
    single('an exact pattern matches that service account', sa('ml/trainer'), true, as('ml', 'trainer')),
    single('an exact pattern does not match another name in the namespace', sa('ml/trainer'), false, as('ml', 'server')),
    single('an exact pattern does not match the same name in another namespace', sa('ml/trainer'), false, as('web', 'trainer')),
    single('ml/* matches every service account of ml', sa('ml/*'), true, as('ml', 'anything')),
    single('ml/* does not match a namespace that only starts with ml', sa('ml/*'), false, as('ml-dev', 'trainer')),
    single('*/trainer matches trainer in any namespace', sa('*/trainer'), true, as('web', 'trainer')),
    single('*/trainer does not match a longer name', sa('*/trainer'), false, as('ml', 'trainer-2')),
    single('ml-*/x matches a namespace with that prefix', sa('ml-*/x'), true, as('ml-dev', 'x')),
    single('ml-*/x matches the bare prefix (the run may be empty)', sa('ml-*/x'), true, as('ml-', 'x')),
    single('ml-*/x does not match the namespace without the dash', sa('ml-*/x'), false, as('ml', 'x')),
    single('a star in the middle of a part matches a run there', sa('m*l/t*r'), true, as('mxxl', 'trainer')),
    single('a star never crosses the slash in the namespace part', sa('*/trainer'), false, as('ml/x', 'trainer')),
    single('a star never crosses the slash in the name part', sa('ml/*'), false, as('ml', 'a/b')),
    single('any of several patterns suffices', sa('web/*', '*/trainer'), true, as('ml', 'trainer')),
    single('*/* matches everyone', sa('*/*'), true, as('kube-system', 'default')),
  ]);
});

describe('namespaces', () => {
  const ns = (...namespaces: string[]): RuleFields => ({ subjects: { namespaces } });
  const inNamespace = (namespace: string): PolicySubject => subject({ namespace });
  runCases([
    single('an exact name matches that namespace', ns('web', 'ml'), true, inNamespace('ml')),
    single('an exact name does not match another namespace', ns('web'), false, inNamespace('ml')),
    single('a prefix pattern matches a namespace with the prefix', ns('ml-*'), true, inNamespace('ml-dev')),
    single('a prefix pattern does not match the name without its dash', ns('ml-*'), false, inNamespace('ml')),
    single('* matches every namespace', ns('*'), true, inNamespace('anything')),
  ]);
});

describe('permissions', () => {
  const perms = (...permissions: string[]): RuleFields => ({ permissions });
  runCases([
    single('a group matches an operation in that group', perms('predict'), true),
    single('a group matches when it is any one of the operation groups', perms('generate'), true),
    single('a group does not match an operation outside it', perms('training'), false),
    single('an exact permission matches only itself', perms('aiplatform.endpoints.predict'), true),
    single('an exact permission does not match another', perms('aiplatform.endpoints.explain'), false),
    single('a trailing-star pattern matches within its prefix', perms('aiplatform.endpoints.*'), true),
    single('a star matches across dots', perms('aiplatform.*'), true),
    single('a leading-star pattern matches the suffix', perms('*.predict'), true),
    single('a star in the middle matches a run', perms('aiplatform.*.predict'), true),
    single('a pattern does not match another collection', perms('aiplatform.models.*'), false),
    single('a lone star matches every permission', perms('*'), true, subject(), action('aiplatform.customJobs.create')),
    single('any one entry suffices', perms('training', 'aiplatform.endpoints.predict'), true),
  ]);
});

describe('resources', () => {
  const res = (...resources: string[]): RuleFields => ({ resources });
  const on = (resource: string): PolicyAction => action('aiplatform.endpoints.predict', { resource });
  const endpoint = 'projects/p1/locations/us-central1/endpoints/e1';
  const gemini = 'publishers/google/models/gemini-2.0-flash@001';
  runCases([
    single('without resources any resource matches', {}, true, subject(), on(endpoint)),
    single('an exact resource matches itself', res(endpoint), true, subject(), on(endpoint)),
    single(
      'an exact resource does not match a longer name',
      res('projects/p1/locations/us-central1/endpoints'),
      false,
      subject(),
      on(endpoint),
    ),
    single('* matches one segment', res('projects/p1/locations/us-central1/endpoints/*'), true, subject(), on(endpoint)),
    single('* does not match across segments', res('projects/*/endpoints/e1'), false, subject(), on(endpoint)),
    single(
      '* does not match the missing last segment',
      res('projects/p1/locations/us-central1/endpoints/*'),
      false,
      subject(),
      on('projects/p1/locations/us-central1/endpoints'),
    ),
    single('* may be part of a segment', res('projects/p1/locations/us-*/endpoints/e*'), true, subject(), on(endpoint)),
    single('** matches several segments', res('projects/p1/**'), true, subject(), on(endpoint)),
    single('** matches zero segments', res('projects/p1/**'), true, subject(), on('projects/p1')),
    single(
      'a literal before /** is a whole segment, not a prefix',
      res('projects/p1/**'),
      false,
      subject(),
      on('projects/p10/locations/x'),
    ),
    single(
      'a trailing * stays within the last segment',
      res('projects/p1/locations/us-central1/endpoints/e*'),
      false,
      subject(),
      on('projects/p1/locations/us-central1/endpoints/e1/operations/7'),
    ),
    single(
      '** in the middle matches zero segments',
      res('projects/p1/**/locations/us-central1/endpoints/e1'),
      true,
      subject(),
      on(endpoint),
    ),
    single('** in front matches any prefix', res('**/endpoints/e1'), true, subject(), on(endpoint)),
    single('** does not match a different tail', res('**/endpoints/e2'), false, subject(), on(endpoint)),
    single('** with * combines', res('projects/**/endpoints/*'), true, subject(), on(endpoint)),
    single('a lone ** matches everything', res('**'), true, subject(), on(gemini)),
    single('publisher model names with dots and @ match exactly', res(gemini), true, subject(), on(gemini)),
    single('a dot in a pattern is literal', res('publishers/google/models/gemini-2x0-flash@001'), false, subject(), on(gemini)),
    single('a star matches within a model name', res('publishers/google/models/gemini-2.0-*'), true, subject(), on(gemini)),
    single('a star matches before @', res('publishers/*/models/*@001'), true, subject(), on(gemini)),
    single('a version suffix that differs does not match', res('publishers/*/models/*@002'), false, subject(), on(gemini)),
    single('any one pattern suffices', res('projects/p2/**', 'projects/p1/**'), true, subject(), on(endpoint)),
  ]);
});

describe('projects and locations', () => {
  const where = (project: string | null, location: string | null): PolicyAction =>
    action('aiplatform.endpoints.predict', { project, location });
  runCases([
    single('a listed project matches', { projects: ['p2', 'p1'] }, true, subject(), where('p1', 'us-central1')),
    single('an unlisted project does not match', { projects: ['p2'] }, false, subject(), where('p1', 'us-central1')),
    single('a request without a project never matches a projects list', { projects: ['p1'] }, false, subject(), where(null, null)),
    single('without projects a request without a project matches', {}, true, subject(), where(null, null)),
    single('a listed location matches', { locations: ['us-central1'] }, true, subject(), where('p1', 'us-central1')),
    single('an unlisted location does not match', { locations: ['europe-west4'] }, false, subject(), where('p1', 'us-central1')),
    single('a request without a location never matches a locations list', { locations: ['global'] }, false, subject(), where('p1', null)),
  ]);
});

describe('decisions', () => {
  const ml = { serviceAccounts: ['ml/*'] };
  const web = { serviceAccounts: ['web/*'] };
  const byLabel = { namespaceSelector: { matchLabels: { team: 'ml' } } };
  const byGlob = { serviceAccounts: ['m*/*'] };
  runCases([
    { title: 'with no rules, the default deny', rules: [], expected: DEFAULT_DENY },
    {
      title: 'when no rule matches, the default deny',
      rules: [allow('a', { subjects: web }), deny('d', { subjects: web })],
      expected: DEFAULT_DENY,
    },
    { title: 'a matching allow allows', rules: [allow('a', { subjects: ml })], expected: allowedBy('a') },
    {
      title: 'a matching deny wins over an earlier allow',
      rules: [allow('a', { subjects: ml }), deny('d', { subjects: byLabel })],
      expected: deniedBy('d'),
    },
    {
      title: 'a matching deny wins over a later allow',
      rules: [deny('d', { subjects: byGlob }), allow('a', { subjects: ml })],
      expected: deniedBy('d'),
    },
    {
      title: 'a deny that does not match does not block',
      rules: [deny('d', { subjects: web }), allow('a', { subjects: ml })],
      expected: allowedBy('a'),
    },
    {
      title: 'the first matching deny in config order is reported',
      rules: [allow('a', { subjects: ml }), deny('d1', { subjects: web }), deny('d2', { subjects: byGlob }), deny('d3', { subjects: ml })],
      expected: deniedBy('d2'),
    },
    {
      title: 'the first matching allow in config order is reported',
      rules: [
        allow('a1', { subjects: web }),
        allow('a2', { subjects: byLabel }),
        allow('a3', { subjects: ml }),
        allow('a4', { subjects: byGlob }),
      ],
      expected: allowedBy('a2'),
    },
    {
      title: 'the first matching allow is reported whichever index bucket holds it',
      rules: [
        allow('glob', { subjects: byGlob }),
        allow('label', { subjects: byLabel }),
        allow('sa', { subjects: { serviceAccounts: ['ml/trainer'] } }),
      ],
      expected: allowedBy('glob'),
    },
    {
      title: 'a later rule in a narrower bucket is not reported over an earlier one in a wider bucket',
      rules: [allow('ns', { subjects: { namespaces: ['ml'] } }), allow('sa', { subjects: { serviceAccounts: ['ml/trainer'] } })],
      expected: allowedBy('ns'),
    },
    {
      title: 'a rule without any subject matcher matches nobody',
      rules: [deny('nobody', { subjects: {} }), allow('a', { subjects: ml })],
      expected: allowedBy('a'),
    },
    {
      title: 'an empty resources list (refused by the loader) matches nothing, it does not mean any',
      rules: [allow('a', { subjects: ml, resources: [] })],
      expected: DEFAULT_DENY,
    },
    {
      title: 'every subject matcher must match: service account and selector',
      rules: [allow('a', { subjects: { serviceAccounts: ['ml/*'], namespaceSelector: { matchLabels: { team: 'web' } } } })],
      expected: DEFAULT_DENY,
    },
    {
      title: 'every subject matcher must match: namespaces and selector',
      rules: [allow('a', { subjects: { namespaces: ['ml'], namespaceSelector: { matchLabels: { env: 'prod' } } } })],
      expected: allowedBy('a'),
    },
    {
      title: 'every subject matcher must match: service account and namespaces',
      rules: [allow('a', { subjects: { serviceAccounts: ['*/trainer'], namespaces: ['web'] } })],
      expected: DEFAULT_DENY,
    },
    {
      title: 'subjects and permission matching are not enough when the resource does not match',
      rules: [allow('a', { subjects: ml, permissions: ['predict'], resources: ['projects/p1/locations/us-central1/endpoints/e2'] })],
      expected: DEFAULT_DENY,
    },
    {
      title: 'subjects and resource matching are not enough when the permission does not match',
      rules: [allow('a', { subjects: ml, permissions: ['training'], resources: ['projects/p1/**'] })],
      expected: DEFAULT_DENY,
    },
    {
      title: 'a rule matches when every one of its parts matches',
      rules: [
        allow('a', {
          subjects: { serviceAccounts: ['ml/trainer'], namespaces: ['ml'], namespaceSelector: { matchLabels: { team: 'ml' } } },
          permissions: ['predict'],
          resources: ['projects/p1/locations/*/endpoints/*'],
          projects: ['p1'],
          locations: ['us-central1'],
        }),
      ],
      expected: allowedBy('a'),
    },
  ]);

  it('returns the same frozen decision object for the same rule', () => {
    const policy = compile([allow('a')]);
    const first = policy.evaluate(subject(), action());
    expect(policy.evaluate(subject({ namespace: 'web' }), action())).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
  });
});

// ---------------------------------------------------------------- property

const NAMESPACES = ['ml', 'ml-dev', 'web', 'a'];
const ACCOUNTS = ['trainer', 'default', 'web-1', 'a'];
const LABEL_VALUES = ['ml', 'prod', 'dev', ''];
const RESOURCES = [
  'projects/p1/locations/us-central1/endpoints/e1',
  'projects/p2/locations/europe-west4/endpoints/e.2',
  'projects/p1/locations/us-central1/customJobs',
  'publishers/google/models/gemini-2.0-flash@001',
];
const PERMISSIONS = [...KNOWN_PERMISSIONS];
/** Outside the set the policy is compiled with: decided without the precomputed permission bitsets. */
const UNKNOWN_PERMISSION = 'aiplatform.endpoints.streamRawPredict';

/** A pattern over one of `names`: exact, star, or a star replacing part of it. */
const namePattern = (names: readonly string[]): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constantFrom(...names),
    fc.constant('*'),
    fc.tuple(fc.constantFrom(...names), fc.nat(), fc.nat()).map(([name, a, b]) => {
      const from = a % (name.length + 1);
      const to = from + (b % (name.length - from + 1));
      return `${name.slice(0, from)}*${name.slice(to)}`;
    }),
  );

const labelValue = fc.constantFrom(...LABEL_VALUES);
const labelsArb = fc.record({ team: labelValue, env: labelValue, tier: labelValue }, { requiredKeys: [] });

const selectorArb: fc.Arbitrary<LabelSelector> = fc.record(
  {
    matchLabels: fc.dictionary(fc.constantFrom('team', 'env', 'tier'), labelValue, { maxKeys: 2 }),
    matchExpressions: fc.array(
      fc.record(
        {
          key: fc.constantFrom('team', 'env', 'tier', 'gpu'),
          operator: fc.constantFrom('In' as const, 'NotIn' as const, 'Exists' as const, 'DoesNotExist' as const),
          values: fc.array(labelValue, { maxLength: 3 }),
        },
        { requiredKeys: ['key', 'operator'] },
      ),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);

const resourcePattern: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...RESOURCES), fc.array(fc.nat(9), { minLength: 6, maxLength: 6 }), fc.boolean())
  .map(([resource, choices, truncate]) => {
    const segments = resource.split('/').map((segment, i) => {
      const choice = choices[i] ?? 0;
      if (choice === 1) return '*';
      if (choice === 2) return '**';
      if (choice === 3) return `${segment.slice(0, 2)}*`;
      if (choice === 4) return `*${segment.slice(-2)}`;
      if (choice === 5) return segment === 'p1' ? 'p2' : segment;
      return segment;
    });
    return (truncate ? [...segments.slice(0, 2), '**'] : segments).join('/');
  });

const permissionEntry = fc.oneof(
  fc.constantFrom('predict', 'generate', 'embed', 'training', 'read', 'bogus'),
  fc.constantFrom(...PERMISSIONS),
  fc.constantFrom('*', 'aiplatform.endpoints.*', 'aiplatform.*', '*.get', 'aiplatform.*.create', 'aiplatform.models.*'),
);

/** `arb` one time in `oneIn`, else absent: rules with every optional part present would rarely match anything. */
const sometimes = <T>(arb: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: arb, weight: 1 }, { arbitrary: fc.constant(undefined), weight: oneIn - 1 });

/** Drops absent members: the config never holds `key: undefined`. */
const present = <T extends object>(record: T): T =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as T;

const ruleArb = (id: string): fc.Arbitrary<PolicyRule> =>
  fc
    .record({
      effect: fc.constantFrom('allow' as const, 'deny' as const),
      serviceAccounts: sometimes(
        fc.array(
          fc.tuple(namePattern(NAMESPACES), namePattern(ACCOUNTS)).map(([ns, name]) => `${ns}/${name}`),
          { minLength: 1, maxLength: 3 },
        ),
        2,
      ),
      namespaces: sometimes(fc.array(namePattern(NAMESPACES), { minLength: 1, maxLength: 2 }), 4),
      namespaceSelector: sometimes(selectorArb, 3),
      permissions: fc.array(permissionEntry, { minLength: 1, maxLength: 3 }),
      resources: sometimes(fc.array(resourcePattern, { minLength: 1, maxLength: 2 }), 3),
      projects: sometimes(fc.subarray(['p1', 'p2'], { minLength: 1 }), 4),
      locations: sometimes(fc.subarray(['us-central1', 'europe-west4'], { minLength: 1 }), 4),
    })
    .map(
      ({ effect, serviceAccounts, namespaces, namespaceSelector, permissions, resources, projects, locations }) =>
        present({
          id,
          effect,
          subjects: present({ serviceAccounts, namespaces, namespaceSelector }),
          permissions,
          resources,
          projects,
          locations,
        }) as PolicyRule,
    );

const subjectArb: fc.Arbitrary<PolicySubject> = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  serviceAccount: fc.constantFrom(...ACCOUNTS),
  labels: fc.option(labelsArb, { nil: undefined }),
});

const actionArb: fc.Arbitrary<PolicyAction> = fc
  .record({
    permission: fc.constantFrom(...PERMISSIONS, UNKNOWN_PERMISSION),
    resource: fc.constantFrom(...RESOURCES),
    project: fc.constantFrom('p1', 'p2', null),
    location: fc.constantFrom('us-central1', 'europe-west4', null),
  })
  .map((fields) => ({ operationId: 'test', groups: PERMISSION_GROUPS[fields.permission] ?? ['predict'], ...fields }));

const rulesArb: fc.Arbitrary<PolicyRule[]> = fc
  // Up to 70 rules: the permission bitsets span more than one 32-bit word.
  .integer({ min: 0, max: 70 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => ruleArb(`r${i}`))));

describe('indexed evaluator', () => {
  it('decides exactly like a naive scan of every rule in order', () => {
    fc.assert(
      fc.property(rulesArb, fc.array(fc.tuple(subjectArb, actionArb), { minLength: 1, maxLength: 20 }), (rules, questions) => {
        const policy = compile(rules);
        for (const [who, what] of questions) {
          expect(policy.evaluate(who, what)).toEqual(referenceEvaluate(rules, who, what));
        }
      }),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------- scale

describe('a policy of 10,000 rules over 10,000 namespaces', () => {
  const NAMESPACE_COUNT = 10_000;
  const labelsOf = (i: number): Readonly<Record<string, string>> => ({
    'kubernetes.io/metadata.name': `ns-${i}`,
    team: `team-${i % 100}`,
    env: i % 3 === 0 ? 'dev' : 'prod',
  });
  const rules: PolicyRule[] = [];
  for (let i = 0; i < 10_000; i++) {
    const k = (i * 7919) % NAMESPACE_COUNT;
    switch (i % 5) {
      case 0:
        rules.push(allow(`sa-${i}`, { subjects: { serviceAccounts: [`ns-${k}/sa-${k % 5}`] }, permissions: ['predict'] }));
        break;
      case 1:
        rules.push(
          allow(`ns-${i}`, { subjects: { serviceAccounts: [`ns-${k}/*`] }, permissions: ['read'], resources: ['projects/p1/**'] }),
        );
        break;
      case 2:
        rules.push(
          allow(`label-${i}`, {
            subjects: { namespaceSelector: { matchLabels: { team: `team-${i % 100}`, env: 'prod' } } },
            permissions: ['aiplatform.endpoints.*'],
            resources: [`projects/p1/locations/us-central1/endpoints/team-${i % 100}-*`],
          }),
        );
        break;
      case 3:
        rules.push(deny(`deny-ns-${i}`, { subjects: { namespaces: [`ns-${k}`] }, permissions: ['training'] }));
        break;
      default:
        rules.push(
          deny(`deny-label-${i}`, {
            subjects: { namespaceSelector: { matchLabels: { env: 'dev', team: `team-${i % 100}` } } },
            permissions: ['aiplatform.customJobs.create'],
            locations: ['europe-west4'],
          }),
        );
    }
  }
  // One rule filed by service-account name only, one no index can hold.
  rules.push(deny('no-default-sa', { subjects: { serviceAccounts: ['*/default'] }, permissions: ['*'] }));
  rules.push(allow('ops-everything', { subjects: { serviceAccounts: ['ops-*/*'] }, permissions: ['*'] }));

  const policy = compile(rules);
  const subjectOf = (i: number, serviceAccount: string): PolicySubject => ({ namespace: `ns-${i}`, serviceAccount, labels: labelsOf(i) });
  const endpointOf = (name: string): PolicyAction =>
    action('aiplatform.endpoints.predict', { resource: `projects/p1/locations/us-central1/endpoints/${name}` });

  it('files every rule but the one glob-only rule in the index', () => {
    const { stats } = createIndexedEvaluator(rules.map(compileRule), KNOWN_PERMISSIONS);
    expect(stats.scanned).toBe(1);
    expect(stats.unreachable).toBe(0);
  });

  it('allows a service account its exact-name rule', () => {
    // Rule 0: ns-0/sa-0 may predict.
    expect(policy.evaluate(subjectOf(0, 'sa-0'), endpointOf('anything'))).toEqual(allowedBy('sa-0'));
  });

  it('allows by label when the resource matches the team prefix', () => {
    // ns-2 is team-2, env prod; label-2 is the first rule for that pair.
    expect(policy.evaluate(subjectOf(2, 'x'), endpointOf('team-2-e'))).toEqual(allowedBy('label-2'));
    expect(policy.evaluate(subjectOf(2, 'x'), endpointOf('team-3-e'))).toEqual(DEFAULT_DENY);
  });

  it('denies the default service account everywhere, before any allow', () => {
    expect(policy.evaluate(subjectOf(0, 'default'), endpointOf('anything'))).toEqual(deniedBy('no-default-sa'));
  });

  it('falls back to the default deny for an unknown identity', () => {
    expect(policy.evaluate({ namespace: 'elsewhere', serviceAccount: 'x', labels: undefined }, endpointOf('e'))).toEqual(DEFAULT_DENY);
  });

  it('agrees with the naive scan on sampled questions', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: NAMESPACE_COUNT - 1 }),
        fc.constantFrom('sa-0', 'sa-1', 'sa-2', 'sa-3', 'sa-4', 'default'),
        fc.boolean(),
        actionArb,
        fc.integer({ min: 0, max: 99 }),
        (i, serviceAccount, known, question, team) => {
          const who = { ...subjectOf(i, serviceAccount), labels: known ? labelsOf(i) : undefined };
          const what = { ...question, resource: `projects/p1/locations/us-central1/endpoints/team-${team}-x` };
          expect(policy.evaluate(who, what)).toEqual(referenceEvaluate(rules, who, what));
        },
      ),
      { numRuns: 100 },
    );
  });
});

// ---------------------------------------------------------------- rule order

describe('rule order', () => {
  it(
    'does not change any decision: allowed and reason are the same for every permutation, and the rule named is a matching ' +
      'rule of that effect',
    () => {
      fc.assert(
        fc.property(
          rulesArb.chain((rules) =>
            fc.tuple(fc.constant(rules), fc.shuffledSubarray(rules, { minLength: rules.length, maxLength: rules.length })),
          ),
          fc.array(fc.tuple(subjectArb, actionArb), { minLength: 1, maxLength: 20 }),
          ([rules, shuffled], questions) => {
            const original = compile(rules);
            const reordered = compile(shuffled);
            for (const [who, what] of questions) {
              const a = original.evaluate(who, what);
              const b = reordered.evaluate(who, what);
              expect(b.allowed).toBe(a.allowed);
              expect(b.reason).toBe(a.reason);
              expect(b.ruleId === null).toBe(a.ruleId === null);
              if (b.ruleId !== null) {
                const named = shuffled.find((r) => r.id === b.ruleId) as PolicyRule;
                expect(named.effect).toBe(b.allowed ? 'allow' : 'deny');
                expect(referenceRuleMatches(named, who, what)).toBe(true);
              }
            }
          },
        ),
        { numRuns: 500 },
      );
    },
  );
});
