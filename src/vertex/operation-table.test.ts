import { describe, expect, it } from 'vitest';

import { OPERATION_GROUPS, type OperationGroup, type OperationSpec, type PermissionType } from './operation-types.js';
import { FAMILY_GROUPS } from './derive-operations.js';
import { KNOWN_PERMISSIONS, OPERATIONS, OPERATION_BINDINGS, methodNameOf, operationById } from './operation-table.js';

type Expected = {
  readonly service: string;
  readonly rpc: string;
  readonly httpMethod: OperationSpec['httpMethod'];
  readonly permission: string;
  readonly permissionType: PermissionType;
  readonly groups: readonly OperationGroup[];
  readonly streaming?: boolean;
  readonly longRunning?: boolean;
  readonly versions?: readonly string[];
};

const PREDICT = 'aiplatform.endpoints.predict';
const dataRead = (service: string, rpc: string, groups: OperationGroup[], extra: Partial<Expected> = {}): Expected => ({
  service,
  rpc,
  httpMethod: 'POST',
  permission: PREDICT,
  permissionType: 'DATA_READ',
  groups,
  ...extra,
});

/**
 * The contract of the first, hand-written table, written out by hand (not derived from the implementation).
 * Groups gained since: `deploy` on deploy/undeploy/mutate/upload, and `admin` on writes in no other group.
 */
const EXPECTED: Record<string, Expected> = {
  'endpoints.predict': dataRead('PredictionService', 'Predict', ['predict']),
  'endpoints.rawPredict': dataRead('PredictionService', 'RawPredict', ['predict']),
  'endpoints.streamRawPredict': dataRead('PredictionService', 'StreamRawPredict', ['predict'], { streaming: true }),
  'endpoints.serverStreamingPredict': dataRead('PredictionService', 'ServerStreamingPredict', ['predict'], { streaming: true }),
  'endpoints.directPredict': dataRead('PredictionService', 'DirectPredict', ['predict']),
  'endpoints.directRawPredict': dataRead('PredictionService', 'DirectRawPredict', ['predict']),
  'endpoints.explain': dataRead('PredictionService', 'Explain', ['predict'], { permission: 'aiplatform.endpoints.explain' }),
  'endpoints.generateContent': dataRead('PredictionService', 'GenerateContent', ['generate']),
  'endpoints.streamGenerateContent': dataRead('PredictionService', 'StreamGenerateContent', ['generate'], { streaming: true }),
  'endpoints.countTokens': dataRead('LlmUtilityService', 'CountTokens', ['generate']),
  'endpoints.computeTokens': dataRead('LlmUtilityService', 'ComputeTokens', ['generate']),
  'endpoints.chatCompletions': dataRead('PredictionService', 'ChatCompletions', ['generate'], { streaming: true, versions: ['v1beta1'] }),
  'endpoints.get': {
    service: 'EndpointService',
    rpc: 'GetEndpoint',
    httpMethod: 'GET',
    permission: 'aiplatform.endpoints.get',
    permissionType: 'ADMIN_READ',
    groups: ['read'],
  },
  'endpoints.list': {
    service: 'EndpointService',
    rpc: 'ListEndpoints',
    httpMethod: 'GET',
    permission: 'aiplatform.endpoints.list',
    permissionType: 'ADMIN_READ',
    groups: ['read'],
  },
  'endpoints.deployModel': {
    service: 'EndpointService',
    rpc: 'DeployModel',
    httpMethod: 'POST',
    permission: 'aiplatform.endpoints.deploy',
    permissionType: 'ADMIN_WRITE',
    groups: ['deploy'],
    longRunning: true,
  },
  'endpoints.undeployModel': {
    service: 'EndpointService',
    rpc: 'UndeployModel',
    httpMethod: 'POST',
    permission: 'aiplatform.endpoints.undeploy',
    permissionType: 'ADMIN_WRITE',
    groups: ['deploy'],
    longRunning: true,
  },
  'endpoints.mutateDeployedModel': {
    service: 'EndpointService',
    rpc: 'MutateDeployedModel',
    httpMethod: 'POST',
    permission: 'aiplatform.endpoints.update',
    permissionType: 'ADMIN_WRITE',
    groups: ['deploy'],
    longRunning: true,
  },
  'publisherModels.predict': dataRead('PredictionService', 'Predict', ['predict']),
  'publisherModels.rawPredict': dataRead('PredictionService', 'RawPredict', ['predict']),
  'publisherModels.streamRawPredict': dataRead('PredictionService', 'StreamRawPredict', ['predict'], { streaming: true }),
  'publisherModels.serverStreamingPredict': dataRead('PredictionService', 'ServerStreamingPredict', ['predict'], { streaming: true }),
  'publisherModels.generateContent': dataRead('PredictionService', 'GenerateContent', ['generate']),
  'publisherModels.streamGenerateContent': dataRead('PredictionService', 'StreamGenerateContent', ['generate'], { streaming: true }),
  'publisherModels.countTokens': dataRead('LlmUtilityService', 'CountTokens', ['generate']),
  'publisherModels.computeTokens': dataRead('LlmUtilityService', 'ComputeTokens', ['generate']),
  'publisherModels.embedContent': dataRead('PredictionService', 'EmbedContent', ['embed']),
  'models.upload': {
    service: 'ModelService',
    rpc: 'UploadModel',
    httpMethod: 'POST',
    permission: 'aiplatform.models.upload',
    permissionType: 'ADMIN_WRITE',
    groups: ['deploy'],
    longRunning: true,
  },
  'models.get': {
    service: 'ModelService',
    rpc: 'GetModel',
    httpMethod: 'GET',
    permission: 'aiplatform.models.get',
    permissionType: 'ADMIN_READ',
    groups: ['read'],
  },
  'models.list': {
    service: 'ModelService',
    rpc: 'ListModels',
    httpMethod: 'GET',
    permission: 'aiplatform.models.list',
    permissionType: 'ADMIN_READ',
    groups: ['read'],
  },
  'pipelineJobs.batchDelete': {
    service: 'PipelineService',
    rpc: 'BatchDeletePipelineJobs',
    httpMethod: 'POST',
    permission: 'aiplatform.pipelineJobs.delete',
    permissionType: 'ADMIN_WRITE',
    groups: ['training'],
    longRunning: true,
  },
  'pipelineJobs.batchCancel': {
    service: 'PipelineService',
    rpc: 'BatchCancelPipelineJobs',
    httpMethod: 'POST',
    permission: 'aiplatform.pipelineJobs.cancel',
    permissionType: 'ADMIN_WRITE',
    groups: ['training'],
    longRunning: true,
  },
};

