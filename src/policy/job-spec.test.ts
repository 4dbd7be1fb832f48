import { describe, expect, it } from 'vitest';
import { extractJobFacts, jobKindOf, JobSpecError, type JobKind } from './job-spec.js';
import { OPERATIONS } from '../vertex/operation-table.js';

const pool = (
  machineType: string,
  acceleratorType: string | number | undefined,
  acceleratorCount: number | string | undefined,
  replicaCount: string | number | undefined,
  image = 'us-docker.pkg.dev/p/training/t:1',
) => ({
  machineSpec: {
    machineType,
    ...(acceleratorType === undefined ? {} : { acceleratorType }),
    ...(acceleratorCount === undefined ? {} : { acceleratorCount }),
  },
  ...(replicaCount === undefined ? {} : { replicaCount }),
  containerSpec: { imageUri: image, args: ['--epochs', '3'] },
});

const customJobSpec = {
  workerPoolSpecs: [pool('g2-standard-8', 'NVIDIA_L4', 1, '1'), pool('g2-standard-8', 'NVIDIA_L4', 2, '3')],
  serviceAccount: 'trainer@p.iam.gserviceaccount.com',
  network: 'projects/123/global/networks/ml',
};

describe('jobKindOf', () => {
  it('names the job-creating methods of the operation table by RPC, and nothing else', () => {
    const kinds = OPERATIONS.filter((spec) => jobKindOf(spec) !== undefined).map((spec) => spec.id);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'customJobs.create',
        'trainingPipelines.create',
        'pipelineJobs.create',
        'batchPredictionJobs.create',
        'hyperparameterTuningJobs.create',
        'endpoints.deployModel',
        'endpoints.mutateDeployedModel',
        'models.upload',
      ]),
    );
    expect(jobKindOf({ rpc: 'GetCustomJob' })).toBeUndefined();
    expect(jobKindOf({ rpc: 'toString' })).toBeUndefined();
    expect(jobKindOf({ rpc: 'CreateNasJob' })).toBe('nasJob');
    expect(jobKindOf({ rpc: 'CreateTuningJob' })).toBe('tuningJob');
    expect(jobKindOf({ rpc: 'CreatePersistentResource' })).toBe('persistentResource');
  });
});

