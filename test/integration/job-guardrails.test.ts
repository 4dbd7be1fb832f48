/**
 * Guardrails inside the request: allow rules with job conditions decide on
 * the job spec in the body (403 naming field, value and what the rule
 * allows; nothing forwarded), malformed jobs are refused, allowed bodies go
 * upstream byte for byte; label stamping; dry-run rules let calls through
 * and are recorded.
 */
import { v1 } from '@google-cloud/aiplatform';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RULES, LOCATION, PREDICT_PATH, PROJECT, startWorld, type World } from '../helpers/world.js';

const TRAINER = `trainer@${PROJECT}.iam.gserviceaccount.com`;
const IMAGE = `us-docker.pkg.dev/${PROJECT}/training/trainer:v1`;
const NETWORK = 'projects/123456789012/global/networks/ml';
const KEY = `projects/${PROJECT}/locations/${LOCATION}/keyRings/r/cryptoKeys/k`;
const LOC = `/v1/projects/${PROJECT}/locations/${LOCATION}`;

const RULES = [
  ...DEFAULT_RULES,
  {
    id: 'ml-training',
    effect: 'allow',
    subjects: { namespaces: ['ml'] },
    permissions: [
      'training',
      'aiplatform.batchPredictionJobs.create',
      'aiplatform.endpoints.deploy',
      'aiplatform.endpoints.update',
      'aiplatform.models.upload',
      'aiplatform.nasJobs.create',
      'aiplatform.persistentResources.create',
      'aiplatform.tuningJobs.create',
      'aiplatform.endpoints.create',
    ],
    conditions: {
      jobs: {
        serviceAccounts: [TRAINER],
        machineTypes: ['g2-standard-*'],
        acceleratorTypes: ['NVIDIA_L4'],
        maxAccelerators: 4,
        maxReplicas: 10,
        images: [`us-docker.pkg.dev/${PROJECT}/training/*`],
        networks: [NETWORK],
        requireEncryptionSpec: true,
        requireLabels: ['team'],
      },
    },
  },
  // Rolled out in dry run: would stop ml/trainer's predictions, and would hold jobs to 2 accelerators.
  { id: 'freeze-predict', effect: 'deny', mode: 'dryRun', subjects: { serviceAccounts: ['ml/trainer'] }, permissions: ['predict'] },
  {
    id: 'tight-gpus',
    effect: 'allow',
    mode: 'dryRun',
    subjects: { namespaces: ['ml'] },
    permissions: ['training'],
    conditions: { jobs: { maxAccelerators: 2 } },
  },
];

const pool = (machine: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  machineSpec: { machineType: 'g2-standard-8', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1, ...machine },
  replicaCount: '1',
  containerSpec: { imageUri: IMAGE, args: ['--epochs', '3'] },
  ...extra,
});

function customJob(jobSpec: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    displayName: 'train',
    jobSpec: { workerPoolSpecs: [pool()], serviceAccount: TRAINER, network: NETWORK, ...jobSpec },
    labels: { team: 'ml' },
    encryptionSpec: { kmsKeyName: KEY },
    ...top,
  };
}

let world: World;
let stamping: World;
beforeAll(async () => {
  world = await startWorld({ vertex: { recordBodies: true }, config: (defaults) => ({ ...defaults, policy: { rules: RULES } }) });
  stamping = await startWorld({
    vertex: { recordBodies: true },
    config: (defaults) => ({ ...defaults, policy: { rules: RULES }, attribution: { jobLabels: true } }),
  });
});
afterAll(async () => {
  await Promise.all([world?.close(), stamping?.close()]);
});

async function post(
  w: World,
  path: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; error: { code: number; status: string; message: string } | undefined; forwarded: boolean }> {
  const before = w.vertex.requests.length;
  const response = await w.call(path, {
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(token === undefined ? {} : { token }),
  });
  const json = (await response.json().catch(() => undefined)) as { error?: { code: number; status: string; message: string } } | undefined;
  return { status: response.status, error: json?.error, forwarded: w.vertex.requests.length > before };
}