const JOBS = [
  ['customJobs', 'CustomJob', 'JobService', true],
  ['trainingPipelines', 'TrainingPipeline', 'PipelineService', true],
  ['pipelineJobs', 'PipelineJob', 'PipelineService', true],
  ['batchPredictionJobs', 'BatchPredictionJob', 'JobService', false],
  ['hyperparameterTuningJobs', 'HyperparameterTuningJob', 'JobService', true],
] as const;
for (const [collection, kind, service, training] of JOBS) {
  const t: OperationGroup[] = training ? ['training'] : ['admin'];
  const perm = (verb: string): string => `aiplatform.${collection}.${verb}`;
  EXPECTED[`${collection}.create`] = {
    service,
    rpc: `Create${kind}`,
    httpMethod: 'POST',
    permission: perm('create'),
    permissionType: 'ADMIN_WRITE',
    groups: t,
    longRunning: true,
  };
  const r: OperationGroup[] = training ? ['training', 'read'] : ['read'];
  EXPECTED[`${collection}.get`] = {
    service,
    rpc: `Get${kind}`,
    httpMethod: 'GET',
    permission: perm('get'),
    permissionType: 'ADMIN_READ',
    groups: r,
  };
  EXPECTED[`${collection}.list`] = {
    service,
    rpc: `List${kind}s`,
    httpMethod: 'GET',
    permission: perm('list'),
    permissionType: 'ADMIN_READ',
    groups: r,
  };
  EXPECTED[`${collection}.cancel`] = {
    service,
    rpc: `Cancel${kind}`,
    httpMethod: 'POST',
    permission: perm('cancel'),
    permissionType: 'ADMIN_WRITE',
    groups: t,
  };
  EXPECTED[`${collection}.delete`] = {
    service,
    rpc: `Delete${kind}`,
    httpMethod: 'DELETE',
    permission: perm('delete'),
    permissionType: 'ADMIN_WRITE',
    groups: t,
    longRunning: true,
  };
}

