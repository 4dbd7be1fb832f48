import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { ProxyError, toGoogleErrorBody, type ProxyErrorCode } from '../errors.js';
import { MethodNotAllowedError, classify } from './classify.js';
import { API_VERSIONS, type ApiVersion } from './operation-types.js';
import { OPERATION_BINDINGS, methodNameOf, type OperationBinding } from './operation-table.js';

const LOC = 'projects/my-proj/locations/us-central1';

/** Runs classify and returns the ProxyError it throws (fails the test if it throws anything else or nothing). */
function refusal(method: string, url: string): ProxyError {
  try {
    const op = classify(method, url);
    throw new Error(`expected a refusal, got ${op.spec.id} for ${method} ${url}`);
  } catch (error) {
    if (!(error instanceof ProxyError)) throw error;
    return error;
  }
}

// ---------------------------------------------------------------------------
// Paths generated from the table
// ---------------------------------------------------------------------------

const SAMPLE: Record<string, string> = {
  project: 'my-proj',
  location: 'us-central1',
  endpoint: '1234567890',
  publisher: 'google',
  model: 'gemini-2.5-flash@001',
  customJob: '111',
  trainingPipeline: '222',
  pipelineJob: 'my-pipeline-run-20250101',
  batchPredictionJob: '333',
  hyperparameterTuningJob: '444',
  operation: '5555',
};

function fill(template: string): string {
  return template.replace(/\{([a-zA-Z]+)\}/g, (_, name: string) => {
    // Ids the first table did not have get a generic well-formed id.
    return SAMPLE[name] ?? `${name.toLowerCase()}-1`;
  });
}

function pathOf(binding: OperationBinding, version: ApiVersion): string {
  if (binding.resource === '') return `/${version}:${binding.verb ?? ''}`;
  return (
    `/${version}/${fill(binding.resource)}${binding.suffix === undefined ? '' : `/${binding.suffix}`}` +
    (binding.verb === undefined ? '' : `:${binding.verb}`)
  );
}

const GENERATED = OPERATION_BINDINGS.flatMap((binding) =>
  binding.versions.map((version) => ({ binding, version, path: pathOf(binding, version) })),
);

/** Every distinct (version, path) with the methods the table gives it. */
const ROUTES = new Map<string, { version: ApiVersion; path: string; methods: Set<string> }>();
for (const { binding, version, path } of GENERATED) {
  const route = ROUTES.get(path) ?? { version, path, methods: new Set<string>() };
  route.methods.add(binding.spec.httpMethod);
  ROUTES.set(path, route);
}

describe('classify: every binding of the table', () => {
  it.each(GENERATED.map((g) => [g.binding.spec.id, g.binding.spec.httpMethod, g.path, g] as const))(
    '%s: %s %s classifies to it, with project, location, resource and methodName',
    (_id, method, path, { binding, version }) => {
      const op = classify(method, path);
      const scoped = binding.resource.startsWith('projects/{project}/locations/');
      expect(op).toEqual({
        spec: binding.spec,
        version,
        project: binding.resource.startsWith('projects/') ? 'my-proj' : null,
        location: scoped ? 'us-central1' : null,
        resource: fill(binding.resource),
        methodName: methodNameOf(binding.spec, version),
        ...(binding.scopedForm === undefined ? {} : { scopedForm: binding.scopedForm }),
      });
    },
  );

  it('covers both versions for every operation that exists in both', () => {
    const seen = new Set(GENERATED.map((g) => `${g.binding.spec.id}@${g.version}`));
    for (const { spec } of OPERATION_BINDINGS) for (const version of spec.versions) expect(seen.has(`${spec.id}@${version}`)).toBe(true);
  });

  const servedPaths = new Set(GENERATED.map((g) => g.path));
  const missingVersion = OPERATION_BINDINGS.flatMap((binding) =>
    API_VERSIONS.filter((version) => !binding.versions.includes(version) && !servedPaths.has(pathOf(binding, version))).map(
      (version) => [binding.spec.id, version, pathOf(binding, version)] as const,
    ),
  );
  it.each(missingVersion)('%s does not exist in %s: %s is a 404', (_id, _version, path) => {
    expect(refusal('POST', path)).toMatchObject({ httpStatus: 404, code: 'ERR_REQUEST_UNKNOWN_METHOD', status: 'NOT_FOUND' });
  });
});

describe('classify: every wrong HTTP method is a 405 that names the allowed ones', () => {
  const METHODS = ['GET', 'POST', 'DELETE', 'PATCH', 'PUT', 'HEAD', 'OPTIONS', 'get', 'post', 'TRACE', 'CONNECT'];
  const cases = [...ROUTES.values()].flatMap(({ path, methods }) =>
    METHODS.filter((method) => !methods.has(method)).map((method) => [method, path, [...methods].sort().join(', ')] as const),
  );

  it.each(cases)('%s %s is 405 with allow: %s', (method, path, allow) => {
    const error = refusal(method, path);
    expect(error).toBeInstanceOf(MethodNotAllowedError);
    expect(error).toMatchObject({
      httpStatus: 405,
      status: 'INVALID_ARGUMENT',
      code: 'ERR_REQUEST_METHOD_NOT_ALLOWED',
      headers: { allow },
    });
  });

  it('a 405 renders as a Google error with code 405 and status INVALID_ARGUMENT', () => {
    const body = toGoogleErrorBody(refusal('GET', `/v1/${LOC}/endpoints/1:predict`), 'req-1');
    expect(body.error).toMatchObject({ code: 405, status: 'INVALID_ARGUMENT' });
    expect(body.error.message).toContain('POST');
  });

  it('a path answering to several methods lists them all: customJobs collection is GET, POST', () => {
    expect(refusal('PUT', `/v1/${LOC}/customJobs`).headers).toEqual({ allow: 'GET, POST' });
    expect(refusal('PATCH', `/v1/${LOC}/customJobs/1`).headers).toEqual({ allow: 'DELETE, GET' });
    expect(refusal('POST', `/v1/${LOC}/operations/1`).headers).toEqual({ allow: 'DELETE, GET' });
  });
});