describe('job conditions on a CustomJob', () => {
  it('allows a job within every condition and forwards its bytes exactly', async () => {
    // Odd spacing and key order: what goes upstream is the caller's bytes, not a re-serialisation.
    const text =
      `{ "displayName":"train",\n  "labels": {"team":"ml"}, "encryptionSpec": {"kmsKeyName": "${KEY}"},\n` +
      `  "jobSpec": {"serviceAccount":"${TRAINER}", "network":"${NETWORK}",
      "workerPoolSpecs":[${JSON.stringify(pool())}, ${JSON.stringify(pool({ acceleratorCount: 3 }))}]}}`;
    const before = world.vertex.requests.length;
    const response = await world.call(`${LOC}/customJobs`, { body: text });
    expect(response.status).toBe(200);
    const sent = world.vertex.requests.slice(before).find((r) => r.method === 'POST');
    expect(sent?.body?.toString('utf8')).toBe(text);
    const entry = await world.proxy.waitForAudit(
      (e) => e.kubeVertexProxy.operation === 'customJobs.create' && e.kubeVertexProxy.status === 200,
    );
    expect(entry.kubeVertexProxy).toMatchObject({ decision: 'allow', ruleId: 'ml-training' });
  });

  it.each([
    [
      'a service account the rule does not allow',
      customJob({ serviceAccount: `admin@${PROJECT}.iam.gserviceaccount.com` }),
      `jobSpec.serviceAccount: "admin@${PROJECT}.iam.gserviceaccount.com" is not allowed by rule ml-training (allowed: ${TRAINER})`,
    ],
    [
      'no service account',
      customJob({ serviceAccount: undefined }),
      `jobSpec.serviceAccount: not given (Vertex AI would run it as a default service agent); rule ml-training allows only ${TRAINER}`,
    ],
    [
      'another machine type',
      customJob({ workerPoolSpecs: [pool({ machineType: 'a2-highgpu-8g' })] }),
      'jobSpec.workerPoolSpecs[0].machineSpec.machineType: "a2-highgpu-8g" is not allowed by rule ml-training (allowed: g2-standard-*)',
    ],
    [
      'another accelerator type',
      customJob({ workerPoolSpecs: [pool({ acceleratorType: 'NVIDIA_H100_80GB' })] }),
      'jobSpec.workerPoolSpecs[0].machineSpec.acceleratorType: "NVIDIA_H100_80GB" is not allowed by rule ml-training (allowed: NVIDIA_L4)',
    ],
    [
      '8 accelerators in one pool',
      customJob({ workerPoolSpecs: [pool({ acceleratorCount: 8 })] }),
      'jobSpec.workerPoolSpecs[0].machineSpec.acceleratorCount: 8 exceeds 4 allowed by rule ml-training',
    ],
    [
      'too many accelerators across two pools',
      customJob({ workerPoolSpecs: [pool({ acceleratorCount: 2 }), pool({ acceleratorCount: 2 }, { replicaCount: '2' })] }),
      'jobSpec.workerPoolSpecs[0]: 1 x 2 + jobSpec.workerPoolSpecs[1]: 2 x 2: 6 accelerators in total exceeds 4 allowed by ' +
        'rule ml-training',
    ],
    [
      'too many replicas',
      customJob({ workerPoolSpecs: [pool({ acceleratorType: undefined, acceleratorCount: undefined }, { replicaCount: '12' })] }),
      'jobSpec.workerPoolSpecs[0].replicaCount: 12 exceeds 10 allowed by rule ml-training',
    ],
    [
      'an image from another registry',
      customJob({ workerPoolSpecs: [pool({}, { containerSpec: { imageUri: 'docker.io/library/python:3.12' } })] }),
      'jobSpec.workerPoolSpecs[0].containerSpec.imageUri: "docker.io/library/python:3.12" is not allowed by rule ' +
        'ml-training (allowed: us-docker.pkg.dev/demo-project/training/*)',
    ],
    ['a missing label', customJob({}, { labels: { owner: 'me' } }), 'labels: missing label "team" required by rule ml-training'],
    [
      'no CMEK',
      customJob({}, { encryptionSpec: undefined }),
      'encryptionSpec.kmsKeyName: not given; rule ml-training requires a customer-managed encryption key',
    ],
  ])('refuses %s: 403 naming it, nothing forwarded', async (_what, job, message) => {
    const result = await post(world, `${LOC}/customJobs`, job);
    expect(result).toMatchObject({ status: 403, forwarded: false, error: { code: 403, status: 'PERMISSION_DENIED' } });
    expect(result.error?.message).toBe(
      `Permission 'aiplatform.customJobs.create' denied on resource '//aiplatform.googleapis.com/projects/${PROJECT}` +
        `/locations/${LOCATION}/customJobs' for system:serviceaccount:ml:trainer: ${message}.`,
    );
  });

  it('records the refusal as a deny by the rule', async () => {
    await post(
      world,
      `${LOC}/customJobs`,
      customJob({ workerPoolSpecs: [pool({ acceleratorCount: 8 })] }),
      world.token('ml', 'refused-once'),
    );
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.serviceAccount === 'refused-once');
    expect(entry.kubeVertexProxy).toMatchObject({
      decision: 'deny',
      ruleId: 'ml-training',
      reason: 'job-conditions-failed',
      errorCode: 'ERR_AUTHZ_JOB_CONDITIONS',
      status: 403,
    });
  });

  it.each([
    ['not JSON', '{"jobSpec": ', 400],
    ['a list', '[]', 400],
    ['workerPoolSpecs as an object', JSON.stringify(customJob({ workerPoolSpecs: { 0: pool() } })), 400],
    ['replicaCount as a float', JSON.stringify(customJob({ workerPoolSpecs: [pool({}, { replicaCount: 1.5 })] })), 400],
    ['acceleratorType unknown by number', JSON.stringify(customJob({ workerPoolSpecs: [pool({ acceleratorType: 999 })] })), 400],
    ['no jobSpec at all', JSON.stringify({ displayName: 'x', labels: { team: 'ml' } }), 400],
  ])('refuses a body that is %s, forwarding nothing', async (_what, text, status) => {
    const result = await post(world, `${LOC}/customJobs`, text);
    expect(result.status).toBe(status);
    expect(result.forwarded).toBe(false);
    expect(result.error?.status).toBe('INVALID_ARGUMENT');
  });

  it('does not read the body of calls whose rule has no conditions for them (reading a job)', async () => {
    const response = await world.call(`${LOC}/customJobs/123`);
    expect([200, 404]).toContain(response.status);
  });
});