const LRO_PARENTS = [
  ['operations', 'aiplatform.operations.get', 'aiplatform.operations.list', false],
  ['endpoints.operations', 'aiplatform.endpoints.get', 'aiplatform.endpoints.get', false],
  ['models.operations', 'aiplatform.models.get', 'aiplatform.models.get', false],
  ['customJobs.operations', 'aiplatform.customJobs.get', 'aiplatform.customJobs.get', true],
  ['trainingPipelines.operations', 'aiplatform.trainingPipelines.get', 'aiplatform.trainingPipelines.get', true],
  ['pipelineJobs.operations', 'aiplatform.pipelineJobs.get', 'aiplatform.pipelineJobs.get', true],
  ['hyperparameterTuningJobs.operations', 'aiplatform.hyperparameterTuningJobs.get', 'aiplatform.hyperparameterTuningJobs.get', true],
] as const;
for (const [prefix, getPermission, listPermission, training] of LRO_PARENTS) {
  const t: OperationGroup[] = training ? ['training'] : ['admin'];
  const r: OperationGroup[] = training ? ['training', 'read'] : ['read'];
  const lro = { service: 'Operations' } as const;
  EXPECTED[`${prefix}.get`] = {
    ...lro,
    rpc: 'GetOperation',
    httpMethod: 'GET',
    permission: getPermission,
    permissionType: 'ADMIN_READ',
    groups: r,
  };
  EXPECTED[`${prefix}.list`] = {
    ...lro,
    rpc: 'ListOperations',
    httpMethod: 'GET',
    permission: listPermission,
    permissionType: 'ADMIN_READ',
    groups: r,
  };
  EXPECTED[`${prefix}.wait`] = {
    ...lro,
    rpc: 'WaitOperation',
    httpMethod: 'POST',
    permission: getPermission,
    permissionType: 'ADMIN_READ',
    groups: r,
  };
  EXPECTED[`${prefix}.cancel`] = {
    ...lro,
    rpc: 'CancelOperation',
    httpMethod: 'POST',
    permission: 'aiplatform.operations.cancel',
    permissionType: 'ADMIN_WRITE',
    groups: t,
  };
  EXPECTED[`${prefix}.delete`] = {
    ...lro,
    rpc: 'DeleteOperation',
    httpMethod: 'DELETE',
    permission: 'aiplatform.operations.delete',
    permissionType: 'ADMIN_WRITE',
    groups: t,
  };
}

const ids = OPERATIONS.map((spec) => spec.id);
const idsIn = (group: OperationGroup): string[] =>
  OPERATIONS.filter((spec) => spec.groups.includes(group))
    .map((spec) => spec.id)
    .sort();

