/**
 * Reads what a job-creating request asks Vertex AI for: the service accounts
 * it would run as, the machines and accelerators it would book, the container
 * images it would run, the networks it would join, its encryption key and its
 * labels. Pure: JSON in, {@link JobFacts} out, every value with its path in
 * the body so a refusal can name it.
 *
 * Fail closed: a field in a shape the Vertex AI REST surface would not send
 * (a number where a string belongs, an object where a list belongs, an int64
 * that is neither a decimal string nor an integer) throws a
 * {@link JobSpecError}; it is never skipped.
 *
 * Where each kind keeps its spec (Vertex AI REST reference, v1):
 * https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.customJobs#CustomJob
 * and the pages of the other resources named in {@link JOB_KINDS}.
 *
 * @module
 */

/** The job-creating methods, by their RPC name (stable across versions and table regenerations). */
export const JOB_KINDS = {
  CreateCustomJob: 'customJob',
  CreateHyperparameterTuningJob: 'hyperparameterTuningJob',
  CreateNasJob: 'nasJob',
  CreateTrainingPipeline: 'trainingPipeline',
  CreatePipelineJob: 'pipelineJob',
  CreateBatchPredictionJob: 'batchPredictionJob',
  CreatePersistentResource: 'persistentResource',
  DeployModel: 'deployModel',
  MutateDeployedModel: 'mutateDeployedModel',
  UploadModel: 'uploadModel',
  CreateTuningJob: 'tuningJob',
} as const;

export type JobKind = (typeof JOB_KINDS)[keyof typeof JOB_KINDS];

/** The job kind of an operation, from its RPC name; undefined for methods that create no job. */
export function jobKindOf(spec: { readonly rpc: string }): JobKind | undefined {
  return Object.hasOwn(JOB_KINDS, spec.rpc) ? JOB_KINDS[spec.rpc as keyof typeof JOB_KINDS] : undefined;
}

/** A value found in the body, and where. */
export interface Located<T> {
  /** JSON path in the body: `jobSpec.workerPoolSpecs[0].machineSpec.machineType`. */
  readonly path: string;
  readonly value: T;
}

/** One group of identical machines (a worker pool, a resource pool, a deployed model's replicas). */
export interface MachinePool {
  /** Path of the pool itself (`jobSpec.workerPoolSpecs[1]`). */
  readonly path: string;
  /** Undefined when the pool names no machine type (Vertex AI then picks its default). */
  readonly machineType: Located<string> | undefined;
  /** The accelerator's enum name; undefined when the pool has none. */
  readonly acceleratorType: Located<string> | undefined;
  /** Accelerators per replica (0 without accelerators). */
  readonly acceleratorCount: Located<number>;
  /** Replicas, or the most replicas an autoscaled pool may grow to. */
  readonly replicas: Located<number>;
  /** Trials that may run this pool at once (hyperparameter tuning and NAS), else 1. */
  readonly parallel: Located<number>;
}

export interface JobFacts {
  readonly kind: JobKind;
  /** Service accounts the job would run as; value `""` where the body names none. Null: the method has no such field. */
  readonly serviceAccounts: readonly Located<string>[] | null;
  readonly pools: readonly MachinePool[];
  readonly images: readonly Located<string>[];
  /** Value `""` where the body names no network. Null: the method has no such field. */
  readonly networks: readonly Located<string>[] | null;
  /** The customer-managed key; value `""` when none is given. Null: the method has no such field. */
  readonly encryptionKey: Located<string> | null;
  /** Label keys as sent. Null: the method has no labels. */
  readonly labels: Located<readonly string[]> | null;
}