// ---------------------------------------------------------------------------
// Hand-written, real-looking requests
// ---------------------------------------------------------------------------

type Case = readonly [method: string, url: string, id: string, permission: string, resource: string];

const REAL: readonly Case[] = [
  ['POST', `/v1/${LOC}/endpoints/1234567890:predict`, 'endpoints.predict', 'aiplatform.endpoints.predict', `${LOC}/endpoints/1234567890`],
  [
    'POST',
    '/v1/projects/123456789012/locations/europe-west4/endpoints/456:rawPredict',
    'endpoints.rawPredict',
    'aiplatform.endpoints.predict',
    'projects/123456789012/locations/europe-west4/endpoints/456',
  ],
  [
    'POST',
    `/v1/${LOC}/endpoints/456:streamRawPredict`,
    'endpoints.streamRawPredict',
    'aiplatform.endpoints.predict',
    `${LOC}/endpoints/456`,
  ],
  [
    'POST',
    `/v1beta1/${LOC}/endpoints/456:serverStreamingPredict`,
    'endpoints.serverStreamingPredict',
    'aiplatform.endpoints.predict',
    `${LOC}/endpoints/456`,
  ],
  ['POST', `/v1/${LOC}/endpoints/456:directPredict`, 'endpoints.directPredict', 'aiplatform.endpoints.predict', `${LOC}/endpoints/456`],
  [
    'POST',
    `/v1/${LOC}/endpoints/456:directRawPredict`,
    'endpoints.directRawPredict',
    'aiplatform.endpoints.predict',
    `${LOC}/endpoints/456`,
  ],
  ['POST', `/v1/${LOC}/endpoints/456:explain`, 'endpoints.explain', 'aiplatform.endpoints.explain', `${LOC}/endpoints/456`],
  ['POST', `/v1/${LOC}/endpoints/456:generateContent`, 'endpoints.generateContent', 'aiplatform.endpoints.predict', `${LOC}/endpoints/456`],
  [
    'POST',
    `/v1/${LOC}/endpoints/456:streamGenerateContent?alt=sse`,
    'endpoints.streamGenerateContent',
    'aiplatform.endpoints.predict',
    `${LOC}/endpoints/456`,
  ],
  ['POST', `/v1/${LOC}/endpoints/456:countTokens`, 'endpoints.countTokens', 'aiplatform.endpoints.predict', `${LOC}/endpoints/456`],
  [
    'POST',
    `/v1beta1/${LOC}/endpoints/456:computeTokens`,
    'endpoints.computeTokens',
    'aiplatform.endpoints.predict',
    `${LOC}/endpoints/456`,
  ],
  [
    'POST',
    `/v1beta1/${LOC}/endpoints/openapi/chat/completions`,
    'endpoints.chatCompletions',
    'aiplatform.endpoints.predict',
    `${LOC}/endpoints/openapi`,
  ],
  [
    'POST',
    `/v1beta1/${LOC}/endpoints/789/chat/completions`,
    'endpoints.chatCompletions',
    'aiplatform.endpoints.predict',
    `${LOC}/endpoints/789`,
  ],
  [
    'POST',
    `/v1/${LOC}/publishers/google/models/gemini-2.5-flash:generateContent`,
    'publisherModels.generateContent',
    'aiplatform.endpoints.predict',
    `${LOC}/publishers/google/models/gemini-2.5-flash`,
  ],
  [
    'POST',
    '/v1beta1/projects/my-proj/locations/global/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse',
    'publisherModels.streamGenerateContent',
    'aiplatform.endpoints.predict',
    'projects/my-proj/locations/global/publishers/google/models/gemini-2.5-pro',
  ],
  [
    'POST',
    `/v1/${LOC}/publishers/google/models/gemini-2.0-flash-001:countTokens`,
    'publisherModels.countTokens',
    'aiplatform.endpoints.predict',
    `${LOC}/publishers/google/models/gemini-2.0-flash-001`,
  ],
  [
    'POST',
    `/v1/${LOC}/publishers/google/models/gemini-2.0-flash-001:computeTokens`,
    'publisherModels.computeTokens',
    'aiplatform.endpoints.predict',
    `${LOC}/publishers/google/models/gemini-2.0-flash-001`,
  ],
  [
    'POST',
    `/v1/${LOC}/publishers/google/models/text-embedding-005:predict`,
    'publisherModels.predict',
    'aiplatform.endpoints.predict',
    `${LOC}/publishers/google/models/text-embedding-005`,
  ],
  [
    'POST',
    `/v1beta1/${LOC}/publishers/google/models/gemini-embedding-001:embedContent`,
    'publisherModels.embedContent',
    'aiplatform.endpoints.predict',
    `${LOC}/publishers/google/models/gemini-embedding-001`,
  ],
  [
    'POST',
    '/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict',
    'publisherModels.rawPredict',
    'aiplatform.endpoints.predict',
    'projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514',
  ],
  [
    'POST',
    '/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4%4020250514:streamRawPredict',
    'publisherModels.streamRawPredict',
    'aiplatform.endpoints.predict',
    'projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514',
  ],
  [
    'POST',
    `/v1/${LOC}/publishers/meta/models/llama-3.3-70b-instruct-maas:serverStreamingPredict`,
    'publisherModels.serverStreamingPredict',
    'aiplatform.endpoints.predict',
    `${LOC}/publishers/meta/models/llama-3.3-70b-instruct-maas`,
  ],
  [
    'POST',
    '/v1/publishers/google/models/gemini-2.5-flash:generateContent',
    'publisherModels.generateContent',
    'aiplatform.endpoints.predict',
    'publishers/google/models/gemini-2.5-flash',
  ],
  [
    'POST',
    '/v1beta1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse',
    'publisherModels.streamGenerateContent',
    'aiplatform.endpoints.predict',
    'publishers/google/models/gemini-2.5-flash',
  ],
  ['POST', '/v1beta1/endpoints/123:countTokens', 'endpoints.countTokens', 'aiplatform.endpoints.predict', 'endpoints/123'],
  ['POST', '/v1/endpoints/123:computeTokens', 'endpoints.computeTokens', 'aiplatform.endpoints.predict', 'endpoints/123'],
  ['GET', `/v1/${LOC}/endpoints/123`, 'endpoints.get', 'aiplatform.endpoints.get', `${LOC}/endpoints/123`],
  ['GET', `/v1/${LOC}/endpoints?pageSize=50&pageToken=abc`, 'endpoints.list', 'aiplatform.endpoints.list', `${LOC}/endpoints`],
  ['POST', `/v1/${LOC}/endpoints/123:deployModel`, 'endpoints.deployModel', 'aiplatform.endpoints.deploy', `${LOC}/endpoints/123`],
  ['POST', `/v1/${LOC}/endpoints/123:undeployModel`, 'endpoints.undeployModel', 'aiplatform.endpoints.undeploy', `${LOC}/endpoints/123`],
  [
    'POST',
    `/v1/${LOC}/endpoints/123:mutateDeployedModel`,
    'endpoints.mutateDeployedModel',
    'aiplatform.endpoints.update',
    `${LOC}/endpoints/123`,
  ],
  ['POST', `/v1/${LOC}/customJobs`, 'customJobs.create', 'aiplatform.customJobs.create', `${LOC}/customJobs`],
  ['GET', `/v1/${LOC}/customJobs/123456`, 'customJobs.get', 'aiplatform.customJobs.get', `${LOC}/customJobs/123456`],
  [
    'GET',
    `/v1/${LOC}/customJobs?filter=state%3DJOB_STATE_RUNNING&pageSize=10`,
    'customJobs.list',
    'aiplatform.customJobs.list',
    `${LOC}/customJobs`,
  ],
  ['POST', `/v1/${LOC}/customJobs/123456:cancel`, 'customJobs.cancel', 'aiplatform.customJobs.cancel', `${LOC}/customJobs/123456`],
  ['DELETE', `/v1/${LOC}/customJobs/123456`, 'customJobs.delete', 'aiplatform.customJobs.delete', `${LOC}/customJobs/123456`],
  ['POST', `/v1/${LOC}/trainingPipelines`, 'trainingPipelines.create', 'aiplatform.trainingPipelines.create', `${LOC}/trainingPipelines`],
  [
    'GET',
    `/v1beta1/${LOC}/trainingPipelines/789`,
    'trainingPipelines.get',
    'aiplatform.trainingPipelines.get',
    `${LOC}/trainingPipelines/789`,
  ],
  [
    'POST',
    `/v1/${LOC}/trainingPipelines/789:cancel`,
    'trainingPipelines.cancel',
    'aiplatform.trainingPipelines.cancel',
    `${LOC}/trainingPipelines/789`,
  ],
  [
    'POST',
    `/v1/${LOC}/pipelineJobs?pipelineJobId=my-run-1`,
    'pipelineJobs.create',
    'aiplatform.pipelineJobs.create',
    `${LOC}/pipelineJobs`,
  ],
  [
    'GET',
    `/v1/${LOC}/pipelineJobs?filter=display_name%3D%22nightly%22`,
    'pipelineJobs.list',
    'aiplatform.pipelineJobs.list',
    `${LOC}/pipelineJobs`,
  ],
  ['DELETE', `/v1/${LOC}/pipelineJobs/my-run-1`, 'pipelineJobs.delete', 'aiplatform.pipelineJobs.delete', `${LOC}/pipelineJobs/my-run-1`],
  ['POST', `/v1/${LOC}/pipelineJobs:batchDelete`, 'pipelineJobs.batchDelete', 'aiplatform.pipelineJobs.delete', `${LOC}/pipelineJobs`],
  ['POST', `/v1beta1/${LOC}/pipelineJobs:batchCancel`, 'pipelineJobs.batchCancel', 'aiplatform.pipelineJobs.cancel', `${LOC}/pipelineJobs`],
  [
    'POST',
    `/v1/${LOC}/batchPredictionJobs`,
    'batchPredictionJobs.create',
    'aiplatform.batchPredictionJobs.create',
    `${LOC}/batchPredictionJobs`,
  ],
  [
    'POST',
    `/v1/${LOC}/batchPredictionJobs/55:cancel`,
    'batchPredictionJobs.cancel',
    'aiplatform.batchPredictionJobs.cancel',
    `${LOC}/batchPredictionJobs/55`,
  ],
  [
    'GET',
    `/v1/${LOC}/hyperparameterTuningJobs/77`,
    'hyperparameterTuningJobs.get',
    'aiplatform.hyperparameterTuningJobs.get',
    `${LOC}/hyperparameterTuningJobs/77`,
  ],
  [
    'DELETE',
    `/v1/${LOC}/hyperparameterTuningJobs/77`,
    'hyperparameterTuningJobs.delete',
    'aiplatform.hyperparameterTuningJobs.delete',
    `${LOC}/hyperparameterTuningJobs/77`,
  ],
  ['POST', `/v1/${LOC}/models:upload`, 'models.upload', 'aiplatform.models.upload', `${LOC}/models`],
  ['GET', `/v1/${LOC}/models/my-model@2`, 'models.get', 'aiplatform.models.get', `${LOC}/models/my-model@2`],
  ['GET', `/v1/${LOC}/models/my-model%402`, 'models.get', 'aiplatform.models.get', `${LOC}/models/my-model@2`],
  ['GET', `/v1/${LOC}/models?$alt=json%3Benum-encoding=int`, 'models.list', 'aiplatform.models.list', `${LOC}/models`],
  ['GET', `/v1/${LOC}/operations/123`, 'operations.get', 'aiplatform.operations.get', `${LOC}/operations/123`],
  ['GET', `/v1/${LOC}/operations`, 'operations.list', 'aiplatform.operations.list', `${LOC}/operations`],
  ['POST', `/v1/${LOC}/operations/123:wait`, 'operations.wait', 'aiplatform.operations.get', `${LOC}/operations/123`],
  ['POST', `/v1/${LOC}/operations/123:cancel`, 'operations.cancel', 'aiplatform.operations.cancel', `${LOC}/operations/123`],
  ['DELETE', `/v1/${LOC}/operations/123`, 'operations.delete', 'aiplatform.operations.delete', `${LOC}/operations/123`],
  [
    'GET',
    '/v1/projects/123/locations/us-central1/endpoints/456/operations/789',
    'endpoints.operations.get',
    'aiplatform.endpoints.get',
    'projects/123/locations/us-central1/endpoints/456/operations/789',
  ],
  [
    'POST',
    `/v1/${LOC}/endpoints/456/operations/789:wait`,
    'endpoints.operations.wait',
    'aiplatform.endpoints.get',
    `${LOC}/endpoints/456/operations/789`,
  ],
  [
    'POST',
    `/v1/${LOC}/customJobs/1/operations/2:cancel`,
    'customJobs.operations.cancel',
    'aiplatform.operations.cancel',
    `${LOC}/customJobs/1/operations/2`,
  ],
  [
    'DELETE',
    `/v1/${LOC}/models/m/operations/3`,
    'models.operations.delete',
    'aiplatform.operations.delete',
    `${LOC}/models/m/operations/3`,
  ],
  ['GET', `/v1/${LOC}/models/m@3/operations/4`, 'models.operations.get', 'aiplatform.models.get', `${LOC}/models/m@3/operations/4`],
  [
    'GET',
    `/v1beta1/${LOC}/pipelineJobs/x/operations`,
    'pipelineJobs.operations.list',
    'aiplatform.pipelineJobs.get',
    `${LOC}/pipelineJobs/x/operations`,
  ],
  [
    'GET',
    `/v1/${LOC}/trainingPipelines/9/operations/10`,
    'trainingPipelines.operations.get',
    'aiplatform.trainingPipelines.get',
    `${LOC}/trainingPipelines/9/operations/10`,
  ],
  [
    'POST',
    `/v1/${LOC}/hyperparameterTuningJobs/7/operations/8:wait`,
    'hyperparameterTuningJobs.operations.wait',
    'aiplatform.hyperparameterTuningJobs.get',
    `${LOC}/hyperparameterTuningJobs/7/operations/8`,
  ],
];