describe('the operation table', () => {
  it('still has every one of the 91 operations of the first table, each id once', () => {
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of Object.keys(EXPECTED)) expect(ids).toContain(id);
    expect(Object.keys(EXPECTED)).toHaveLength(91);
  });

  it.each(Object.entries(EXPECTED))(
    '%s has the documented service, rpc, HTTP method, permission, type, groups and flags',
    (id, expected) => {
      const spec = operationById(id);
      expect(spec).toBeDefined();
      expect(spec).toMatchObject({
        id,
        service: expected.service,
        rpc: expected.rpc,
        httpMethod: expected.httpMethod,
        permission: expected.permission,
        permissionType: expected.permissionType,
        streaming: expected.streaming ?? false,
        longRunning: expected.longRunning ?? false,
        versions: expected.versions ?? ['v1', 'v1beta1'],
      });
      expect([...(spec?.groups ?? [])].sort()).toEqual([...expected.groups].sort());
    },
  );

  it('uses ids of the form collection[.operations].rpc in lowerCamelCase, safe as metric labels', () => {
    for (const id of ids) expect(id).toMatch(/^[a-z][A-Za-z]*(\.operations)?\.[a-z][A-Za-z]*$/);
  });

  it('names every IAM permission aiplatform.<collection>.<verb>', () => {
    for (const spec of OPERATIONS) expect(spec.permission).toMatch(/^aiplatform\.[a-z][A-Za-z]*\.[a-z][A-Za-z]*$/);
  });

  it('freezes every spec, so a consumer cannot change what the policy sees', () => {
    expect(Object.isFrozen(OPERATIONS)).toBe(true);
    for (const spec of OPERATIONS) {
      expect(Object.isFrozen(spec)).toBe(true);
      expect(Object.isFrozen(spec.groups)).toBe(true);
      expect(Object.isFrozen(spec.versions)).toBe(true);
    }
  });

  it('gives every operation at least one path binding, and binds nothing outside the table', () => {
    const bound = new Set(OPERATION_BINDINGS.map((binding) => binding.spec));
    for (const spec of OPERATIONS) expect(bound.has(spec)).toBe(true);
    for (const spec of bound) expect(OPERATIONS).toContain(spec);
  });

  it('binds the four generate-family methods also in the location-less forms, each naming its projects/*/locations/* form', () => {
    const locationless = OPERATION_BINDINGS.filter((b) => !b.resource.startsWith('projects/')).map((b) => [
      `${b.resource}:${b.verb ?? ''}`,
      b.scopedForm,
    ]);
    for (const verb of ['generateContent', 'streamGenerateContent', 'countTokens', 'computeTokens']) {
      expect(locationless).toContainEqual([
        `endpoints/{endpoint}:${verb}`,
        `projects/{project}/locations/{location}/endpoints/{endpoint}:${verb}`,
      ]);
      expect(locationless).toContainEqual([
        `publishers/{publisher}/models/{model}:${verb}`,
        `projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:${verb}`,
      ]);
    }
  });

  it('marks every binding outside projects/*/locations/* (and only those) with the form to use instead', () => {
    for (const binding of OPERATION_BINDINGS) {
      const scoped =
        binding.resource === 'projects/{project}/locations/{location}' ||
        binding.resource.startsWith('projects/{project}/locations/{location}/');
      expect([binding.resource, binding.scopedForm === undefined]).toEqual([binding.resource, scoped]);
      if (typeof binding.scopedForm === 'string') expect(binding.scopedForm).toMatch(/^projects\/\{project\}\/locations\/\{location\}/);
    }
  });
});