describe('extractJobFacts', () => {
  it('CustomJob: pools (int64 as string or number), images, service account, network, key, labels', () => {
    const facts = extractJobFacts('customJob', {
      displayName: 'x',
      jobSpec: customJobSpec,
      labels: { team: 'ml' },
      encryptionSpec: { kmsKeyName: 'projects/p/locations/l/keyRings/r/cryptoKeys/k' },
    });
    expect(facts.serviceAccounts).toEqual([{ path: 'jobSpec.serviceAccount', value: 'trainer@p.iam.gserviceaccount.com' }]);
    expect(facts.networks).toEqual([{ path: 'jobSpec.network', value: 'projects/123/global/networks/ml' }]);
    expect(
      facts.pools.map((p) => [
        p.path,
        p.machineType?.value,
        p.acceleratorType?.value,
        p.acceleratorCount.value,
        p.replicas.value,
        p.parallel.value,
      ]),
    ).toEqual([
      ['jobSpec.workerPoolSpecs[0]', 'g2-standard-8', 'NVIDIA_L4', 1, 1, 1],
      ['jobSpec.workerPoolSpecs[1]', 'g2-standard-8', 'NVIDIA_L4', 2, 3, 1],
    ]);
    expect(facts.pools[1]?.replicas.path).toBe('jobSpec.workerPoolSpecs[1].replicaCount');
    expect(facts.images.map((i) => i.path)).toEqual([
      'jobSpec.workerPoolSpecs[0].containerSpec.imageUri',
      'jobSpec.workerPoolSpecs[1].containerSpec.imageUri',
    ]);
    expect(facts.encryptionKey).toEqual({ path: 'encryptionSpec.kmsKeyName', value: 'projects/p/locations/l/keyRings/r/cryptoKeys/k' });
    expect(facts.labels).toEqual({ path: 'labels', value: ['team'] });
  });

  it('CustomJob: what is left out reads as "not given", never as allowed', () => {
    const facts = extractJobFacts('customJob', {
      jobSpec: {
        workerPoolSpecs: [
          {
            machineSpec: { machineType: 'n1-standard-4', acceleratorType: 'NVIDIA_TESLA_T4' },
            pythonPackageSpec: { executorImageUri: 'gcr.io/x/y' },
          },
        ],
      },
    });
    expect(facts.serviceAccounts).toEqual([{ path: 'jobSpec.serviceAccount', value: '' }]);
    expect(facts.networks).toEqual([{ path: 'jobSpec.network', value: '' }]);
    // An accelerator type without a count books one, and a missing replica count is one.
    expect(facts.pools[0]?.acceleratorCount.value).toBe(1);
    expect(facts.pools[0]?.replicas.value).toBe(1);
    expect(facts.images).toEqual([{ path: 'jobSpec.workerPoolSpecs[0].pythonPackageSpec.executorImageUri', value: 'gcr.io/x/y' }]);
    expect(facts.encryptionKey?.value).toBe('');
    expect(facts.labels?.value).toEqual([]);
  });

  it('reads numeric enums (the Node client sends them) and refuses unknown ones', () => {
    expect(extractJobFacts('customJob', { jobSpec: { workerPoolSpecs: [pool('a2', 11, 1, 1)] } }).pools[0]?.acceleratorType?.value).toBe(
      'NVIDIA_L4',
    );
    expect(extractJobFacts('customJob', { jobSpec: { workerPoolSpecs: [pool('a2', 0, 0, 1)] } }).pools[0]?.acceleratorType).toBeUndefined();
    expect(() => extractJobFacts('customJob', { jobSpec: { workerPoolSpecs: [pool('a2', 999, 1, 1)] } })).toThrow(/acceleratorType/);
  });

  it.each([
    ['not an object', [], ''],
    ['no jobSpec', {}, 'jobSpec'],
    ['workerPoolSpecs not a list', { jobSpec: { workerPoolSpecs: { a: 1 } } }, 'jobSpec.workerPoolSpecs'],
    ['replicaCount a float', { jobSpec: { workerPoolSpecs: [pool('m', 'NVIDIA_L4', 1, 1.5)] } }, 'jobSpec.workerPoolSpecs[0].replicaCount'],
    [
      'replicaCount negative',
      { jobSpec: { workerPoolSpecs: [pool('m', 'NVIDIA_L4', 1, '-1')] } },
      'jobSpec.workerPoolSpecs[0].replicaCount',
    ],
    [
      'acceleratorCount text',
      { jobSpec: { workerPoolSpecs: [pool('m', 'NVIDIA_L4', 'eight', 1)] } },
      'jobSpec.workerPoolSpecs[0].machineSpec.acceleratorCount',
    ],
    ['serviceAccount a list', { jobSpec: { serviceAccount: ['a@b'] } }, 'jobSpec.serviceAccount'],
    [
      'imageUri a number',
      { jobSpec: { workerPoolSpecs: [{ containerSpec: { imageUri: 7 } }] } },
      'jobSpec.workerPoolSpecs[0].containerSpec.imageUri',
    ],
    ['labels a list', { jobSpec: {}, labels: ['team'] }, 'labels'],
    ['label value a number', { jobSpec: {}, labels: { team: 1 } }, 'labels["team"]'],
    ['pool entry a string', { jobSpec: { workerPoolSpecs: ['x'] } }, 'jobSpec.workerPoolSpecs[0]'],
  ])('refuses a CustomJob with %s, naming the field', (_what, body, path) => {
    let error: unknown;
    try {
      extractJobFacts('customJob', body);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(JobSpecError);
    expect((error as JobSpecError).path).toBe(path);
  });

  it('HyperparameterTuningJob: the trial spec, times the parallel trials', () => {
    const facts = extractJobFacts('hyperparameterTuningJob', { trialJobSpec: customJobSpec, parallelTrialCount: 4, maxTrialCount: 20 });
    expect(facts.serviceAccounts?.[0]?.path).toBe('trialJobSpec.serviceAccount');
    expect(facts.pools.map((p) => p.parallel.value)).toEqual([4, 4]);
  });

  it('NasJob: search and train trial specs', () => {
    const facts = extractJobFacts('nasJob', {
      nasJobSpec: {
        multiTrialAlgorithmSpec: {
          searchTrialSpec: { searchTrialJobSpec: customJobSpec, maxParallelTrialCount: '2' },
          trainTrialSpec: {
            trainTrialJobSpec: { workerPoolSpecs: [pool('a2-highgpu-8g', 'NVIDIA_TESLA_A100', 8, 1)] },
            maxParallelTrialCount: 1,
          },
        },
      },
    });
    expect(facts.pools.map((p) => p.path)).toEqual([
      'nasJobSpec.multiTrialAlgorithmSpec.searchTrialSpec.searchTrialJobSpec.workerPoolSpecs[0]',
      'nasJobSpec.multiTrialAlgorithmSpec.searchTrialSpec.searchTrialJobSpec.workerPoolSpecs[1]',
      'nasJobSpec.multiTrialAlgorithmSpec.trainTrialSpec.trainTrialJobSpec.workerPoolSpecs[0]',
    ]);
    expect(facts.pools.map((p) => p.parallel.value)).toEqual([2, 2, 1]);
    expect(facts.serviceAccounts?.map((s) => s.value)).toEqual(['trainer@p.iam.gserviceaccount.com', '']);
  });

  it('TrainingPipeline: the custom-job spec inside trainingTaskInputs, and the serving image', () => {
    const facts = extractJobFacts('trainingPipeline', {
      trainingTaskDefinition: 'gs://google-cloud-aiplatform/schema/trainingjob/definition/custom_task_1.0.0.yaml',
      trainingTaskInputs: customJobSpec,
      modelToUpload: { containerSpec: { imageUri: 'us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-0:latest' } },
    });
    expect(facts.pools[0]?.path).toBe('trainingTaskInputs.workerPoolSpecs[0]');
    expect(facts.serviceAccounts?.[0]).toEqual({ path: 'trainingTaskInputs.serviceAccount', value: 'trainer@p.iam.gserviceaccount.com' });
    expect(facts.images.at(-1)?.path).toBe('modelToUpload.containerSpec.imageUri');
    // An AutoML task names no pool and no service account.
    const automl = extractJobFacts('trainingPipeline', { trainingTaskInputs: { targetColumn: 'y', budgetMilliNodeHours: '1000' } });
    expect(automl.pools).toEqual([]);
    expect(automl.serviceAccounts?.[0]?.value).toBe('');
    expect(() => extractJobFacts('trainingPipeline', { displayName: 'x' })).toThrow(/trainingTaskInputs: is required/);
  });

  it('PipelineJob: service account, network and the images of an inline spec', () => {
    const facts = extractJobFacts('pipelineJob', {
      serviceAccount: 'pipelines@p.iam.gserviceaccount.com',
      pipelineSpec: {
        deploymentSpec: { executors: { 'exec-train': { container: { image: 'python:3.12' } }, 'exec-importer': { importer: {} } } },
      },
    });
    expect(facts.serviceAccounts).toEqual([{ path: 'serviceAccount', value: 'pipelines@p.iam.gserviceaccount.com' }]);
    expect(facts.networks).toEqual([{ path: 'network', value: '' }]);
    expect(facts.images).toEqual([{ path: 'pipelineSpec.deploymentSpec.executors["exec-train"].container.image', value: 'python:3.12' }]);
    expect(facts.pools).toEqual([]);
  });

  it('BatchPredictionJob: dedicated resources (the most replicas), service account, no network', () => {
    const facts = extractJobFacts('batchPredictionJob', {
      serviceAccount: 'batch@p.iam.gserviceaccount.com',
      dedicatedResources: {
        machineSpec: { machineType: 'n1-standard-8', acceleratorType: 'NVIDIA_TESLA_T4', acceleratorCount: 1 },
        startingReplicaCount: 2,
        maxReplicaCount: '10',
      },
    });
    expect(facts.pools[0]?.replicas).toEqual({ path: 'dedicatedResources.maxReplicaCount', value: 10 });
    expect(facts.networks).toBeNull();
  });

  it('PersistentResource: resource pools (autoscaling maximum), runtime service account, network', () => {
    const facts = extractJobFacts('persistentResource', {
      resourcePools: [
        {
          machineSpec: { machineType: 'a3-highgpu-8g', acceleratorType: 'NVIDIA_H100_80GB', acceleratorCount: 8 },
          replicaCount: '1',
          autoscalingSpec: { minReplicaCount: '1', maxReplicaCount: '4' },
        },
        { machineSpec: { machineType: 'n2-standard-4' }, replicaCount: 2 },
      ],
      network: 'projects/123/global/networks/ml',
      resourceRuntimeSpec: { serviceAccountSpec: { enableCustomServiceAccount: true, serviceAccount: 'rt@p.iam.gserviceaccount.com' } },
    });
    expect(facts.pools.map((p) => [p.replicas.path, p.replicas.value])).toEqual([
      ['resourcePools[0].autoscalingSpec.maxReplicaCount', 4],
      ['resourcePools[1].replicaCount', 2],
    ]);
    expect(facts.serviceAccounts?.[0]).toEqual({
      path: 'resourceRuntimeSpec.serviceAccountSpec.serviceAccount',
      value: 'rt@p.iam.gserviceaccount.com',
    });
  });

  it.each<[JobKind]>([['deployModel'], ['mutateDeployedModel']])(
    "%s: the deployed model's resources and service account; no labels, key or network",
    (kind) => {
      const facts = extractJobFacts(kind, {
        deployedModel: {
          model: 'projects/p/locations/l/models/1',
          serviceAccount: 'serve@p.iam.gserviceaccount.com',
          dedicatedResources: {
            machineSpec: { machineType: 'g2-standard-12', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
            minReplicaCount: 1,
            maxReplicaCount: 3,
          },
        },
      });
      expect(facts.pools[0]?.replicas).toEqual({ path: 'deployedModel.dedicatedResources.maxReplicaCount', value: 3 });
      expect(facts.serviceAccounts?.[0]?.path).toBe('deployedModel.serviceAccount');
      expect([facts.labels, facts.encryptionKey, facts.networks]).toEqual([null, null, null]);
      expect(() => extractJobFacts(kind, {})).toThrow(/deployedModel: is required/);
    },
  );

  it("UploadModel: the serving image, the model's labels and key; no service account", () => {
    const facts = extractJobFacts('uploadModel', {
      model: { displayName: 'm', containerSpec: { imageUri: 'docker.io/x/y:1' }, labels: { team: 'ml' } },
    });
    expect(facts.images).toEqual([{ path: 'model.containerSpec.imageUri', value: 'docker.io/x/y:1' }]);
    expect(facts.labels).toEqual({ path: 'model.labels', value: ['team'] });
    expect(facts.encryptionKey).toEqual({ path: 'model.encryptionSpec.kmsKeyName', value: '' });
    expect(facts.serviceAccounts).toBeNull();
  });

  it('TuningJob: service account, key, labels', () => {
    const facts = extractJobFacts('tuningJob', {
      baseModel: 'gemini-2.5-flash',
      supervisedTuningSpec: { trainingDatasetUri: 'gs://b/t.jsonl' },
      serviceAccount: 'tune@p.iam.gserviceaccount.com',
    });
    expect(facts.serviceAccounts).toEqual([{ path: 'serviceAccount', value: 'tune@p.iam.gserviceaccount.com' }]);
    expect(facts.pools).toEqual([]);
  });
});
