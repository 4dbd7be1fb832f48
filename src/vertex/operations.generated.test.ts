import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { GENERATED_FILE, renderOperationsSource } from '../../scripts/gen-operations.js';
import { classify } from './classify.js';
import { deriveOperationTable } from './derive-operations.js';
import { OPERATION_BINDINGS } from './operation-table.js';
import { LRO_BINDINGS, RPCS } from './operations.generated.js';
import type { GeneratedRpc } from './proto-facts.js';

describe('operations.generated.ts', () => {
  it('is what `npm run gen:operations` makes from the installed @google-cloud/aiplatform protos', () => {
    // A package update that changes any HTTP rule fails here until the file is regenerated and the diff reviewed.
    expect(readFileSync(GENERATED_FILE, 'utf8')).toBe(renderOperationsSource());
  });

  it('holds every RPC of both versions, with bindings for all but the gRPC-only ones', () => {
    for (const version of ['v1', 'v1beta1'] as const) {
      const rpcs = RPCS.filter((rpc) => rpc.version === version);
      expect(rpcs.length).toBeGreaterThan(300);
      expect(
        rpcs
          .filter((rpc) => rpc.bindings.length === 0)
          .map((rpc) => rpc.rpc)
          .sort(),
      ).toEqual(['StreamDirectPredict', 'StreamDirectRawPredict', 'StreamingPredict', 'StreamingRawPredict'].sort());
    }
    expect(LRO_BINDINGS.length).toBeGreaterThan(200);
  });
});

describe('deriveOperationTable refuses what it cannot derive', () => {
  const rpc = (overrides: Partial<GeneratedRpc>): GeneratedRpc => ({
    version: 'v1',
    service: 'WidgetService',
    rpc: 'FrobWidget',
    streaming: false,
    longRunning: false,
    bindings: [{ method: 'POST', path: '/v1/{parent=projects/*/locations/*}/widgets' }],
    ...overrides,
  });

  it('an RPC with neither a standard verb nor a custom verb has no permission: an error naming it', () => {
    expect(() => deriveOperationTable([rpc({})], [])).toThrow(
      /WidgetService\.FrobWidget.*no permission can be derived for "widgets\.frobWidget"/,
    );
  });

  it('two RPCs under one operation id: an error asking for an override', () => {
    const two = [rpc({ rpc: 'CreateWidget' }), rpc({ rpc: 'CreateWidgetFast' })];
    expect(() => deriveOperationTable(two, [])).toThrow(/operation id "widgets\.create" is both/);
  });

  it('a template with a ** wildcard is refused', () => {
    expect(() =>
      deriveOperationTable([rpc({ rpc: 'GetWidget', bindings: [{ method: 'GET', path: '/v1/{name=projects/**}' }] })], []),
    ).toThrow(/unsupported template/);
  });

  it('the real table uses every exception it lists', () => {
    expect(deriveOperationTable(RPCS, LRO_BINDINGS).unusedExceptions).toEqual([]);
  });

  it('derives a well-formed RPC mechanically', () => {
    const table = deriveOperationTable(
      [rpc({ rpc: 'GetWidget', bindings: [{ method: 'GET', path: '/v1/{name=projects/*/locations/*/widgets/*}' }] })],
      [],
    );
    expect(table.specs.map((spec) => [spec.id, spec.permission, spec.groups])).toEqual([
      ['widgets.get', 'aiplatform.widgets.get', ['read']],
    ]);
  });
});

// ---------------------------------------------------------------------------
// Every RPC of both versions, classified from a sample path of each binding
// ---------------------------------------------------------------------------

/**
 * Hand-written: the RPCs whose permission is not the mechanical one, with the
 * permission (see the comments in derive-operations.ts for the sources).
 */