describe('operation groups', () => {
  it('only uses the declared group names', () => {
    for (const spec of OPERATIONS) for (const group of spec.groups) expect(OPERATION_GROUPS).toContain(group);
  });

  it('predict = the prediction and explanation methods of endpoints and publisher models', () => {
    expect(idsIn('predict')).toEqual(
      [
        'endpoints.predict',
        'endpoints.rawPredict',
        'endpoints.streamRawPredict',
        'endpoints.serverStreamingPredict',
        'endpoints.directPredict',
        'endpoints.directRawPredict',
        'endpoints.explain',
        'publisherModels.predict',
        'publisherModels.rawPredict',
        'publisherModels.streamRawPredict',
        'publisherModels.serverStreamingPredict',
      ].sort(),
    );
  });

  it('generate = generateContent, streamGenerateContent, countTokens, computeTokens and chat completions', () => {
    expect(idsIn('generate')).toEqual(
      [
        'endpoints.generateContent',
        'endpoints.streamGenerateContent',
        'endpoints.countTokens',
        'endpoints.computeTokens',
        'endpoints.chatCompletions',
        'publisherModels.generateContent',
        'publisherModels.streamGenerateContent',
        'publisherModels.countTokens',
        'publisherModels.computeTokens',
      ].sort(),
    );
  });

  it('embed = embedContent only', () => {
    expect(idsIn('embed')).toEqual(['publisherModels.embedContent']);
  });

  it(
    'training = every method of customJobs, trainingPipelines, pipelineJobs, hyperparameterTuningJobs and their operations, ' +
      'nothing else',
    () => {
      const trainingCollections = ['customJobs', 'trainingPipelines', 'pipelineJobs', 'hyperparameterTuningJobs'];
      expect(idsIn('training')).toEqual(ids.filter((id) => trainingCollections.includes(id.split('.')[0] ?? '')).sort());
    },
  );

  // Changed from "every GET": the protos have one GET that starts a long-running change (RestoreDatasetVersion).
  it('read = every GET method except those that start a long-running operation, plus operations wait', () => {
    const expected = OPERATIONS.filter(
      (spec) => (spec.httpMethod === 'GET' && !spec.longRunning) || spec.id.endsWith('operations.wait'),
    ).map((spec) => spec.id);
    expect(idsIn('read')).toEqual(expected.sort());
    expect(idsIn('read')).not.toContain('datasetVersions.restore');
  });

  it('every family of the group table names a collection the table has (no dead entries after a package update)', () => {
    const resources = OPERATION_BINDINGS.map((binding) => binding.resource);
    for (const family of Object.keys(FAMILY_GROUPS)) {
      expect([family, resources.some((r) => r.startsWith(`projects/{project}/locations/{location}/${family}`))]).toEqual([family, true]);
    }
  });

  it('every operation is in at least one group; admin = the writes in no other group', () => {
    for (const spec of OPERATIONS) expect([spec.id, spec.groups.length > 0]).toEqual([spec.id, true]);
    for (const spec of OPERATIONS) {
      if (spec.groups.includes('admin')) expect([spec.id, spec.groups]).toEqual([spec.id, ['admin']]);
    }
  });

  it.each([
    ['cachedContents.create', 'cache'],
    ['tuningJobs.create', 'tuning'],
    ['indexEndpoints.findNeighbors', 'vectorSearch'],
    ['indexEndpoints.readIndexDatapoints', 'vectorSearch'],
    ['indexes.upsertDatapoints', 'vectorSearch'],
    ['ragCorpora.create', 'rag'],
    ['ragFiles.import', 'rag'],
    ['locations.retrieveContexts', 'rag'],
    ['locations.augmentPrompt', 'rag'],
    ['locations.corroborateContent', 'rag'],
    ['reasoningEngines.query', 'agents'],
    ['sessions.create', 'agents'],
    ['featureViews.fetchFeatureValues', 'featureStore'],
    ['featureViews.searchNearestEntities', 'featureStore'],
    ['featureOnlineStores.create', 'featureStore'],
    ['datasets.create', 'datasets'],
    ['endpoints.create', 'deploy'],
    ['endpoints.delete', 'deploy'],
    ['endpoints.undeployModel', 'deploy'],
    ['models.upload', 'deploy'],
    ['models.delete', 'deploy'],
    ['locations.evaluateInstances', 'evaluate'],
    ['onlineEvaluators.create', 'evaluate'],
    ['schedules.create', 'admin'],
    ['persistentResources.create', 'admin'],
  ] as const)('%s is in %s', (id, group) => {
    expect(operationById(id)?.groups).toContain(group);
  });
});

describe('permission types', () => {
  // Serving reads of the new families (findNeighbors, fetchFeatureValues, retrieveContexts, agent queries) are data reads too.
  const SERVING = new Set([
    'indexEndpoints.findNeighbors',
    'indexEndpoints.readIndexDatapoints',
    'featureViews.fetchFeatureValues',
    'featureViews.streamingFetchFeatureValues',
    'featureViews.searchNearestEntities',
    'locations.retrieveContexts',
    'locations.augmentPrompt',
    'locations.corroborateContent',
    'locations.askContexts',
    'reasoningEngines.query',
    'reasoningEngines.streamQuery',
  ]);
  it('are DATA_READ for the data plane, ADMIN_READ for get/list/wait and ADMIN_WRITE for everything else', () => {
    for (const spec of OPERATIONS) {
      const dataPlane =
        spec.groups.some((group) => group === 'predict' || group === 'generate' || group === 'embed') || SERVING.has(spec.id);
      const read = spec.groups.includes('read');
      expect([spec.id, spec.permissionType]).toEqual([spec.id, dataPlane ? 'DATA_READ' : read ? 'ADMIN_READ' : 'ADMIN_WRITE']);
    }
  });
});