describe('classify: real-looking requests from vertex-operations.md', () => {
  it('has at least 40 of them', () => {
    expect(REAL.length).toBeGreaterThanOrEqual(40);
  });

  it.each(REAL)('%s %s is %s, checked as %s on %s', (method, url, id, permission, resource) => {
    const op = classify(method, url);
    expect(op.spec.id).toBe(id);
    expect(op.spec.permission).toBe(permission);
    expect(op.resource).toBe(resource);
  });

  it('fills project and location from the path', () => {
    expect(classify('POST', '/v1/projects/123456789012/locations/europe-west4/endpoints/456:predict')).toMatchObject({
      version: 'v1',
      project: '123456789012',
      location: 'europe-west4',
    });
  });

  it('gives the location-less forms project and location null', () => {
    expect(classify('POST', '/v1/publishers/google/models/gemini-2.5-flash:generateContent')).toMatchObject({
      project: null,
      location: null,
    });
    expect(classify('POST', '/v1beta1/endpoints/123:streamGenerateContent?alt=sse')).toMatchObject({
      project: null,
      location: null,
      version: 'v1beta1',
    });
  });

  it('names CountTokens after the service it lives in per version', () => {
    const path = `${LOC}/publishers/google/models/gemini-2.5-flash:countTokens`;
    expect(classify('POST', `/v1/${path}`).methodName).toBe('google.cloud.aiplatform.v1.LlmUtilityService.CountTokens');
    expect(classify('POST', `/v1beta1/${path}`).methodName).toBe('google.cloud.aiplatform.v1beta1.PredictionService.CountTokens');
  });
});

