/**
 * The Vertex AI operation table: every REST method the proxy forwards, with
 * the IAM permission Vertex AI checks for it, and the path bindings the
 * classifier matches. A method that is not in this table is refused.
 *
 * Source: `/work/shared/reference/vertex-operations.md` (HTTP rules from the
 * googleapis protos and `aiplatform_v1.yaml`; permissions from the Vertex AI
 * IAM table). Rows whose permission is inferred rather than documented say so.
 *
 * Long-running operations: Vertex AI checks the *parent* resource's `.get` to
 * read an LRO nested under it (`…/endpoints/E/operations/O` needs
 * `aiplatform.endpoints.get`). The permission therefore depends on the parent
 * collection, so each parent collection gets its own specs
 * (`endpoints.operations.get`, `customJobs.operations.wait`, …) and the
 * top-level `projects/P/locations/L/operations/O` has `operations.*`. Every
 * spec keeps one static permission, the id set stays bounded ((1 + 6 parents) × 5
 * RPCs), and policy rules can tell "poll my deploy" from "poll anything".
 *
 * @module
 */

import type { ApiVersion, HttpMethod, OperationGroup, OperationSpec, PermissionType } from './operation.js';

/**
 * Where an operation lives in the URL, after `/{version}/`. `resource` is the
 * resource-name template (what `Operation.resource` reports): literal segments
 * and `{param}` segments. `{project}` and `{location}` are validated as such;
 * every other `{param}` is a resource id.
 */
export interface OperationBinding {
  readonly spec: OperationSpec;
  readonly resource: string;
  /** The custom verb after the last segment (`predict` in `…/endpoints/E:predict`). */
  readonly verb?: string;
  /** Literal segments after the resource name; only `chat/completions`. */
  readonly suffix?: string;
}

type SpecInput = Omit<OperationSpec, 'streaming' | 'longRunning' | 'versions' | 'groups'> &
  Partial<Pick<OperationSpec, 'streaming' | 'longRunning' | 'versions' | 'groups'>>;

interface BindingInput {
  readonly resource: string;
  readonly verb?: string;
  readonly suffix?: string;
}

const BOTH_VERSIONS: readonly ApiVersion[] = Object.freeze(['v1', 'v1beta1'] as const);
const LOC = 'projects/{project}/locations/{location}';
const LRO_PACKAGE = 'google.longrunning';

const specs: OperationSpec[] = [];
const bindings: OperationBinding[] = [];

function define(input: SpecInput, at: readonly BindingInput[]): void {
  const spec: OperationSpec = Object.freeze({
    id: input.id,
    service: input.service,
    ...(input.serviceByVersion === undefined ? {} : { serviceByVersion: Object.freeze({ ...input.serviceByVersion }) }),
    ...(input.protoPackage === undefined ? {} : { protoPackage: input.protoPackage }),
    rpc: input.rpc,
    httpMethod: input.httpMethod,
    permission: input.permission,
    permissionType: input.permissionType,
    groups: Object.freeze([...(input.groups ?? [])]),
    streaming: input.streaming ?? false,
    versions: Object.freeze([...(input.versions ?? BOTH_VERSIONS)]),
    longRunning: input.longRunning ?? false,
  });
  specs.push(spec);
  for (const binding of at) bindings.push(Object.freeze({ spec, ...binding }));
}

// ---------------------------------------------------------------------------
// Online prediction and generative AI (PredictionService, LlmUtilityService).
// Every one of them is checked as `aiplatform.endpoints.predict` on the
// endpoint or publisher model, except Explain.
// ---------------------------------------------------------------------------

interface DataPlaneMethod {
  readonly verb: string;
  readonly rpc: string;
  readonly group: OperationGroup;
  readonly permission?: string;
  readonly service?: string;
  readonly serviceByVersion?: Readonly<Partial<Record<ApiVersion, string>>>;
  readonly streaming?: boolean;
  readonly onEndpoints: boolean;
  readonly onPublisherModels: boolean;
  /** Also bound as `endpoints/E` and `publishers/P/models/M` (no project, no location). */
  readonly locationless?: boolean;
}