describe('methodNameOf', () => {
  it.each([
    ['endpoints.predict', 'v1', 'google.cloud.aiplatform.v1.PredictionService.Predict'],
    ['endpoints.predict', 'v1beta1', 'google.cloud.aiplatform.v1beta1.PredictionService.Predict'],
    ['publisherModels.countTokens', 'v1', 'google.cloud.aiplatform.v1.LlmUtilityService.CountTokens'],
    ['publisherModels.countTokens', 'v1beta1', 'google.cloud.aiplatform.v1beta1.PredictionService.CountTokens'],
    ['endpoints.countTokens', 'v1beta1', 'google.cloud.aiplatform.v1beta1.PredictionService.CountTokens'],
    ['endpoints.computeTokens', 'v1beta1', 'google.cloud.aiplatform.v1beta1.LlmUtilityService.ComputeTokens'],
    ['endpoints.chatCompletions', 'v1beta1', 'google.cloud.aiplatform.v1beta1.PredictionService.ChatCompletions'],
    ['customJobs.create', 'v1', 'google.cloud.aiplatform.v1.JobService.CreateCustomJob'],
    ['pipelineJobs.batchCancel', 'v1', 'google.cloud.aiplatform.v1.PipelineService.BatchCancelPipelineJobs'],
    ['models.upload', 'v1', 'google.cloud.aiplatform.v1.ModelService.UploadModel'],
    ['operations.get', 'v1', 'google.longrunning.Operations.GetOperation'],
    ['endpoints.operations.wait', 'v1beta1', 'google.longrunning.Operations.WaitOperation'],
  ] as const)('%s in %s is %s', (id, version, methodName) => {
    const spec = operationById(id);
    if (spec === undefined) throw new Error(`no spec ${id}`);
    expect(methodNameOf(spec, version)).toBe(methodName);
  });
});

describe('KNOWN_PERMISSIONS', () => {
  it('is exactly the set of permissions of the table', () => {
    expect([...KNOWN_PERMISSIONS].sort()).toEqual([...new Set(OPERATIONS.map((spec) => spec.permission))].sort());
  });

  it.each([
    'aiplatform.endpoints.predict',
    'aiplatform.endpoints.explain',
    'aiplatform.endpoints.deploy',
    'aiplatform.endpoints.undeploy',
    'aiplatform.endpoints.update',
    'aiplatform.endpoints.get',
    'aiplatform.models.upload',
    'aiplatform.customJobs.get',
    'aiplatform.hyperparameterTuningJobs.get',
    'aiplatform.pipelineJobs.delete',
    'aiplatform.operations.get',
    'aiplatform.operations.list',
    'aiplatform.operations.cancel',
    'aiplatform.operations.delete',
  ])('contains %s', (permission) => {
    expect(KNOWN_PERMISSIONS.has(permission)).toBe(true);
  });

  it('does not contain permissions no operation yields', () => {
    expect(KNOWN_PERMISSIONS.has('aiplatform.operations.wait')).toBe(false);
    expect(KNOWN_PERMISSIONS.has('aiplatform.batchPredictionJobs.get')).toBe(true);
    expect(KNOWN_PERMISSIONS.has('aiplatform.secrets.get')).toBe(false);
  });
});

describe('operationById', () => {
  it('returns the spec for a known id', () => {
    expect(operationById('endpoints.predict')?.permission).toBe('aiplatform.endpoints.predict');
  });

  it.each(['', 'endpoints', 'endpoints.predictt', '__proto__', 'constructor', 'toString', 'hasOwnProperty'])(
    'returns undefined for %j',
    (id) => {
      expect(operationById(id)).toBeUndefined();
    },
  );
});