describe('job conditions with the official Node client (REST, enums sent as numbers)', () => {
  function jobs(): InstanceType<typeof v1.JobServiceClient> {
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: world.token('ml', 'trainer') });
    return new v1.JobServiceClient({ apiEndpoint: '127.0.0.1', port: world.proxy.dataPort, fallback: true, protocol: 'http', authClient });
  }
  const parent = `projects/${PROJECT}/locations/${LOCATION}`;
  const clientJob = (acceleratorCount: number) => ({
    displayName: 'from-the-client',
    labels: { team: 'ml' },
    encryptionSpec: { kmsKeyName: KEY },
    jobSpec: {
      serviceAccount: TRAINER,
      network: NETWORK,
      workerPoolSpecs: [
        {
          machineSpec: { machineType: 'g2-standard-8', acceleratorType: 'NVIDIA_L4' as const, acceleratorCount },
          replicaCount: 1,
          containerSpec: { imageUri: IMAGE },
        },
      ],
    },
  });

  it('creates a job within the conditions', async () => {
    const before = world.vertex.requests.length;
    const [job] = await jobs().createCustomJob({ parent, customJob: clientJob(2) });
    expect(job.name).toMatch(/\/customJobs\/\d+$/);
    // The client sent the accelerator type as its enum number; the proxy read it as NVIDIA_L4.
    const sent = JSON.parse(
      world.vertex.requests
        .slice(before)
        .find((r) => r.method === 'POST')
        ?.body?.toString('utf8') ?? '{}',
    ) as { jobSpec: { workerPoolSpecs: Array<{ machineSpec: { acceleratorType: unknown } }> } };
    expect(sent.jobSpec.workerPoolSpecs[0]?.machineSpec.acceleratorType).toBe(11);
  });

  it('surfaces the refusal as PERMISSION_DENIED with the message', async () => {
    const error = await jobs()
      .createCustomJob({ parent, customJob: clientJob(8) })
      .then(
        () => undefined,
        (e: unknown) => e as { code: number; message: string },
      );
    expect(error?.code).toBe(7);
    expect(error?.message).toContain('jobSpec.workerPoolSpecs[0].machineSpec.acceleratorCount: 8 exceeds 4 allowed by rule ml-training');
  });
});