const DATA_PLANE: readonly DataPlaneMethod[] = [
  { verb: 'predict', rpc: 'Predict', group: 'predict', onEndpoints: true, onPublisherModels: true },
  { verb: 'rawPredict', rpc: 'RawPredict', group: 'predict', onEndpoints: true, onPublisherModels: true },
  // StreamRawPredict / ServerStreamingPredict: `.predict` is inferred [I], the docs list only Predict.
  { verb: 'streamRawPredict', rpc: 'StreamRawPredict', group: 'predict', streaming: true, onEndpoints: true, onPublisherModels: true },
  { verb: 'serverStreamingPredict', rpc: 'ServerStreamingPredict', group: 'predict', streaming: true, onEndpoints: true, onPublisherModels: true },
  // Direct*: inferred [I].
  { verb: 'directPredict', rpc: 'DirectPredict', group: 'predict', onEndpoints: true, onPublisherModels: false },
  { verb: 'directRawPredict', rpc: 'DirectRawPredict', group: 'predict', onEndpoints: true, onPublisherModels: false },
  { verb: 'explain', rpc: 'Explain', group: 'predict', permission: 'aiplatform.endpoints.explain', onEndpoints: true, onPublisherModels: false },
  { verb: 'generateContent', rpc: 'GenerateContent', group: 'generate', onEndpoints: true, onPublisherModels: true, locationless: true },
  { verb: 'streamGenerateContent', rpc: 'StreamGenerateContent', group: 'generate', streaming: true, onEndpoints: true, onPublisherModels: true, locationless: true },
  // CountTokens moved: LlmUtilityService in v1, PredictionService in v1beta1 (same four paths).
  {
    verb: 'countTokens',
    rpc: 'CountTokens',
    group: 'generate',
    service: 'LlmUtilityService',
    serviceByVersion: { v1beta1: 'PredictionService' },
    onEndpoints: true,
    onPublisherModels: true,
    locationless: true,
  },
  // ComputeTokens: `.predict` inferred [I].
  { verb: 'computeTokens', rpc: 'ComputeTokens', group: 'generate', service: 'LlmUtilityService', onEndpoints: true, onPublisherModels: true, locationless: true },
  // EmbedContent: publisher models only; `.predict` inferred [I].
  { verb: 'embedContent', rpc: 'EmbedContent', group: 'embed', onEndpoints: false, onPublisherModels: true },
];

for (const owner of ['endpoints', 'publisherModels'] as const) {
  for (const m of DATA_PLANE) {
    if (owner === 'endpoints' ? !m.onEndpoints : !m.onPublisherModels) continue;
    const scoped = owner === 'endpoints' ? `${LOC}/endpoints/{endpoint}` : `${LOC}/publishers/{publisher}/models/{model}`;
    const locationless = owner === 'endpoints' ? 'endpoints/{endpoint}' : 'publishers/{publisher}/models/{model}';
    define(
      {
        id: `${owner}.${m.verb}`,
        service: m.service ?? 'PredictionService',
        ...(m.serviceByVersion === undefined ? {} : { serviceByVersion: m.serviceByVersion }),
        rpc: m.rpc,
        httpMethod: 'POST',
        permission: m.permission ?? 'aiplatform.endpoints.predict',
        permissionType: 'DATA_READ',
        groups: [m.group],
        streaming: m.streaming ?? false,
      },
      m.locationless === true
        ? [
            { resource: scoped, verb: m.verb },
            { resource: locationless, verb: m.verb },
          ]
        : [{ resource: scoped, verb: m.verb }],
    );
  }
}

// OpenAI-compatible chat (v1beta1 only; streams when the body asks for it). `.predict` inferred [I].
define(
  {
    id: 'endpoints.chatCompletions',
    service: 'PredictionService',
    rpc: 'ChatCompletions',
    httpMethod: 'POST',
    permission: 'aiplatform.endpoints.predict',
    permissionType: 'DATA_READ',
    groups: ['generate'],
    streaming: true,
    versions: ['v1beta1'],
  },
  [{ resource: `${LOC}/endpoints/{endpoint}`, suffix: 'chat/completions' }],
);