const EXCEPTIONS: Readonly<Record<string, string>> = {
  'EndpointService.DeployModel': 'aiplatform.endpoints.deploy',
  'EndpointService.UndeployModel': 'aiplatform.endpoints.undeploy',
  'EndpointService.MutateDeployedModel': 'aiplatform.endpoints.update',
  'EndpointService.UpdateEndpointLongRunning': 'aiplatform.endpoints.update',
  'PipelineService.BatchDeletePipelineJobs': 'aiplatform.pipelineJobs.delete',
  'PipelineService.BatchCancelPipelineJobs': 'aiplatform.pipelineJobs.cancel',
  'MatchService.FindNeighbors': 'aiplatform.indexEndpoints.queryVectors',
  'MatchService.ReadIndexDatapoints': 'aiplatform.indexEndpoints.queryVectors',
  'IndexEndpointService.DeployIndex': 'aiplatform.indexEndpoints.deploy',
  'IndexEndpointService.UndeployIndex': 'aiplatform.indexEndpoints.undeploy',
  'IndexEndpointService.MutateDeployedIndex': 'aiplatform.indexEndpoints.update',
  'IndexService.UpsertDatapoints': 'aiplatform.indexes.update',
  'IndexService.RemoveDatapoints': 'aiplatform.indexes.update',
  'FeatureOnlineStoreService.StreamingFetchFeatureValues': 'aiplatform.featureViews.fetchFeatureValues',
  'VertexRagService.RetrieveContexts': 'aiplatform.ragCorpora.query',
  'VertexRagService.AskContexts': 'aiplatform.ragCorpora.query',
  'VertexRagService.AsyncRetrieveContexts': 'aiplatform.ragCorpora.query',
  'VertexRagService.AugmentPrompt': 'aiplatform.ragCorpora.query',
  'VertexRagService.CorroborateContent': 'aiplatform.ragCorpora.query',
  'VertexRagDataService.GetRagEngineConfig': 'aiplatform.ragEngineConfigs.get',
  'VertexRagDataService.UpdateRagEngineConfig': 'aiplatform.ragEngineConfigs.update',
  'ModelGardenService.Deploy': 'aiplatform.endpoints.deploy',
  'ModelGardenService.DeployPublisherModel': 'aiplatform.endpoints.deploy',
  'FeaturestoreService.SearchFeatures': 'aiplatform.features.list',
  'ModelService.ListModelVersions': 'aiplatform.models.list',
  'ModelService.ListModelVersionCheckpoints': 'aiplatform.models.get',
  'ModelService.MergeVersionAliases': 'aiplatform.models.update',
  'ModelService.DeleteModelVersion': 'aiplatform.models.delete',
};

/** URL collections whose IAM name differs, by parent/child (hand-written copy of Google's names). */
const ALIASES: Readonly<Record<string, string>> = {
  'publishers/models': 'publisherModels',
  'tensorboards/experiments': 'tensorboardExperiments',
  'experiments/runs': 'tensorboardRuns',
  'runs/timeSeries': 'tensorboardTimeSeries',
  'models/evaluations': 'modelEvaluations',
  'evaluations/slices': 'modelEvaluationSlices',
  'featureGroups/features': 'featureGroupFeatures',
};

/** The mechanical rule, restated independently of the implementation: what a reader of the issue would compute by hand. */
function expectedPermission(fact: GeneratedRpc, template: string): string {
  const exception = EXCEPTIONS[`${fact.service}.${fact.rpc}`];
  if (exception !== undefined) return exception;
  const rest = template.replace(/^\/v1(beta1)?/, '');
  const verbMatch = /:([a-zA-Z]+)$/.exec(rest);
  const verb = verbMatch?.[1];
  const path = (verbMatch === null ? rest : rest.slice(0, verbMatch.index))
    .replace(/\{[a-z_.]+=([^}]*)\}/g, '$1')
    .replace(/\{[a-z_.]+\}/g, '*');
  const segments = path.split('/').filter((s) => s !== '' && s !== 'chat' && s !== 'completions');
  const literals = segments.filter((s) => s !== '*');
  const under = literals[0] === 'projects' && literals[1] === 'locations' ? literals.slice(2) : literals;
  const dataPlane = fact.service === 'PredictionService' || fact.service === 'LlmUtilityService';
  const last = under.at(-1);
  const collection = last === undefined ? undefined : (ALIASES[`${under.at(-2) ?? ''}/${last}`] ?? last);
  if (dataPlane && (collection === 'endpoints' || collection === 'publisherModels')) {
    return fact.rpc === 'Explain' ? 'aiplatform.endpoints.explain' : 'aiplatform.endpoints.predict';
  }
  if (collection === undefined) return `aiplatform.locations.${verb ?? '?'}`;
  const standard = /^(Create|Get|List|Update|Patch|Delete)/.exec(fact.rpc)?.[1];
  const permissionVerb = verb ?? (standard === 'Patch' ? 'update' : standard?.toLowerCase());
  return `aiplatform.${collection}.${permissionVerb ?? '?'}`;
}

