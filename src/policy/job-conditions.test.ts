import { describe, expect, it } from 'vitest';
import type { JobConditionsConfig, PolicyRule } from '../config/schema.js';
import { KNOWN_PERMISSIONS, operationById } from '../vertex/operation-table.js';
import { compilePolicy } from './compile.js';
import type { PolicyAction } from './decision.js';
import { checkJobConditions, compileJobConditions, imageName } from './job-conditions.js';
import { allowCandidates, decideWithBody, dryRunByUrl } from './job-decision.js';
import { extractJobFacts, jobKindOf } from './job-spec.js';

const ML_TRAINING: JobConditionsConfig = {
  serviceAccounts: ['trainer@my-proj.iam.gserviceaccount.com'],
  machineTypes: ['g2-standard-*'],
  acceleratorTypes: ['NVIDIA_L4'],
  maxAccelerators: 4,
  maxReplicas: 10,
  images: ['us-docker.pkg.dev/my-proj/training/*'],
  networks: ['projects/123456789012/global/networks/ml'],
  requireEncryptionSpec: true,
  requireLabels: ['team'],
};

const pool = (overrides: Record<string, unknown> = {}, machine: Record<string, unknown> = {}) => ({
  machineSpec: { machineType: 'g2-standard-8', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1, ...machine },
  replicaCount: '1',
  containerSpec: { imageUri: 'us-docker.pkg.dev/my-proj/training/trainer@sha256:0123' },
  ...overrides,
});

function job(jobSpec: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  return {
    displayName: 'train',
    jobSpec: {
      workerPoolSpecs: [pool()],
      serviceAccount: 'trainer@my-proj.iam.gserviceaccount.com',
      network: 'projects/123456789012/global/networks/ml',
      ...jobSpec,
    },
    labels: { team: 'ml' },
    encryptionSpec: { kmsKeyName: 'projects/my-proj/locations/us-central1/keyRings/r/cryptoKeys/k' },
    ...top,
  };
}

const messages = (body: unknown, conditions = ML_TRAINING) =>
  checkJobConditions(compileJobConditions(conditions), extractJobFacts('customJob', body), 'ml-training').map((v) => v.message);