// ---------------------------------------------------------------------------
// Endpoint administration (EndpointService).
// ---------------------------------------------------------------------------

define(
  { id: 'endpoints.get', service: 'EndpointService', rpc: 'GetEndpoint', httpMethod: 'GET', permission: 'aiplatform.endpoints.get', permissionType: 'ADMIN_READ', groups: ['read'] },
  [{ resource: `${LOC}/endpoints/{endpoint}` }],
);
define(
  { id: 'endpoints.list', service: 'EndpointService', rpc: 'ListEndpoints', httpMethod: 'GET', permission: 'aiplatform.endpoints.list', permissionType: 'ADMIN_READ', groups: ['read'] },
  [{ resource: `${LOC}/endpoints` }],
);
define(
  { id: 'endpoints.deployModel', service: 'EndpointService', rpc: 'DeployModel', httpMethod: 'POST', permission: 'aiplatform.endpoints.deploy', permissionType: 'ADMIN_WRITE', longRunning: true },
  [{ resource: `${LOC}/endpoints/{endpoint}`, verb: 'deployModel' }],
);
define(
  { id: 'endpoints.undeployModel', service: 'EndpointService', rpc: 'UndeployModel', httpMethod: 'POST', permission: 'aiplatform.endpoints.undeploy', permissionType: 'ADMIN_WRITE', longRunning: true },
  [{ resource: `${LOC}/endpoints/{endpoint}`, verb: 'undeployModel' }],
);
// Inferred [I]: the IAM table has no row for MutateDeployedModel; it changes a deployed model's resources, which is an endpoint update.
define(
  { id: 'endpoints.mutateDeployedModel', service: 'EndpointService', rpc: 'MutateDeployedModel', httpMethod: 'POST', permission: 'aiplatform.endpoints.update', permissionType: 'ADMIN_WRITE', longRunning: true },
  [{ resource: `${LOC}/endpoints/{endpoint}`, verb: 'mutateDeployedModel' }],
);

// ---------------------------------------------------------------------------
// Jobs and pipelines (JobService, PipelineService): the same five methods on
// each collection, checked as `aiplatform.<collection>.<verb>`.
// ---------------------------------------------------------------------------

interface JobCollection {
  readonly collection: string;
  /** The resource's proto message name, which the RPC names carry. */
  readonly kind: string;
  readonly param: string;
  readonly service: 'JobService' | 'PipelineService';
  /** In the `training` group. Batch prediction is not training. */
  readonly training: boolean;
}

const JOB_COLLECTIONS: readonly JobCollection[] = [
  { collection: 'customJobs', kind: 'CustomJob', param: 'customJob', service: 'JobService', training: true },
  { collection: 'trainingPipelines', kind: 'TrainingPipeline', param: 'trainingPipeline', service: 'PipelineService', training: true },
  { collection: 'pipelineJobs', kind: 'PipelineJob', param: 'pipelineJob', service: 'PipelineService', training: true },
  { collection: 'batchPredictionJobs', kind: 'BatchPredictionJob', param: 'batchPredictionJob', service: 'JobService', training: false },
  { collection: 'hyperparameterTuningJobs', kind: 'HyperparameterTuningJob', param: 'hyperparameterTuningJob', service: 'JobService', training: true },
];