export class JobSpecError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path === '' ? 'request body' : path}: ${message}`);
    this.name = 'JobSpecError';
    this.path = path;
  }
}

/**
 * AcceleratorType by number, for clients that send enums as numbers (the
 * Node client library's REST transport does). From
 * google/cloud/aiplatform/v1/accelerator_type.proto.
 */
const ACCELERATOR_TYPES: ReadonlyMap<number, string> = new Map([
  [0, 'ACCELERATOR_TYPE_UNSPECIFIED'],
  [1, 'NVIDIA_TESLA_K80'],
  [2, 'NVIDIA_TESLA_P100'],
  [3, 'NVIDIA_TESLA_V100'],
  [4, 'NVIDIA_TESLA_P4'],
  [5, 'NVIDIA_TESLA_T4'],
  [6, 'TPU_V2'],
  [7, 'TPU_V3'],
  [8, 'NVIDIA_TESLA_A100'],
  [9, 'NVIDIA_A100_80GB'],
  [10, 'TPU_V4_POD'],
  [11, 'NVIDIA_L4'],
  [12, 'TPU_V5_LITEPOD'],
  [13, 'NVIDIA_H100_80GB'],
  [14, 'NVIDIA_H100_MEGA_80GB'],
  [15, 'NVIDIA_H200_141GB'],
  [16, 'NVIDIA_B200'],
  [17, 'NVIDIA_GB200'],
  [18, 'NVIDIA_RTX_PRO_6000'],
]);
const ACCELERATOR_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;

type Json = Record<string, unknown>;

/** Accumulates facts while the kind's reader walks the body. */
class Collector {
  readonly serviceAccounts: Located<string>[] = [];
  readonly pools: MachinePool[] = [];
  readonly images: Located<string>[] = [];
  readonly networks: Located<string>[] = [];
}

/**
 * The facts of a job-creating request body.
 *
 * @throws JobSpecError when the body or one of the fields read is not in the shape Vertex AI defines.
 */
export function extractJobFacts(kind: JobKind, body: unknown): JobFacts {
  const root = object(body, '');
  if (root === undefined) throw new JobSpecError('', 'must be a JSON object');
  const c = new Collector();
  let hasServiceAccount = true;
  let hasNetwork = true;
  let encryptionAt: string | null = 'encryptionSpec';
  let labelsAt: string | null = 'labels';
  switch (kind) {
    case 'customJob':
      customJobSpec(c, required(root, 'jobSpec', ''), 'jobSpec', one(''));
      break;
    case 'hyperparameterTuningJob':
      customJobSpec(c, required(root, 'trialJobSpec', ''), 'trialJobSpec', int64Or(root, 'parallelTrialCount', '', 1));
      break;
    case 'nasJob': {
      const spec = required(root, 'nasJobSpec', '');
      const multi = object(spec.multiTrialAlgorithmSpec, 'nasJobSpec.multiTrialAlgorithmSpec');
      if (multi === undefined)
        throw new JobSpecError('nasJobSpec.multiTrialAlgorithmSpec', 'is required (the only NAS algorithm spec Vertex AI defines)');
      const at = 'nasJobSpec.multiTrialAlgorithmSpec';
      const search = required(multi, 'searchTrialSpec', at);
      customJobSpec(
        c,
        required(search, 'searchTrialJobSpec', `${at}.searchTrialSpec`),
        `${at}.searchTrialSpec.searchTrialJobSpec`,
        int64Or(search, 'maxParallelTrialCount', `${at}.searchTrialSpec`, 1),
      );
      const train = object(multi.trainTrialSpec, `${at}.trainTrialSpec`);
      if (train !== undefined) {
        customJobSpec(
          c,
          required(train, 'trainTrialJobSpec', `${at}.trainTrialSpec`),
          `${at}.trainTrialSpec.trainTrialJobSpec`,
          int64Or(train, 'maxParallelTrialCount', `${at}.trainTrialSpec`, 1),
        );
      }
      break;
    }
    case 'trainingPipeline': {
      const inputs = required(root, 'trainingTaskInputs', '');
      // Custom training tasks carry a CustomJobSpec; hyperparameter tuning tasks a trialJobSpec; AutoML tasks neither
      // (they run on Google's machines as the Vertex AI service agent: no service account, pool or image of the caller's).
      if (inputs.trialJobSpec !== undefined && inputs.trialJobSpec !== null) {
        customJobSpec(
          c,
          required(inputs, 'trialJobSpec', 'trainingTaskInputs'),
          'trainingTaskInputs.trialJobSpec',
          int64Or(inputs, 'parallelTrialCount', 'trainingTaskInputs', 1),
        );
      } else if (inputs.workerPoolSpecs !== undefined && inputs.workerPoolSpecs !== null) {
        customJobSpec(c, inputs, 'trainingTaskInputs', one(''));
      } else {
        c.serviceAccounts.push({ path: 'trainingTaskInputs.serviceAccount', value: '' });
        c.networks.push({ path: 'trainingTaskInputs.network', value: '' });
      }
      const model = object(root.modelToUpload, 'modelToUpload');
      if (model !== undefined) containerImage(c, model, 'modelToUpload');
      break;
    }
    case 'pipelineJob':
      c.serviceAccounts.push({ path: 'serviceAccount', value: optionalString(root.serviceAccount, 'serviceAccount') ?? '' });
      c.networks.push({ path: 'network', value: optionalString(root.network, 'network') ?? '' });
      pipelineImages(c, root);
      break;
    case 'batchPredictionJob': {
      c.serviceAccounts.push({ path: 'serviceAccount', value: optionalString(root.serviceAccount, 'serviceAccount') ?? '' });
      hasNetwork = false;
      const resources = object(root.dedicatedResources, 'dedicatedResources');
      if (resources !== undefined) {
        pool(
          c,
          resources,
          'dedicatedResources',
          maxOf(resources, 'dedicatedResources', ['startingReplicaCount', 'maxReplicaCount']),
          one(''),
        );
      }
      break;
    }
    case 'persistentResource': {
      const pools = optionalArray(root.resourcePools, 'resourcePools') ?? [];
      pools.forEach((item, i) => {
        const at = `resourcePools[${i}]`;
        const spec = object(item, at);
        if (spec === undefined) throw new JobSpecError(at, 'must be an object');
        const autoscaling = object(spec.autoscalingSpec, `${at}.autoscalingSpec`);
        const replicas =
          autoscaling === undefined
            ? int64Or(spec, 'replicaCount', at, 1)
            : maxOf(autoscaling, `${at}.autoscalingSpec`, ['minReplicaCount', 'maxReplicaCount'], int64Or(spec, 'replicaCount', at, 1));
        pool(c, spec, at, replicas, one(''));
      });
      const runtime = object(root.resourceRuntimeSpec, 'resourceRuntimeSpec');
      const accountSpec = runtime === undefined ? undefined : object(runtime.serviceAccountSpec, 'resourceRuntimeSpec.serviceAccountSpec');
      const accountAt = 'resourceRuntimeSpec.serviceAccountSpec.serviceAccount';
      c.serviceAccounts.push({
        path: accountAt,
        value: accountSpec === undefined ? '' : (optionalString(accountSpec.serviceAccount, accountAt) ?? ''),
      });
      c.networks.push({ path: 'network', value: optionalString(root.network, 'network') ?? '' });
      break;
    }
    case 'deployModel':
    case 'mutateDeployedModel': {
      const deployed = required(root, 'deployedModel', '');
      c.serviceAccounts.push({
        path: 'deployedModel.serviceAccount',
        value: optionalString(deployed.serviceAccount, 'deployedModel.serviceAccount') ?? '',
      });
      const resources = object(deployed.dedicatedResources, 'deployedModel.dedicatedResources');
      if (resources !== undefined) {
        const at = 'deployedModel.dedicatedResources';
        pool(c, resources, at, maxOf(resources, at, ['minReplicaCount', 'maxReplicaCount']), one(''));
      }
      hasNetwork = false;
      encryptionAt = null;
      labelsAt = null;
      break;
    }
    case 'uploadModel': {
      const model = required(root, 'model', '');
      containerImage(c, model, 'model');
      hasServiceAccount = false;
      hasNetwork = false;
      encryptionAt = 'model.encryptionSpec';
      labelsAt = 'model.labels';
      break;
    }
    case 'tuningJob':
      c.serviceAccounts.push({ path: 'serviceAccount', value: optionalString(root.serviceAccount, 'serviceAccount') ?? '' });
      hasNetwork = false;
      break;
  }
  return {
    kind,
    serviceAccounts: hasServiceAccount ? c.serviceAccounts : null,
    pools: c.pools,
    images: c.images,
    networks: hasNetwork ? c.networks : null,
    encryptionKey: encryptionAt === null ? null : encryptionKey(root, encryptionAt),
    labels: labelsAt === null ? null : labelKeys(root, labelsAt),
  };
}

/** CustomJobSpec: worker pools, service account, network (also the shape of trial and NAS job specs). */
function customJobSpec(c: Collector, spec: Json, at: string, parallel: Located<number>): void {
  c.serviceAccounts.push({ path: `${at}.serviceAccount`, value: optionalString(spec.serviceAccount, `${at}.serviceAccount`) ?? '' });
  c.networks.push({ path: `${at}.network`, value: optionalString(spec.network, `${at}.network`) ?? '' });
  const pools = optionalArray(spec.workerPoolSpecs, `${at}.workerPoolSpecs`) ?? [];
  pools.forEach((item, i) => {
    const poolAt = `${at}.workerPoolSpecs[${i}]`;
    const workerPool = object(item, poolAt);
    // Vertex AI accepts empty entries as placeholders for unused pool positions.
    if (workerPool === undefined) throw new JobSpecError(poolAt, 'must be an object');
    pool(c, workerPool, poolAt, int64Or(workerPool, 'replicaCount', poolAt, 1), parallel);
    containerImage(c, workerPool, poolAt);
    const python = object(workerPool.pythonPackageSpec, `${poolAt}.pythonPackageSpec`);
    if (python !== undefined) {
      const uri = optionalString(python.executorImageUri, `${poolAt}.pythonPackageSpec.executorImageUri`);
      if (uri !== undefined) c.images.push({ path: `${poolAt}.pythonPackageSpec.executorImageUri`, value: uri });
    }
  });
}

/** A machine pool, if the object carries a `machineSpec`. */
function pool(c: Collector, holder: Json, at: string, replicas: Located<number>, parallel: Located<number>): void {
  const spec = object(holder.machineSpec, `${at}.machineSpec`);
  if (spec === undefined) return;
  const specAt = `${at}.machineSpec`;
  const machineType = optionalString(spec.machineType, `${specAt}.machineType`);
  const acceleratorType = acceleratorName(spec.acceleratorType, `${specAt}.acceleratorType`);
  const countGiven = spec.acceleratorCount !== undefined && spec.acceleratorCount !== null;
  // A type without a count books one accelerator at least: never read as zero.
  const count = countGiven ? int64(spec.acceleratorCount, `${specAt}.acceleratorCount`) : acceleratorType === undefined ? 0 : 1;
  c.pools.push({
    path: at,
    machineType: machineType === undefined ? undefined : { path: `${specAt}.machineType`, value: machineType },
    acceleratorType: acceleratorType === undefined ? undefined : { path: `${specAt}.acceleratorType`, value: acceleratorType },
    acceleratorCount: { path: `${specAt}.acceleratorCount`, value: acceleratorType === undefined && !countGiven ? 0 : count },
    replicas,
    parallel,
  });
}

function containerImage(c: Collector, holder: Json, at: string): void {
  const container = object(holder.containerSpec, `${at}.containerSpec`);
  if (container === undefined) return;
  const uri = optionalString(container.imageUri, `${at}.containerSpec.imageUri`);
  if (uri !== undefined) c.images.push({ path: `${at}.containerSpec.imageUri`, value: uri });
}

/** Images of an inline pipeline spec (`pipelineSpec.deploymentSpec.executors.*.container.image`); a template URI is not read. */
function pipelineImages(c: Collector, root: Json): void {
  const spec = object(root.pipelineSpec, 'pipelineSpec');
  const deployment = spec === undefined ? undefined : object(spec.deploymentSpec, 'pipelineSpec.deploymentSpec');
  const executors = deployment === undefined ? undefined : object(deployment.executors, 'pipelineSpec.deploymentSpec.executors');
  if (executors === undefined) return;
  for (const name of Object.keys(executors)) {
    const at = `pipelineSpec.deploymentSpec.executors[${JSON.stringify(name)}]`;
    const executor = object(executors[name], at);
    if (executor === undefined) throw new JobSpecError(at, 'must be an object');
    const container = object(executor.container, `${at}.container`);
    if (container === undefined) continue;
    const image = optionalString(container.image, `${at}.container.image`);
    if (image !== undefined) c.images.push({ path: `${at}.container.image`, value: image });
  }
}

function encryptionKey(root: Json, at: string): Located<string> {
  const parentAt = at.includes('.') ? at.slice(0, at.lastIndexOf('.')) : '';
  const holder = parentAt === '' ? root : object(root[parentAt], parentAt);
  const name = at.slice(at.lastIndexOf('.') + 1);
  const spec = holder === undefined ? undefined : object(holder[name], at);
  const key = spec === undefined ? undefined : optionalString(spec.kmsKeyName, `${at}.kmsKeyName`);
  return { path: `${at}.kmsKeyName`, value: key ?? '' };
}

function labelKeys(root: Json, at: string): Located<readonly string[]> {
  const parentAt = at.includes('.') ? at.slice(0, at.lastIndexOf('.')) : '';
  const holder = parentAt === '' ? root : object(root[parentAt], parentAt);
  const labels = holder === undefined ? undefined : object(holder[at.slice(at.lastIndexOf('.') + 1)], at);
  if (labels === undefined) return { path: at, value: [] };
  for (const key of Object.keys(labels)) {
    if (typeof labels[key] !== 'string') throw new JobSpecError(`${at}[${JSON.stringify(key)}]`, 'a label value must be a string');
  }
  return { path: at, value: Object.keys(labels) };
}

// --- shape checks: absent and null read as "not given"; anything else must have the proto3 JSON shape ---

function object(value: unknown, at: string): Json | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new JobSpecError(at, 'must be an object');
  return value as Json;
}

function required(holder: Json, key: string, at: string): Json {
  const path = at === '' ? key : `${at}.${key}`;
  const value = object(holder[key], path);
  if (value === undefined) throw new JobSpecError(path, 'is required');
  return value;
}

function optionalArray(value: unknown, at: string): readonly unknown[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new JobSpecError(at, 'must be a list');
  return value as unknown[];
}

function optionalString(value: unknown, at: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new JobSpecError(at, 'must be a string');
  return value;
}

const INT64 = /^-?[0-9]{1,19}$/;

/** int64 in proto3 JSON: a decimal string or an integer number. */
function int64(value: unknown, at: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === 'string' && INT64.test(value)) {
    const n = Number(value);
    if (Number.isSafeInteger(n) && n >= 0) return n;
  }
  throw new JobSpecError(at, 'must be a non-negative integer (a number or a decimal string)');
}

function int64Or(holder: Json, key: string, at: string, fallback: number): Located<number> {
  const path = at === '' ? key : `${at}.${key}`;
  const value = holder[key];
  // 0 is proto3's default: "not set" for replica and trial counts, which Vertex AI then treats as 1.
  const n = value === undefined || value === null ? fallback : int64(value, path);
  return { path, value: n === 0 ? fallback : n };
}

/** The largest of several replica counts (autoscaling: the most the pool can grow to); `fallback` when none is given. */
function maxOf(
  holder: Json,
  at: string,
  keys: readonly string[],
  fallback: Located<number> = { path: `${at}.${keys[0]}`, value: 1 },
): Located<number> {
  let best: Located<number> | undefined;
  for (const key of keys) {
    const value = holder[key];
    if (value === undefined || value === null) continue;
    const n = int64(value, `${at}.${key}`);
    if (best === undefined || n >= best.value) best = { path: `${at}.${key}`, value: n };
  }
  return best === undefined || best.value === 0 ? fallback : best;
}

function one(at: string): Located<number> {
  return { path: at, value: 1 };
}

function acceleratorName(value: unknown, at: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  let name: string | undefined;
  if (typeof value === 'number') name = ACCELERATOR_TYPES.get(value);
  else if (typeof value === 'string' && ACCELERATOR_NAME.test(value)) name = value;
  if (name === undefined) throw new JobSpecError(at, 'must be an accelerator type name (e.g. NVIDIA_L4) or its enum number');
  return name === 'ACCELERATOR_TYPE_UNSPECIFIED' ? undefined : name;
}