function samplePath(template: string): string {
  return template
    .replace(/\{[a-z_.]+=([^}]*)\}/g, '$1')
    .replace(/\{[a-z_.]+\}/g, '*')
    .replace(/projects\/\*/g, 'projects/my-proj')
    .replace(/locations\/\*/g, 'locations/us-central1')
    .replace(/\*/g, 'id-1');
}

const CASES = RPCS.flatMap((fact) =>
  fact.bindings.map((binding) => [fact.version, `${fact.service}.${fact.rpc}`, binding.method, binding.path, fact] as const),
);

describe('every RPC of v1 and v1beta1 classifies to its permission', () => {
  it.each(CASES)('%s %s: %s %s', (version, _name, method, template, fact) => {
    const op = classify(method, samplePath(template));
    expect(op.version).toBe(version);
    expect(op.spec.rpc).toBe(fact.rpc);
    expect(op.methodName).toBe(`google.cloud.aiplatform.${version}.${fact.service}.${fact.rpc}`);
    expect(op.spec.permission).toBe(expectedPermission(fact, template));
    expect(op.spec.streaming).toBe(fact.streaming);
  });

  it('every exception of the hand-written list is an RPC of the protos', () => {
    const names = new Set(RPCS.map((fact) => `${fact.service}.${fact.rpc}`));
    for (const name of Object.keys(EXCEPTIONS)) expect([name, names.has(name)]).toEqual([name, true]);
  });

  it.each(LRO_BINDINGS.map((binding) => [binding.version, binding.rpc, binding.method, binding.path] as const))(
    '%s Operations.%s: %s %s classifies to google.longrunning.Operations',
    (_version, rpc, method, template) => {
      const op = classify(method, samplePath(template));
      expect(op.methodName).toBe(`google.longrunning.Operations.${rpc}`);
      const parent = /\/([a-zA-Z]+)(?:\/\*)?\}?\/operations/.exec(template.replace(/\{[a-z_.]+=([^}]*)\}/g, '$1'))?.[1];
      if (rpc === 'CancelOperation' || rpc === 'DeleteOperation')
        expect(op.spec.permission).toBe(`aiplatform.operations.${rpc === 'CancelOperation' ? 'cancel' : 'delete'}`);
      else if (parent === undefined || parent === 'locations') expect(op.spec.permission).toMatch(/^aiplatform\.operations\.(get|list)$/);
      else expect(op.spec.permission).toMatch(/^aiplatform\.[a-zA-Z]+\.get$/);
      if (parent === 'ragEngineConfig' && rpc === 'GetOperation') expect(op.spec.permission).toBe('aiplatform.ragEngineConfigs.get');
    },
  );

  it('binds every binding of the table to some generated fact (nothing hand-added)', () => {
    const generatedTemplates = RPCS.flatMap((fact) => fact.bindings.length).reduce((a, b) => a + b, 0) + LRO_BINDINGS.length;
    const tableBindings = OPERATION_BINDINGS.reduce((sum, binding) => sum + binding.versions.length, 0);
    expect(tableBindings).toBe(generatedTemplates);
  });
});