for (const c of JOB_COLLECTIONS) {
  const collection = `${LOC}/${c.collection}`;
  const item = `${collection}/{${c.param}}`;
  const training: OperationGroup[] = c.training ? ['training'] : [];
  const common = { service: c.service } as const;
  const permission = (verb: string): string => `aiplatform.${c.collection}.${verb}`;
  // A created job is itself the handle the caller polls, hence longRunning.
  define(
    { ...common, id: `${c.collection}.create`, rpc: `Create${c.kind}`, httpMethod: 'POST', permission: permission('create'), permissionType: 'ADMIN_WRITE', groups: training, longRunning: true },
    [{ resource: collection }],
  );
  define(
    { ...common, id: `${c.collection}.get`, rpc: `Get${c.kind}`, httpMethod: 'GET', permission: permission('get'), permissionType: 'ADMIN_READ', groups: [...training, 'read'] },
    [{ resource: item }],
  );
  define(
    { ...common, id: `${c.collection}.list`, rpc: `List${c.kind}s`, httpMethod: 'GET', permission: permission('list'), permissionType: 'ADMIN_READ', groups: [...training, 'read'] },
    [{ resource: collection }],
  );
  define(
    { ...common, id: `${c.collection}.cancel`, rpc: `Cancel${c.kind}`, httpMethod: 'POST', permission: permission('cancel'), permissionType: 'ADMIN_WRITE', groups: training },
    [{ resource: item, verb: 'cancel' }],
  );
  define(
    { ...common, id: `${c.collection}.delete`, rpc: `Delete${c.kind}`, httpMethod: 'DELETE', permission: permission('delete'), permissionType: 'ADMIN_WRITE', groups: training, longRunning: true },
    [{ resource: item }],
  );
}

// Inferred [I]: the IAM table has no rows for the batch RPCs; they delete or cancel each named job.
define(
  { id: 'pipelineJobs.batchDelete', service: 'PipelineService', rpc: 'BatchDeletePipelineJobs', httpMethod: 'POST', permission: 'aiplatform.pipelineJobs.delete', permissionType: 'ADMIN_WRITE', groups: ['training'], longRunning: true },
  [{ resource: `${LOC}/pipelineJobs`, verb: 'batchDelete' }],
);
define(
  { id: 'pipelineJobs.batchCancel', service: 'PipelineService', rpc: 'BatchCancelPipelineJobs', httpMethod: 'POST', permission: 'aiplatform.pipelineJobs.cancel', permissionType: 'ADMIN_WRITE', groups: ['training'], longRunning: true },
  [{ resource: `${LOC}/pipelineJobs`, verb: 'batchCancel' }],
);

// ---------------------------------------------------------------------------
// Models (ModelService). Model names may carry `@version`.
// ---------------------------------------------------------------------------

define(
  { id: 'models.upload', service: 'ModelService', rpc: 'UploadModel', httpMethod: 'POST', permission: 'aiplatform.models.upload', permissionType: 'ADMIN_WRITE', longRunning: true },
  [{ resource: `${LOC}/models`, verb: 'upload' }],
);
define(
  { id: 'models.get', service: 'ModelService', rpc: 'GetModel', httpMethod: 'GET', permission: 'aiplatform.models.get', permissionType: 'ADMIN_READ', groups: ['read'] },
  [{ resource: `${LOC}/models/{model}` }],
);
define(
  { id: 'models.list', service: 'ModelService', rpc: 'ListModels', httpMethod: 'GET', permission: 'aiplatform.models.list', permissionType: 'ADMIN_READ', groups: ['read'] },
  [{ resource: `${LOC}/models` }],
);

// ---------------------------------------------------------------------------
// Long-running operations (the google.longrunning.Operations mixin).
// Parents: the collections of this table that `aiplatform_v1.yaml` binds
// operations under (it has none under batchPredictionJobs).
// ---------------------------------------------------------------------------

interface OperationParent {
  readonly collection: string;
  readonly param: string;
  readonly training: boolean;
}

const OPERATION_PARENTS: readonly OperationParent[] = [
  { collection: 'endpoints', param: 'endpoint', training: false },
  { collection: 'models', param: 'model', training: false },
  { collection: 'customJobs', param: 'customJob', training: true },
  { collection: 'trainingPipelines', param: 'trainingPipeline', training: true },
  { collection: 'pipelineJobs', param: 'pipelineJob', training: true },
  { collection: 'hyperparameterTuningJobs', param: 'hyperparameterTuningJob', training: true },
];