describe('job conditions on the other job-creating methods', () => {
  const spec = (serviceAccount = TRAINER) => ({ workerPoolSpecs: [pool()], serviceAccount, network: NETWORK });
  const wrapped = (body: Record<string, unknown>) => ({ ...body, labels: { team: 'ml' }, encryptionSpec: { kmsKeyName: KEY } });
  const cases: Array<[string, string, Record<string, unknown>, Record<string, unknown>, string]> = [
    [
      'hyperparameterTuningJobs',
      `${LOC}/hyperparameterTuningJobs`,
      wrapped({ trialJobSpec: spec(), parallelTrialCount: 2 }),
      wrapped({ trialJobSpec: spec(), parallelTrialCount: 5 }),
      'trialJobSpec.workerPoolSpecs[0]: 1 x 1 x 5 parallel trials: 5 accelerators in total exceeds 4 allowed by rule ml-training',
    ],
    [
      'trainingPipelines',
      `${LOC}/trainingPipelines`,
      wrapped({ trainingTaskInputs: spec() }),
      wrapped({ trainingTaskInputs: spec(`x@${PROJECT}.iam.gserviceaccount.com`) }),
      `trainingTaskInputs.serviceAccount: "x@${PROJECT}.iam.gserviceaccount.com" is not allowed by rule ml-training (allowed: ${TRAINER})`,
    ],
    [
      'pipelineJobs',
      `${LOC}/pipelineJobs`,
      wrapped({ serviceAccount: TRAINER, network: NETWORK }),
      wrapped({ serviceAccount: TRAINER }),
      `network: not given (no VPC peering); rule ml-training allows only ${NETWORK}`,
    ],
    [
      'batchPredictionJobs',
      `${LOC}/batchPredictionJobs`,
      wrapped({
        serviceAccount: TRAINER,
        dedicatedResources: { machineSpec: { machineType: 'g2-standard-4' }, startingReplicaCount: 1, maxReplicaCount: 4 },
      }),
      wrapped({
        serviceAccount: TRAINER,
        dedicatedResources: { machineSpec: { machineType: 'g2-standard-4' }, startingReplicaCount: 1, maxReplicaCount: 40 },
      }),
      'dedicatedResources.maxReplicaCount: 40 exceeds 10 allowed by rule ml-training',
    ],
    [
      'endpoints:deployModel',
      `${LOC}/endpoints/1234567890:deployModel`,
      {
        deployedModel: {
          model: `projects/${PROJECT}/locations/${LOCATION}/models/1`,
          serviceAccount: TRAINER,
          dedicatedResources: {
            machineSpec: { machineType: 'g2-standard-4', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
            minReplicaCount: 1,
          },
        },
      },
      {
        deployedModel: {
          model: `projects/${PROJECT}/locations/${LOCATION}/models/1`,
          serviceAccount: TRAINER,
          dedicatedResources: { machineSpec: { machineType: 'n1-highmem-96' }, minReplicaCount: 1 },
        },
      },
      'deployedModel.dedicatedResources.machineSpec.machineType: "n1-highmem-96" is not allowed by rule ml-training ' +
        '(allowed: g2-standard-*)',
    ],
    [
      'endpoints:mutateDeployedModel',
      `${LOC}/endpoints/1234567890:mutateDeployedModel`,
      {
        deployedModel: {
          id: '1',
          serviceAccount: TRAINER,
          dedicatedResources: { machineSpec: { machineType: 'g2-standard-4' }, minReplicaCount: 1, maxReplicaCount: 2 },
        },
        updateMask: 'dedicatedResources',
      },
      {
        deployedModel: { id: '1', dedicatedResources: { machineSpec: { machineType: 'g2-standard-4' }, minReplicaCount: 1 } },
        updateMask: 'dedicatedResources',
      },
      `deployedModel.serviceAccount: not given (Vertex AI would run it as a default service agent); rule ml-training ` +
        `allows only ${TRAINER}`,
    ],
    [
      'models:upload',
      `${LOC}/models:upload`,
      { model: { displayName: 'm', containerSpec: { imageUri: IMAGE }, labels: { team: 'ml' }, encryptionSpec: { kmsKeyName: KEY } } },
      {
        model: {
          displayName: 'm',
          containerSpec: { imageUri: 'ghcr.io/x/serve:1' },
          labels: { team: 'ml' },
          encryptionSpec: { kmsKeyName: KEY },
        },
      },
      'model.containerSpec.imageUri: "ghcr.io/x/serve:1" is not allowed by rule ml-training (allowed: ' +
        'us-docker.pkg.dev/demo-project/training/*)',
    ],
    [
      'nasJobs',
      `${LOC}/nasJobs`,
      wrapped({
        nasJobSpec: {
          multiTrialAlgorithmSpec: { searchTrialSpec: { searchTrialJobSpec: spec(), maxTrialCount: 4, maxParallelTrialCount: 2 } },
        },
      }),
      wrapped({
        nasJobSpec: {
          multiTrialAlgorithmSpec: { searchTrialSpec: { searchTrialJobSpec: spec(), maxTrialCount: 8, maxParallelTrialCount: 5 } },
        },
      }),
      'nasJobSpec.multiTrialAlgorithmSpec.searchTrialSpec.searchTrialJobSpec.workerPoolSpecs[0]: 1 x 1 x 5 parallel ' +
        'trials: 5 accelerators in total exceeds 4 allowed by rule ml-training',
    ],
    [
      'persistentResources',
      `${LOC}/persistentResources?persistentResourceId=ml-pool`,
      wrapped({
        resourcePools: [
          { machineSpec: { machineType: 'g2-standard-8', acceleratorType: 'NVIDIA_L4', acceleratorCount: 2 }, replicaCount: '1' },
        ],
        network: NETWORK,
        resourceRuntimeSpec: { serviceAccountSpec: { enableCustomServiceAccount: true, serviceAccount: TRAINER } },
      }),
      wrapped({
        resourcePools: [
          { machineSpec: { machineType: 'a3-highgpu-8g', acceleratorType: 'NVIDIA_L4', acceleratorCount: 2 }, replicaCount: '1' },
        ],
        network: NETWORK,
        resourceRuntimeSpec: { serviceAccountSpec: { enableCustomServiceAccount: true, serviceAccount: TRAINER } },
      }),
      'resourcePools[0].machineSpec.machineType: "a3-highgpu-8g" is not allowed by rule ml-training (allowed: g2-standard-*)',
    ],
    [
      'tuningJobs',
      `${LOC}/tuningJobs`,
      wrapped({
        baseModel: 'gemini-2.5-flash',
        supervisedTuningSpec: { trainingDatasetUri: 'gs://b/train.jsonl' },
        serviceAccount: TRAINER,
      }),
      wrapped({ baseModel: 'gemini-2.5-flash', supervisedTuningSpec: { trainingDatasetUri: 'gs://b/train.jsonl' } }),
      `serviceAccount: not given (Vertex AI would run it as a default service agent); rule ml-training allows only ${TRAINER}`,
    ],
  ];

  it.each(cases)(
    '%s: an allowed body goes upstream, a failing one is refused naming the field',
    async (_kind, path, allowed, refused, message) => {
      const ok = await post(world, path, allowed);
      expect(ok.forwarded).toBe(true);
      expect(ok.status).not.toBe(403);
      const no = await post(world, path, refused);
      expect(no).toMatchObject({ status: 403, forwarded: false });
      expect(no.error?.message).toContain(`: ${message}.`);
    },
  );
});

describe('dry-run rules', () => {
  it('a dry-run deny lets the call through, and records what it would have decided', async () => {
    const response = await world.call(PREDICT_PATH, {
      body: JSON.stringify({ instances: [{}] }),
      token: world.token('ml', 'trainer', { podName: 'dry-run-pod' }),
    });
    expect(response.status).toBe(200);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.pod === 'dry-run-pod');
    expect(entry.kubeVertexProxy).toMatchObject({
      decision: 'allow',
      ruleId: 'ml-predict',
      dryRun: [{ rule: 'freeze-predict', outcome: 'deny' }],
    });
    const metrics = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/kube_vertex_proxy_policy_dry_run_total\{rule="freeze-predict",outcome="deny"\} [1-9]/);
  });

  it('a dry-run allow with job conditions judges the job, and changes nothing', async () => {
    const result = await post(
      world,
      `${LOC}/customJobs`,
      customJob({ workerPoolSpecs: [pool({ acceleratorCount: 3 })] }),
      world.token('ml', 'dry-jobs'),
    );
    expect(result.status).toBe(200);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.serviceAccount === 'dry-jobs');
    expect(entry.kubeVertexProxy).toMatchObject({
      decision: 'allow',
      ruleId: 'ml-training',
      dryRun: [{ rule: 'tight-gpus', outcome: 'deny' }],
    });
  });
});