describe('classify: query strings', () => {
  it.each([
    '$alt=json;enum-encoding=int',
    '$alt=json%3Benum-encoding=int',
    '%24alt=json%3Benum-encoding=int',
    'alt=sse',
    '$alt=json%3Benum-encoding=int&$prettyPrint=0',
    'pageSize=10&pageToken=CgR0b2tlbg%3D%3D',
    'filter=labels.monkey%3Dbanana',
    'readMask=name,displayName',
    '',
  ])('ignores ?%s for classification', (query) => {
    expect(classify('POST', `/v1/${LOC}/endpoints/1:predict?${query}`).spec.id).toBe('endpoints.predict');
  });

  it('keeps the query out of the resource', () => {
    expect(classify('GET', `/v1/${LOC}/models?$alt=json;enum-encoding=int`).resource).toBe(`${LOC}/models`);
  });
});

// ---------------------------------------------------------------------------
// Hostile and malformed input
// ---------------------------------------------------------------------------

type Refusal = readonly [method: string, url: string, httpStatus: number, code: ProxyErrorCode];
const E = `/v1/${LOC}/endpoints`;
const UNKNOWN = 'ERR_REQUEST_UNKNOWN_METHOD';
const INVALID = 'ERR_REQUEST_INVALID_PATH';
const FORBIDDEN = 'ERR_REQUEST_FORBIDDEN_PARAMETER';