describe('checkJobConditions', () => {
  it('a job within every condition passes', () => {
    expect(messages(job())).toEqual([]);
  });

  it.each([
    [
      'another service account',
      job({ serviceAccount: 'admin@my-proj.iam.gserviceaccount.com' }),
      'jobSpec.serviceAccount: "admin@my-proj.iam.gserviceaccount.com" is not allowed by rule ml-training (allowed: ' +
        'trainer@my-proj.iam.gserviceaccount.com)',
    ],
    [
      'no service account',
      job({ serviceAccount: undefined }),
      'jobSpec.serviceAccount: not given (Vertex AI would run it as a default service agent); rule ml-training allows only ' +
        'trainer@my-proj.iam.gserviceaccount.com',
    ],
    [
      'another machine type',
      job({ workerPoolSpecs: [pool({}, { machineType: 'a2-highgpu-8g' })] }),
      'jobSpec.workerPoolSpecs[0].machineSpec.machineType: "a2-highgpu-8g" is not allowed by rule ml-training (allowed: g2-standard-*)',
    ],
    [
      'another accelerator type',
      job({ workerPoolSpecs: [pool({}, { acceleratorType: 'NVIDIA_H100_80GB' })] }),
      'jobSpec.workerPoolSpecs[0].machineSpec.acceleratorType: "NVIDIA_H100_80GB" is not allowed by rule ml-training (allowed: NVIDIA_L4)',
    ],
    [
      'too many accelerators in one pool',
      job({ workerPoolSpecs: [pool({}, { acceleratorCount: 8 })] }),
      'jobSpec.workerPoolSpecs[0].machineSpec.acceleratorCount: 8 exceeds 4 allowed by rule ml-training',
    ],
    [
      'too many accelerators across two pools',
      job({ workerPoolSpecs: [pool(), pool({ replicaCount: '2' }, { acceleratorCount: 2 })] }),
      'jobSpec.workerPoolSpecs[0]: 1 x 1 + jobSpec.workerPoolSpecs[1]: 2 x 2: 5 accelerators in total exceeds 4 allowed by ' +
        'rule ml-training',
    ],
    [
      'too many replicas',
      job({ workerPoolSpecs: [pool({ replicaCount: '11' }, { acceleratorType: undefined, acceleratorCount: undefined })] }),
      'jobSpec.workerPoolSpecs[0].replicaCount: 11 exceeds 10 allowed by rule ml-training',
    ],
    [
      'an image from another registry',
      job({ workerPoolSpecs: [pool({ containerSpec: { imageUri: 'docker.io/library/python:3.12' } })] }),
      'jobSpec.workerPoolSpecs[0].containerSpec.imageUri: "docker.io/library/python:3.12" is not allowed by rule ' +
        'ml-training (allowed: us-docker.pkg.dev/my-proj/training/*)',
    ],
    [
      'an image one level down',
      job({ workerPoolSpecs: [pool({ containerSpec: { imageUri: 'us-docker.pkg.dev/my-proj/training/x/y:1' } })] }),
      'jobSpec.workerPoolSpecs[0].containerSpec.imageUri: "us-docker.pkg.dev/my-proj/training/x/y:1" is not allowed by ' +
        'rule ml-training (allowed: us-docker.pkg.dev/my-proj/training/*)',
    ],
    [
      'another network',
      job({ network: 'projects/123456789012/global/networks/default' }),
      'jobSpec.network: "projects/123456789012/global/networks/default" is not allowed by rule ml-training (allowed: ' +
        'projects/123456789012/global/networks/ml)',
    ],
    [
      'no CMEK',
      job({}, { encryptionSpec: undefined }),
      'encryptionSpec.kmsKeyName: not given; rule ml-training requires a customer-managed encryption key',
    ],
    ['a missing label', job({}, { labels: { owner: 'me' } }), 'labels: missing label "team" required by rule ml-training'],
  ])('%s is refused, naming field, value and what the rule allows', (_what, body, message) => {
    expect(messages(body)).toEqual([message]);
  });

  it('"" in serviceAccounts allows a job that names none', () => {
    expect(messages(job({ serviceAccount: undefined }), { serviceAccounts: ['', 'trainer@*'] })).toEqual([]);
    expect(
      messages(job({ serviceAccount: 'trainer@evil.iam.gserviceaccount.com' }), {
        serviceAccounts: ['trainer@my-proj.iam.gserviceaccount.com'],
      }),
    ).toHaveLength(1);
    // `*` stays before the "@": it does not reach into another domain.
    expect(messages(job({ serviceAccount: 'x@evil.com' }), { serviceAccounts: ['*@my-proj.iam.gserviceaccount.com'] })).toHaveLength(1);
  });

  it('counts replicas x accelerators x parallel trials for tuning jobs', () => {
    const conditions = compileJobConditions({ maxAccelerators: 4 });
    const facts = extractJobFacts('hyperparameterTuningJob', {
      trialJobSpec: { workerPoolSpecs: [pool({}, { acceleratorCount: 2 })] },
      parallelTrialCount: 3,
    });
    expect(checkJobConditions(conditions, facts, 'r').map((v) => v.message)).toEqual([
      'trialJobSpec.workerPoolSpecs[0]: 1 x 2 x 3 parallel trials: 6 accelerators in total exceeds 4 allowed by rule r',
    ]);
  });

  it('image patterns: tag and digest allowed unless the pattern pins one', () => {
    expect(imageName('us-docker.pkg.dev/p/r/i:v1@sha256:ab')).toBe('us-docker.pkg.dev/p/r/i');
    expect(imageName('localhost:5000/i')).toBe('localhost:5000/i');
    const pinned = { images: ['us-docker.pkg.dev/my-proj/training/trainer:v2'] };
    expect(
      messages(job({ workerPoolSpecs: [pool({ containerSpec: { imageUri: 'us-docker.pkg.dev/my-proj/training/trainer:v2' } })] }), pinned),
    ).toEqual([]);
    expect(
      messages(job({ workerPoolSpecs: [pool({ containerSpec: { imageUri: 'us-docker.pkg.dev/my-proj/training/trainer:v3' } })] }), pinned),
    ).toHaveLength(1);
  });

  it('conditions a method does not have are not applied; a missing value is "not given"', () => {
    const deploy = extractJobFacts('deployModel', {
      deployedModel: { model: 'm', dedicatedResources: { machineSpec: { machineType: 'g2-standard-4' }, minReplicaCount: 1 } },
    });
    const violations = checkJobConditions(
      compileJobConditions({
        requireLabels: ['team'],
        requireEncryptionSpec: true,
        networks: ['x'],
        serviceAccounts: ['serve@p.iam.gserviceaccount.com'],
      }),
      deploy,
      'r',
    );
    expect(violations.map((v) => v.path)).toEqual(['deployedModel.serviceAccount']);
  });
});