interface LroMethod {
  readonly name: 'get' | 'list' | 'wait' | 'cancel' | 'delete';
  readonly rpc: string;
  readonly httpMethod: HttpMethod;
  readonly permissionType: PermissionType;
  readonly onCollection: boolean;
  readonly verb?: string;
}

const LRO_METHODS: readonly LroMethod[] = [
  { name: 'get', rpc: 'GetOperation', httpMethod: 'GET', permissionType: 'ADMIN_READ', onCollection: false },
  { name: 'list', rpc: 'ListOperations', httpMethod: 'GET', permissionType: 'ADMIN_READ', onCollection: true },
  { name: 'wait', rpc: 'WaitOperation', httpMethod: 'POST', permissionType: 'ADMIN_READ', onCollection: false, verb: 'wait' },
  { name: 'cancel', rpc: 'CancelOperation', httpMethod: 'POST', permissionType: 'ADMIN_WRITE', onCollection: false, verb: 'cancel' },
  { name: 'delete', rpc: 'DeleteOperation', httpMethod: 'DELETE', permissionType: 'ADMIN_WRITE', onCollection: false },
];

function lroPermission(parent: OperationParent | undefined, method: LroMethod): string {
  // Cancel and delete: inferred [I]. The docs name "a write permission"; the
  // operations permissions are the ones Vertex AI roles carry for it.
  if (method.name === 'cancel' || method.name === 'delete') return `aiplatform.operations.${method.name}`;
  // Reading a nested LRO is checked as the parent's `.get` [D]; waiting is a read too.
  if (parent !== undefined) return `aiplatform.${parent.collection}.get`;
  return method.name === 'list' ? 'aiplatform.operations.list' : 'aiplatform.operations.get';
}

for (const parent of [undefined, ...OPERATION_PARENTS]) {
  const base = parent === undefined ? LOC : `${LOC}/${parent.collection}/{${parent.param}}`;
  for (const method of LRO_METHODS) {
    const groups: OperationGroup[] = parent?.training === true ? ['training'] : [];
    if (method.permissionType === 'ADMIN_READ') groups.push('read');
    define(
      {
        id: parent === undefined ? `operations.${method.name}` : `${parent.collection}.operations.${method.name}`,
        service: 'Operations',
        protoPackage: LRO_PACKAGE,
        rpc: method.rpc,
        httpMethod: method.httpMethod,
        permission: lroPermission(parent, method),
        permissionType: method.permissionType,
        groups,
      },
      [
        method.onCollection
          ? { resource: `${base}/operations` }
          : method.verb === undefined
            ? { resource: `${base}/operations/{operation}` }
            : { resource: `${base}/operations/{operation}`, verb: method.verb },
      ],
    );
  }
}

/** Every operation the proxy forwards. Anything else is refused by the classifier. */
export const OPERATIONS: readonly OperationSpec[] = Object.freeze(specs);

/** Every path binding of {@link OPERATIONS}, for the classifier (and tests that generate paths). */
export const OPERATION_BINDINGS: readonly OperationBinding[] = Object.freeze(bindings);

/** Every permission any operation can require: what a policy may name without a pattern. */
export const KNOWN_PERMISSIONS: ReadonlySet<string> = new Set(specs.map((spec) => spec.permission));

const BY_ID: ReadonlyMap<string, OperationSpec> = new Map(specs.map((spec) => [spec.id, spec]));

if (BY_ID.size !== specs.length) throw new Error('operation table: duplicate operation id');

/** The spec with this id, or undefined (never a prototype property: the lookup is a Map). */
export function operationById(id: string): OperationSpec | undefined {
  return BY_ID.get(id);
}

/** Cloud Audit Logs' `methodName` for this spec in this version, e.g. `google.cloud.aiplatform.v1.PredictionService.Predict`. */
export function methodNameOf(spec: OperationSpec, version: ApiVersion): string {
  const service = spec.serviceByVersion?.[version] ?? spec.service;
  const pkg = spec.protoPackage ?? `google.cloud.aiplatform.${version}`;
  return `${pkg}.${service}.${spec.rpc}`;
}