describe('attribution.jobLabels', () => {
  it('adds kvp-namespace and kvp-service-account to a created job, and changes nothing else', async () => {
    const job = customJob({}, { labels: { team: 'ml', 'kvp-namespace': 'spoofed' } });
    const before = stamping.vertex.requests.length;
    const response = await stamping.call(`${LOC}/customJobs`, { body: JSON.stringify(job), token: stamping.token('ml', 'trainer') });
    expect(response.status).toBe(200);
    const sent = stamping.vertex.requests.slice(before).find((r) => r.method === 'POST');
    const forwarded = JSON.parse(sent?.body?.toString('utf8') ?? '{}') as Record<string, unknown>;
    expect(forwarded).toEqual({ ...job, labels: { team: 'ml', 'kvp-namespace': 'ml', 'kvp-service-account': 'trainer' } });
    expect(sent?.headers['content-length']).toBe(String(sent?.body?.length));
    // The job Vertex AI created carries them.
    expect(((await response.json()) as { labels?: Record<string, string> }).labels).toMatchObject({ 'kvp-namespace': 'ml' });
  });

  it('labels a created endpoint too', async () => {
    const before = stamping.vertex.requests.length;
    const response = await stamping.call(`${LOC}/endpoints`, {
      body: JSON.stringify({ displayName: 'serving' }),
      token: stamping.token('ml', 'trainer'),
    });
    expect(response.status).not.toBe(403);
    const sent = stamping.vertex.requests.slice(before).find((r) => r.method === 'POST');
    expect(JSON.parse(sent?.body?.toString('utf8') ?? '{}')).toEqual({
      displayName: 'serving',
      labels: { 'kvp-namespace': 'ml', 'kvp-service-account': 'trainer' },
    });
  });

  it('leaves other calls alone', async () => {
    const text = '{"instances": [ {} ] }';
    const before = stamping.vertex.requests.length;
    expect((await stamping.call(PREDICT_PATH, { body: text })).status).toBe(200);
    expect(stamping.vertex.requests[before]?.body?.toString('utf8')).toBe(text);
  });
});