const PERMS = new Set([...KNOWN_PERMISSIONS]);
const ml = { namespace: 'ml', serviceAccount: 'trainer', labels: { team: 'ml' } };
const createJob: PolicyAction = {
  operationId: 'customJobs.create',
  permission: 'aiplatform.customJobs.create',
  groups: operationById('customJobs.create')?.groups ?? [],
  resource: 'projects/my-proj/locations/us-central1/customJobs',
  project: 'my-proj',
  location: 'us-central1',
};
const getJob: PolicyAction = {
  ...createJob,
  operationId: 'customJobs.get',
  permission: 'aiplatform.customJobs.get',
  groups: ['training', 'read'],
  resource: 'projects/my-proj/locations/us-central1/customJobs/1',
};

function policyOf(rules: PolicyRule[]) {
  const { policy, problems } = compilePolicy(rules, { knownPermissions: PERMS, projects: ['my-proj'], locations: ['us-central1'] });
  expect(problems).toEqual([]);
  return policy;
}

describe('conditional allow rules and dry-run rules', () => {
  const small: PolicyRule = {
    id: 'ml-small',
    effect: 'allow',
    subjects: { namespaces: ['ml'] },
    permissions: ['training'],
    conditions: { jobs: { maxAccelerators: 1 } },
  };
  const big: PolicyRule = {
    id: 'ml-big',
    effect: 'allow',
    subjects: { serviceAccounts: ['ml/trainer'] },
    permissions: ['training'],
    conditions: { jobs: { maxAccelerators: 8 } },
  };
  const facts = (count: number) => extractJobFacts('customJob', job({ workerPoolSpecs: [pool({}, { acceleratorCount: count })] }));

  it('the URL decision lists every matching allow rule, config order, up to the first without conditions', () => {
    const policy = policyOf([
      small,
      big,
      { id: 'ml-any', effect: 'allow', subjects: { namespaces: ['ml'] }, permissions: ['training'] },
      { id: 'later', effect: 'allow', subjects: { namespaces: ['ml'] }, permissions: ['*'] },
    ]);
    const decision = policy.evaluate(ml, createJob);
    expect(decision.ruleId).toBe('ml-small');
    expect(allowCandidates(policy, decision, ml, createJob).map((r) => r.id)).toEqual(['ml-small', 'ml-big', 'ml-any']);
    // Reading a job is not creating one: the authorize step asks only for job-creating methods.
    expect(jobKindOf(operationById('customJobs.get') as { rpc: string })).toBeUndefined();
    expect(policy.evaluate(ml, getJob).ruleId).toBe('ml-small');
  });

  it('the body picks the first rule whose conditions hold; none: deny naming the first rule and its violation', () => {
    const policy = policyOf([small, big]);
    const decision = policy.evaluate(ml, createJob);
    const pending = { kind: 'customJob' as const, candidates: allowCandidates(policy, decision, ml, createJob), dryRun: [] };
    expect(decideWithBody(pending, facts(1), decision).decision.ruleId).toBe('ml-small');
    expect(decideWithBody(pending, facts(4), decision).decision).toMatchObject({ allowed: true, ruleId: 'ml-big' });
    const refused = decideWithBody(pending, facts(16), decision);
    expect(refused.decision).toEqual({ allowed: false, ruleId: 'ml-small', reason: 'job-conditions-failed' });
    expect(refused.violations.map((v) => v.message)).toEqual([
      'jobSpec.workerPoolSpecs[0].machineSpec.acceleratorCount: 16 exceeds 1 allowed by rule ml-small',
      'jobSpec.workerPoolSpecs[0].machineSpec.acceleratorCount: 16 exceeds 8 allowed by rule ml-big',
    ]);
  });

  it('a deny still wins over any conditional allow', () => {
    const policy = policyOf([
      small,
      { id: 'no-training', effect: 'deny', subjects: { serviceAccounts: ['ml/trainer'] }, permissions: ['training'] },
    ]);
    const decision = policy.evaluate(ml, createJob);
    expect(decision.allowed).toBe(false);
    expect(allowCandidates(policy, decision, ml, createJob)).toEqual([]);
  });

  it('dry-run rules never decide, and say what they would have', () => {
    const policy = policyOf([
      { id: 'ml-all', effect: 'allow', subjects: { namespaces: ['ml'] }, permissions: ['*'] },
      { id: 'tighter', effect: 'deny', mode: 'dryRun', subjects: { namespaces: ['ml'] }, permissions: ['training'] },
      { id: 'new-allow', effect: 'allow', mode: 'dryRun', subjects: { namespaces: ['web'] }, permissions: ['*'] },
      {
        id: 'job-limit',
        effect: 'allow',
        mode: 'dryRun',
        subjects: { namespaces: ['ml'] },
        permissions: ['training'],
        conditions: { jobs: { maxAccelerators: 2 } },
      },
    ]);
    expect(policy.evaluate(ml, createJob)).toMatchObject({ allowed: true, ruleId: 'ml-all' });
    expect(policy.evaluate({ ...ml, namespace: 'web' }, createJob)).toMatchObject({ allowed: false, ruleId: null });
    const byUrl = dryRunByUrl(policy, ml, createJob, 'customJob');
    expect(byUrl?.outcomes).toEqual([{ rule: 'tighter', outcome: 'deny' }]);
    expect(byUrl?.needBody.map((r) => r.id)).toEqual(['job-limit']);
    expect(dryRunByUrl(policy, { ...ml, namespace: 'web' }, getJob, undefined)?.outcomes).toEqual([
      { rule: 'new-allow', outcome: 'allow' },
    ]);
    const pending = { kind: 'customJob' as const, candidates: [], dryRun: byUrl?.needBody ?? [] };
    const decision = policy.evaluate(ml, createJob);
    expect(decideWithBody(pending, facts(1), decision)).toMatchObject({ decision, dryRun: [{ rule: 'job-limit', outcome: 'allow' }] });
    expect(decideWithBody(pending, facts(3), decision)).toMatchObject({ decision, dryRun: [{ rule: 'job-limit', outcome: 'deny' }] });
  });

  it('the loader refuses conditions on deny rules and malformed patterns', () => {
    const { problems } = compilePolicy(
      [
        {
          id: 'd',
          effect: 'deny',
          subjects: { namespaces: ['ml'] },
          permissions: ['training'],
          conditions: { jobs: { images: ['python'], serviceAccounts: ['not-an-email'] } },
        },
      ],
      { knownPermissions: PERMS, projects: ['my-proj'], locations: ['us-central1'] },
    );
    expect(problems.map((p) => p.path)).toEqual([
      'policy.rules[0].conditions',
      'policy.rules[0].conditions.jobs.serviceAccounts[0]',
      'policy.rules[0].conditions.jobs.images[0]',
    ]);
  });
});