const HOSTILE: readonly Refusal[] = [
  // Not a Vertex AI API path at all.
  ['GET', '', 404, UNKNOWN],
  ['GET', '/', 404, UNKNOWN],
  ['GET', '*', 404, UNKNOWN],
  ['GET', '/v1', 404, UNKNOWN],
  ['GET', '/v1beta1', 404, UNKNOWN],
  ['GET', '/v1?x=1', 404, UNKNOWN],
  ['POST', `/v2/${LOC}/endpoints/1:predict`, 404, UNKNOWN],
  ['POST', `/v1beta2/${LOC}/endpoints/1:predict`, 404, UNKNOWN],
  ['POST', `/V1/${LOC}/endpoints/1:predict`, 404, UNKNOWN],
  ['POST', `http://evil.example/v1/${LOC}/endpoints/1:predict`, 404, UNKNOWN],
  ['POST', `//v1/${LOC}/endpoints/1:predict`, 404, UNKNOWN],
  ['POST', `/ui/${LOC}/endpoints/1:predict`, 404, UNKNOWN],
  ['POST', `/v1%2F${LOC}/endpoints/1:predict`, 404, UNKNOWN],
  // Unknown collections, verbs and shapes.
  ['GET', `/v1/${LOC}/secrets/x`, 404, UNKNOWN],
  ['GET', '/v1/projects/my-proj/locations', 404, UNKNOWN],
  ['GET', `/v1/${LOC}`, 404, UNKNOWN],
  ['GET', '/v1/projects/my-proj', 404, UNKNOWN],
  ['POST', `${E}/1:predictt`, 404, UNKNOWN],
  ['POST', `${E}/1:PREDICT`, 404, UNKNOWN],
  ['POST', `${E}/1:setIamPolicy`, 404, UNKNOWN],
  ['POST', `${E}/1/extra`, 404, UNKNOWN],
  ['POST', `${E}/1/chat/completions`, 404, UNKNOWN],
  ['POST', `${E}/1/chat`, 404, UNKNOWN],
  ['GET', `/v1/${LOC}/publishers/google/models/gemini-2.5-flash`, 404, UNKNOWN],
  ['POST', '/v1/publishers/google/models/gemini-2.5-flash:predict', 404, UNKNOWN],
  ['POST', '/v1/publishers/google/models/gemini-embedding-001:embedContent', 404, UNKNOWN],
  ['POST', `/v1/${LOC}/models/m:upload`, 404, UNKNOWN],
  ['POST', `/v1/${LOC}/customJobs:batchDelete`, 404, UNKNOWN],
  ['GET', `/v1/${LOC}/batchPredictionJobs/1/operations/2`, 404, UNKNOWN],
  ['GET', `/v1/${LOC}/customJobs/1/operations/2/operations/3`, 404, UNKNOWN],
  ['POST', `/v1/${LOC}/endpoints:predict`, 404, UNKNOWN],
  // Encoded separators and traversal.
  ['POST', `${E}/1%2F..%2F2:predict`, 400, INVALID],
  ['POST', `${E}/1%2f2:predict`, 400, INVALID],
  ['POST', `${E}/1%5C2:predict`, 400, INVALID],
  ['POST', `${E}/1%5c2:predict`, 400, INVALID],
  ['POST', `${E}/%2e%2e:predict`, 400, INVALID],
  ['POST', `${E}/%2E:predict`, 400, INVALID],
  ['POST', `${E}/1%252F2:predict`, 400, INVALID],
  ['POST', `${E}/1%3Apredict`, 400, INVALID],
  ['POST', `${E}/..:predict`, 400, INVALID],
  ['GET', `${E}/../models/1`, 400, INVALID],
  ['GET', `${E}/./1`, 400, INVALID],
  ['POST', `${E}/1:predict/../../x`, 400, INVALID],
  ['POST', `${E}/..;/1:predict`, 400, INVALID],
  ['POST', `${E}/1;x=y:predict`, 400, INVALID],
  ['POST', `${E}\\1:predict`, 400, INVALID],
  ['POST', `/v1/${LOC}//endpoints/1:predict`, 400, INVALID],
  ['GET', `${E}/`, 400, INVALID],
  ['GET', '/v1/', 400, INVALID],
  ['GET', `/v1//${LOC}/endpoints`, 400, INVALID],
  ['POST', `${E}/:predict`, 400, INVALID],
  ['POST', `${E}/1:`, 400, INVALID],
  ['POST', `${E}/1:predict:predict`, 400, INVALID],
  ['POST', `/v1/projects/my-proj:x/locations/us-central1/endpoints/1:predict`, 400, INVALID],
  // Fragments, control characters, non-ASCII, odd characters.
  ['POST', `${E}/1:predict#frag`, 400, INVALID],
  ['POST', `${E}/1:predict?alt=sse#frag`, 400, INVALID],
  ['POST', `${E}/1\u0000:predict`, 400, INVALID],
  ['POST', `${E}/1%00:predict`, 400, INVALID],
  ['POST', `${E}/1\t:predict`, 400, INVALID],
  ['POST', `${E}/1\r\nX-Injected: 1:predict`, 400, INVALID],
  ['POST', `${E}/1\u007f:predict`, 400, INVALID],
  ['POST', `${E}/1%7F:predict`, 400, INVALID],
  ['POST', `${E}/\u00e9:predict`, 400, INVALID],
  ['POST', `${E}/%C3%A9:predict`, 400, INVALID],
  ['POST', `/v1/projects/my-proj/locations/us-central1\uff0fendpoints/1:predict`, 400, INVALID],
  ['POST', `${E}/1 2:predict`, 400, INVALID],
  ['POST', `${E}/1%202:predict`, 400, INVALID],
  ['POST', `${E}/1+2:predict`, 400, INVALID],
  ['POST', `${E}/%zz:predict`, 400, INVALID],
  ['POST', `${E}/1%4`, 400, INVALID],
  ['POST', `${E}/1%`, 400, INVALID],
  ['POST', `${E}/1%2:predict`, 400, INVALID],
  ['POST', `/v1/${'a'.repeat(3000)}`, 400, INVALID],
  // Ids that are not ids.
  ['POST', `${E}/${'1'.repeat(129)}:predict`, 400, INVALID],
  ['POST', `/v1/projects/${'a'.repeat(64)}/locations/us-central1/endpoints/1:predict`, 400, INVALID],
  ['POST', '/v1/projects/My-Proj/locations/us-central1/endpoints/1:predict', 400, INVALID],
  ['POST', '/v1/projects/my_proj/locations/us-central1/endpoints/1:predict', 400, INVALID],
  ['POST', '/v1/projects/-proj/locations/us-central1/endpoints/1:predict', 400, INVALID],
  ['POST', '/v1/projects/my-proj/locations/US-CENTRAL1/endpoints/1:predict', 400, INVALID],
  ['POST', '/v1/projects/my-proj/locations/1us/endpoints/1:predict', 400, INVALID],
  ['POST', '/v1/projects/my-proj/locations/us_central1/endpoints/1:predict', 400, INVALID],
  ['POST', '/v1/projects/my-proj/locations/us.central1/endpoints/1:predict', 400, INVALID],
  ['POST', `${E}/-1:predict`, 400, INVALID],
  ['POST', `${E}/_1:predict`, 400, INVALID],
  ['GET', `/v1/${LOC}/models/a..b`, 400, INVALID],
  ['GET', `/v1/${LOC}/models/@2`, 400, INVALID],
  ['POST', `/v1/${LOC}/publishers/google/models/.hidden:generateContent`, 400, INVALID],
  // Credentials and method overrides in the query.
  ['POST', `${E}/1:predict?key=AIzaSyA-fake`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?access_token=ya29.fake`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?oauth_token=ya29.fake`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?k%65y=AIza`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?%6B%65%79=AIza`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?k%2565y=AIza`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?KEY=AIza`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?$key=AIza`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?%24key=AIza`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?key`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?alt=sse&key=AIza`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?$alt=json;key=AIza`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?$alt=json%3Bkey%3DAIza`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?$alt=json;enum-encoding=int;access_token=ya29`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?access%5Ftoken=ya29`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?Access_Token=ya29`, 400, FORBIDDEN],
  ['POST', `${E}/1:predict?key+=AIza`, 400, FORBIDDEN],
  ['GET', `/v1/${LOC}/customJobs/1?$httpMethod=DELETE`, 400, FORBIDDEN],
  ['GET', `/v1/${LOC}/customJobs/1?httpMethod=DELETE`, 400, FORBIDDEN],
];

describe('classify: hostile and malformed requests are refused before any policy', () => {
  it('has at least 50 of them', () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(50);
  });

  it.each(
    HOSTILE.map(
      ([method, url, httpStatus, code]) =>
        [method, JSON.stringify(url.length > 120 ? `${url.slice(0, 120)}...` : url), httpStatus, code, url] as const,
    ),
  )('%s %s is refused with %i %s', (method, _title, httpStatus, code, url) => {
    const error = refusal(method, url);
    expect(error.code).toBe(code);
    expect(error.httpStatus).toBe(httpStatus);
    expect(error.status).toBe(httpStatus === 404 ? 'NOT_FOUND' : 'INVALID_ARGUMENT');
  });
});

describe('classify: messages', () => {
  it.each([
    ['POST', `${E}/1:predictt`, 'Unknown Vertex AI method "POST /v1/projects/my-proj/locations/us-central1/endpoints/1:predictt"'],
    ['GET', `/v1/${LOC}/secrets/x`, 'unknown collection "secrets"'],
    ['GET', '/v1/projects/my-proj/..', 'Path segment 4 ("..") is not allowed'],
    ['POST', `${E}/1%2F2:predict`, 'Percent-escape "%2F" (character "/") is not allowed'],
    ['POST', `${E}/%zz:predict`, 'Malformed percent-escape "%zz"'],
    ['POST', `${E}/1\\2:predict`, 'Backslashes are not allowed'],
    ['POST', '/v1/projects/My-Proj/locations/us-central1/endpoints/1:predict', 'Path segment 3 ("My-Proj") is not a valid project id'],
    ['POST', '/v1/projects/my-proj/locations/US/endpoints/1:predict', 'Path segment 5 ("US") is not a valid location'],
    ['POST', `${E}/1:predict:predict`, 'contains more than one ":"'],
    ['GET', `${E}/`, 'A trailing "/" is not allowed'],
    ['POST', `${E}/1:predict?k%65y=x`, 'Query parameter "k%65y" (read as "key") is not allowed'],
    ['POST', `${E}/1:predict?$alt=json;Access-Token=x`, 'Query parameter "Access-Token" (read as "access_token") is not allowed'],
    [
      'GET',
      `${E}/1:predict`,
      'HTTP method "GET" is not allowed on "/v1/projects/my-proj/locations/us-central1/endpoints/1:predict"; it answers to POST',
    ],
  ])('%s %s says %j', (method, url, fragment) => {
    expect(refusal(method, url).message).toContain(fragment);
  });

  it('echoes at most ~200 characters of the input', () => {
    const message = refusal('POST', `/v1/${'x'.repeat(1500)}:predict`).message;
    expect(message.length).toBeLessThan(400);
    expect(message).toContain('...');
  });

  it('never carries control characters or non-ASCII, even when the input does', () => {
    for (const url of [`${E}/1\u0000\r\n\u001b[31m:predict`, `/v2/\u0000\u2028\ud800é`, `${E}/é:predict`]) {
      const message = refusal('POST', url).message;
      // eslint-disable-next-line no-control-regex -- the test asserts that no control character reaches the message
      expect(message).not.toMatch(/[\u0000-\u001f\u007f-\uffff]/);
    }
  });
});

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

const FRAGMENTS = [
  'projects',
  'my-proj',
  'locations',
  'us-central1',
  'global',
  'endpoints',
  '1',
  'publishers',
  'google',
  'models',
  'gemini-2.5-flash',
  'customJobs',
  'pipelineJobs',
  'operations',
  'chat',
  'completions',
  ':predict',
  ':generateContent',
  ':cancel',
  ':wait',
  ':upload',
  ':',
  '.',
  '..',
  '%2e',
  '%2E%2E',
  '%2F',
  '%2f',
  '%5C',
  '%40',
  '%4',
  '%',
  '%00',
  '@',
  '@2',
  '~',
  ';',
  '\\',
  '\u0000',
  'é',
  '//',
  '/',
  '?',
  '#',
  '?key=x',
  '?alt=sse',
  '?$alt=json;enum-encoding=int',
  '&',
  '=',
  ' ',
  '\r\n',
];
const hostilePath = fc
  .tuple(
    fc.constantFrom('/v1/', '/v1beta1/', '/v1', '/', ''),
    fc.array(fc.tuple(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 6 })), fc.constantFrom('/', '/', '/', '')), {
      maxLength: 14,
    }),
  )
  .map(([prefix, parts]) => prefix + parts.map(([part, separator]) => part + separator).join(''));
const anyMethod = fc.constantFrom('GET', 'POST', 'DELETE', 'PATCH', 'PUT', 'HEAD', 'get', '');

function decodeURIComponentLenient(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

function checkOutcome(method: string, url: string): void {
  let op;
  try {
    op = classify(method, url);
  } catch (error) {
    expect(error).toBeInstanceOf(ProxyError);
    expect((error as ProxyError).httpStatus).toBeGreaterThanOrEqual(400);
    expect((error as ProxyError).httpStatus).toBeLessThan(500);
    // eslint-disable-next-line no-control-regex -- as above
    expect((error as ProxyError).message).not.toMatch(/[\u0000-\u001f\u007f-\uffff]/);
    return;
  }
  expect(op.resource).not.toContain('..');
  expect(op.resource).not.toContain('//');
  expect(op.resource).not.toContain('%');
  expect(op.resource).toMatch(/^[A-Za-z0-9._@~/-]+$/);
  expect(op.spec.httpMethod).toBe(method);
}

describe('classify: properties', () => {
  it('never throws anything but a 4xx ProxyError, and never yields a resource with "..", "//" or "%", for arbitrary strings', () => {
    fc.assert(fc.property(anyMethod, fc.string({ unit: 'binary', maxLength: 200 }), checkOutcome), { numRuns: 3000 });
    fc.assert(
      fc.property(
        anyMethod,
        fc.string({ unit: 'binary', maxLength: 200 }).map((s) => `/v1/${s}`),
        checkOutcome,
      ),
      { numRuns: 3000 },
    );
  });

  it('holds the same for paths assembled from path-like and hostile fragments', () => {
    fc.assert(fc.property(anyMethod, hostilePath, checkOutcome), { numRuns: 10000 });
  });

  it(
    'refuses every query in which URLSearchParams, or a split on ";", finds a name that normalizes to key, access_token, ' +
      'oauth_token or httpMethod',
    () => {
      const forbidden = new Set(['key', 'accesstoken', 'oauthtoken', 'httpmethod']);
      const normalize = (name: string): string => name.replace(/[^A-Za-z0-9]/g, '').toLowerCase();
      const piece = fc.oneof(
        fc.constantFrom(
          'key',
          'KEY',
          'k%65y',
          '%6B%65%79',
          'k%2565y',
          '$key',
          'access_token',
          'access%5Ftoken',
          'oauth_token',
          '$httpMethod',
          'alt',
          '$alt',
          'json',
          'sse',
          'enum-encoding',
          'int',
          'monkey',
          'keys',
          'ke',
          'y',
        ),
        fc.constantFrom('=', '&', ';', '%3B', '%3D', '%26', '+', '%', '$', '-', '_'),
        fc.string({ maxLength: 4 }),
      );
      fc.assert(
        fc.property(fc.array(piece, { maxLength: 10 }), (pieces) => {
          const query = pieces.join('');
          if (query.includes('#')) return;
          const expected =
            [...new URLSearchParams(query).keys()].some((name) => forbidden.has(normalize(name))) ||
            query.split(/[&;]/).some((pair) => forbidden.has(normalize(decodeURIComponentLenient(pair.split('=')[0] ?? ''))));
          let refused = false;
          try {
            classify('POST', `${E}/1:predict?${query}`);
          } catch (error) {
            expect(error).toBeInstanceOf(ProxyError);
            refused = (error as ProxyError).code === 'ERR_REQUEST_FORBIDDEN_PARAMETER';
          }
          if (expected) expect(refused).toBe(true);
        }),
        { numRuns: 5000 },
      );
    },
  );

  it('classifies every binding filled with arbitrary well-formed ids to that binding, with those ids in the resource', () => {
    const idChars = fc.constantFrom(...Array.from('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_@~.'));
    const resourceId = fc
      .tuple(fc.constantFrom(...Array.from('abcXYZ0189')), fc.array(idChars, { maxLength: 40 }))
      .map(([first, rest]) => first + rest.join(''))
      .filter((id) => !id.includes('..'));
    const lowerId = fc
      .tuple(fc.constantFrom(...Array.from('abcxyz')), fc.array(fc.constantFrom(...Array.from('abcxyz0189-')), { maxLength: 30 }))
      .map(([first, rest]) => first + rest.join(''));
    fc.assert(
      fc.property(
        fc.constantFrom(...GENERATED),
        lowerId,
        lowerId,
        resourceId,
        resourceId,
        fc.boolean(),
        (generated, project, location, id1, id2, encodeAt) => {
          const { binding, version } = generated;
          let ids = 0;
          const resource = binding.resource.replace(/\{([a-zA-Z]+)\}/g, (_, name: string) =>
            name === 'project' ? project : name === 'location' ? location : ids++ === 0 ? id1 : id2,
          );
          const wire = encodeAt ? resource.replaceAll('@', '%40') : resource;
          const url =
            `/${version}${wire === '' ? '' : '/'}${wire}${binding.suffix === undefined ? '' : `/${binding.suffix}`}` +
            (binding.verb === undefined ? '' : `:${binding.verb}`);
          const op = classify(binding.spec.httpMethod, url);
          expect(op.spec).toBe(binding.spec);
          expect(op.resource).toBe(resource);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('the /ui/ bindings the official client polls long-running operations through', () => {
  it.each([
    ['GET', '/ui/projects/p/locations/us-central1/operations/123', 'operations.get'],
    ['GET', '/ui/projects/p/locations/us-central1/endpoints/1/operations/123', 'endpoints.operations.get'],
    ['POST', '/ui/projects/p/locations/us-central1/customJobs/9/operations/123:wait', 'customJobs.operations.wait'],
  ])('%s %s classifies as %s with v1 semantics', (method, path, id) => {
    const operation = classify(method, path);
    expect(operation.spec.id).toBe(id);
    expect(operation.version).toBe('v1');
  });

  it.each([
    ['POST', '/ui/projects/p/locations/us-central1/endpoints/1:predict'],
    ['GET', '/ui/projects/p/locations/us-central1/customJobs/9'],
  ])('%s %s is refused: /ui/ serves operations only', (method, path) => {
    expect(() => classify(method, path)).toThrow(expect.objectContaining({ code: 'ERR_REQUEST_UNKNOWN_METHOD', httpStatus: 404 }));
  });
});
