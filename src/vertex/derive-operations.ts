/**
 * From the generated proto facts (`operations.generated.ts`) to the operation
 * table: for every REST binding of every Vertex AI RPC, the operation id, the
 * IAM permission, the groups and the flags. Everything the protos say is taken
 * from them; what they do not say is written here, and only here:
 *
 * - **Permissions.** Mechanical rule: `aiplatform.{collection}.{verb}` where
 *   `collection` is the collection the path names (the one the last id belongs
 *   to, or the collection a create/list/custom verb is called on) and `verb` is
 *   the custom verb of the path (`:cancel` → `cancel`) or else the RPC's
 *   standard verb (Create→create, Get→get, List→list, Update/Patch→update,
 *   Delete→delete). {@link PERMISSION_EXCEPTIONS} holds the methods where
 *   Google documents something else. A method the rule cannot derive and no
 *   exception covers is an error (the generator and the module load refuse it).
 * - **Groups** ({@link FAMILY_GROUPS}, {@link DATA_PLANE_VERBS}): policy names for sets of methods.
 * - **Long-running operations**: reading an LRO nested under a resource is
 *   checked as the parent's `.get`.
 * - **Resource suffixes**: path tails that are not part of a resource name (`chat/completions`).
 *
 * Permissions reference: https://cloud.google.com/vertex-ai/docs/general/access-control
 * (roles and their permissions) and https://cloud.google.com/vertex-ai/docs/general/iam-permissions
 * (which permission each method checks, on which resource).
 *
 * @module
 */
import type { ApiVersion, HttpMethod, OperationGroup, OperationSpec, PermissionType } from './operation-types.js';
import type { GeneratedLroBinding, GeneratedRpc } from './proto-facts.js';

/**
 * Where an operation lives in the URL, after `/{version}/`. `resource` is the
 * resource-name template (what `Operation.resource` reports): literal segments
 * and `{param}` segments. `{project}` and `{location}` are validated as such;
 * every other `{param}` is a resource id. `''` is the version root
 * (`/v1beta1:evaluateInstances`).
 */
export interface OperationBinding {
  readonly spec: OperationSpec;
  readonly resource: string;
  /** The custom verb after the last segment (`predict` in `…/endpoints/E:predict`). */
  readonly verb?: string;
  /** Literal segments after the resource name; only `chat/completions`. */
  readonly suffix?: string;
  /** The API versions that have this binding (a subset of `spec.versions`). */
  readonly versions: readonly ApiVersion[];
  /**
   * Set when the path is not under `projects/{project}/locations/{location}`
   * (Vertex AI express mode, API-key forms): the proxy refuses it, and this is
   * the form to use instead (a path template after `/{version}/`), or `null`
   * when the method has none.
   */
  readonly scopedForm?: string | null;
}

export interface OperationTable {
  readonly specs: readonly OperationSpec[];
  readonly bindings: readonly OperationBinding[];
  /** RPCs with no REST binding at all (gRPC only), as `version Service.Rpc`. */
  readonly grpcOnly: readonly string[];
  /** Ids in the exceptions table that no RPC has (stale after a package update; the generator refuses them). */
  readonly unusedExceptions: readonly string[];
}

const PERMISSION_REFERENCE = 'https://cloud.google.com/vertex-ai/docs/general/iam-permissions';

// ---------------------------------------------------------------------------
// Hand-written: what the protos do not say
// ---------------------------------------------------------------------------

/**
 * A collection whose IAM name is not its URL segment, keyed by `parent/child`
 * URL segments. The IAM names are the ones of Google's roles reference
 * (https://cloud.google.com/vertex-ai/docs/general/access-control), e.g.
 * `aiplatform.tensorboardExperiments.get`, `aiplatform.modelEvaluations.list`.
 */
const COLLECTION_ALIASES: Readonly<Record<string, string>> = {
  'publishers/models': 'publisherModels',
  'tensorboards/experiments': 'tensorboardExperiments',
  'experiments/runs': 'tensorboardRuns',
  'runs/timeSeries': 'tensorboardTimeSeries',
  'models/evaluations': 'modelEvaluations',
  'evaluations/slices': 'modelEvaluationSlices',
  // Features of a feature group and of a legacy featurestore entity type are different RPCs of different services; the ids must differ.
  'featureGroups/features': 'featureGroupFeatures',
};

/** Path tails that are literal method names, not part of the resource (OpenAI-compatible chat). */
const RESOURCE_SUFFIXES: readonly string[] = ['chat/completions'];

/** Online prediction and generation: the methods of these services on endpoints and publisher models. */
const DATA_PLANE_SERVICES: ReadonlySet<string> = new Set(['PredictionService', 'LlmUtilityService']);

/** The group of each data-plane verb; any other data-plane verb is `predict`. */
const DATA_PLANE_VERBS: Readonly<Record<string, OperationGroup>> = {
  generateContent: 'generate',
  streamGenerateContent: 'generate',
  countTokens: 'generate',
  computeTokens: 'generate',
  chatCompletions: 'generate',
  embedContent: 'embed',
};

/**
 * Methods whose permission is not the mechanical one. Each line says where
 * it comes from: [D] documented in the IAM permissions reference
 * (https://cloud.google.com/vertex-ai/docs/general/iam-permissions), [O]
 * observed in Vertex AI's own 403 errors and audit logs, [I] inferred (the
 * reference has no row; the nearest documented permission of the same
 * resource is used, so that a grant of it covers the method).
 */
const PERMISSION_EXCEPTIONS: Readonly<Record<string, string>> = {
  // Endpoints (EndpointService): deploy and undeploy have their own permissions [D].
  'endpoints.deployModel': 'aiplatform.endpoints.deploy',
  'endpoints.undeployModel': 'aiplatform.endpoints.undeploy',
  // [I]: no row; it changes a deployed model's resources, which is an endpoint update.
  'endpoints.mutateDeployedModel': 'aiplatform.endpoints.update',
  // [I]: UpdateEndpointLongRunning is UpdateEndpoint as an LRO.
  'endpoints.updateEndpointLongRunning': 'aiplatform.endpoints.update',
  // [I]: batch forms of documented single-resource verbs.
  'pipelineJobs.batchDelete': 'aiplatform.pipelineJobs.delete',
  'pipelineJobs.batchCancel': 'aiplatform.pipelineJobs.cancel',
  // Vector Search: querying a deployed index is `aiplatform.indexEndpoints.queryVectors` [D].
  'indexEndpoints.findNeighbors': 'aiplatform.indexEndpoints.queryVectors',
  'indexEndpoints.readIndexDatapoints': 'aiplatform.indexEndpoints.queryVectors',
  'indexEndpoints.deployIndex': 'aiplatform.indexEndpoints.deploy',
  'indexEndpoints.undeployIndex': 'aiplatform.indexEndpoints.undeploy',
  'indexEndpoints.mutateDeployedIndex': 'aiplatform.indexEndpoints.update',
  'indexes.upsertDatapoints': 'aiplatform.indexes.update',
  'indexes.removeDatapoints': 'aiplatform.indexes.update',
  // Feature Store online serving is checked on the feature view as fetchFeatureValues [D], the streaming form too [I].
  'featureViews.streamingFetchFeatureValues': 'aiplatform.featureViews.fetchFeatureValues',
  // RAG Engine: retrieval and grounding are called on the location; they read the corpora named in
  // the body, and `aiplatform.ragCorpora.query` is the permission roles grant for querying a corpus [I].
  'locations.retrieveContexts': 'aiplatform.ragCorpora.query',
  'locations.askContexts': 'aiplatform.ragCorpora.query',
  'locations.asyncRetrieveContexts': 'aiplatform.ragCorpora.query',
  'locations.augmentPrompt': 'aiplatform.ragCorpora.query',
  'locations.corroborateContent': 'aiplatform.ragCorpora.query',
  'ragEngineConfig.get': 'aiplatform.ragEngineConfigs.get',
  'ragEngineConfig.update': 'aiplatform.ragEngineConfigs.update',
  // Model Garden one-click deploy creates an endpoint and deploys to it [I].
  'locations.deploy': 'aiplatform.endpoints.deploy',
  'locations.deployPublisherModel': 'aiplatform.endpoints.deploy',
  // Feature Store (legacy) search is a list of features [I].
  'featurestores.searchFeatures': 'aiplatform.features.list',
  // Reading a model's versions and checkpoints is a model read [I].
  'models.listVersions': 'aiplatform.models.list',
  'models.listCheckpoints': 'aiplatform.models.get',
  'models.mergeVersionAliases': 'aiplatform.models.update',
  'models.deleteVersion': 'aiplatform.models.delete',
};

/**
 * The family group of a top-level collection (the first one after
 * `locations/{location}`, or the first segment of an express-mode path):
 * every method on it and below it is in the group, reads included.
 */
export const FAMILY_GROUPS: Readonly<Record<string, OperationGroup>> = {
  cachedContents: 'cache',
  tuningJobs: 'tuning',
  indexes: 'vectorSearch',
  indexEndpoints: 'vectorSearch',
  ragCorpora: 'rag',
  ragEngineConfig: 'rag',
  reasoningEngines: 'agents',
  featureOnlineStores: 'featureStore',
  featureGroups: 'featureStore',
  featurestores: 'featureStore',
  datasets: 'datasets',
  evaluationTasks: 'evaluate',
  onlineEvaluators: 'evaluate',
  customJobs: 'training',
  trainingPipelines: 'training',
  pipelineJobs: 'training',
  hyperparameterTuningJobs: 'training',
};

/** Custom verbs on the location itself, and their group. */
const LOCATION_VERB_GROUPS: Readonly<Record<string, OperationGroup>> = {
  retrieveContexts: 'rag',
  asyncRetrieveContexts: 'rag',
  askContexts: 'rag',
  augmentPrompt: 'rag',
  corroborateContent: 'rag',
  evaluateInstances: 'evaluate',
  evaluateDataset: 'evaluate',
  generateInstanceRubrics: 'evaluate',
  deploy: 'deploy',
  deployPublisherModel: 'deploy',
};

/** Model evaluations are evaluation results, wherever the model is. */
const EVALUATE_COLLECTIONS: ReadonlySet<string> = new Set(['modelEvaluations', 'modelEvaluationSlices']);

/** `deploy`: what puts a model behind an endpoint or takes it away. */
const DEPLOY_IDS: ReadonlySet<string> = new Set([
  'endpoints.create',
  'endpoints.update',
  'endpoints.updateEndpointLongRunning',
  'endpoints.delete',
  'endpoints.deployModel',
  'endpoints.undeployModel',
  'endpoints.mutateDeployedModel',
  'models.upload',
  'models.delete',
  'models.deleteVersion',
]);

/** Reads of serving data (not of configuration): audited as DATA_READ like prediction. */
const DATA_READ_IDS: ReadonlySet<string> = new Set([
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

/** Operation ids that two different RPCs would share: the later-found one keeps its RPC name as the verb. */
const ID_OVERRIDES: Readonly<Record<string, string>> = {
  // POST …/endpoints/E:update (LRO) and PATCH …/endpoints/E are both "update".
  'EndpointService.UpdateEndpointLongRunning': 'endpoints.updateEndpointLongRunning',
  // POST …/evaluations/E/slices:batchImport and …/evaluations/E/slices/S:batchImport.
  'ModelService.BatchImportEvaluatedAnnotations': 'modelEvaluationSlices.batchImportEvaluatedAnnotations',
};

// ---------------------------------------------------------------------------
// Path templates
// ---------------------------------------------------------------------------

interface Segment {
  readonly literal?: string;
  /** Param name for an id segment. */
  readonly param?: string;
}

interface ParsedPath {
  readonly segments: readonly Segment[];
  readonly verb?: string;
  readonly suffix?: string;
}

const IRREGULAR_SINGULARS: Readonly<Record<string, string>> = { ragCorpora: 'ragCorpus', timeSeries: 'timeSeries', indexes: 'index' };

function singular(collection: string): string {
  const irregular = IRREGULAR_SINGULARS[collection];
  if (irregular !== undefined) return irregular;
  if (collection.endsWith('ies')) return `${collection.slice(0, -3)}y`;
  if (collection.endsWith('s')) return collection.slice(0, -1);
  return collection;
}

function paramName(previous: string | undefined, where: string): string {
  if (previous === undefined) throw new Error(`${where}: an id without a collection before it`);
  if (previous === 'projects') return 'project';
  if (previous === 'locations') return 'location';
  return singular(previous);
}

/** `/v1/{name=projects/*\/locations/*\/endpoints/*}:predict` → segments + verb. */
export function parsePathTemplate(template: string, version: ApiVersion): ParsedPath {
  const where = `${version} ${template}`;
  const prefix = `/${version}`;
  if (!template.startsWith(prefix)) throw new Error(`${where}: does not start with ${prefix}`);
  let rest = template.slice(prefix.length);
  // The verb is what follows the last ':' outside a {variable}.
  let depth = 0;
  let colon = -1;
  for (let i = 0; i < rest.length; i++) {
    const ch = rest[i];
    if (ch === '{') depth++;
    else if (ch === '}') depth--;
    else if (ch === ':' && depth === 0) colon = i;
  }
  const verb = colon === -1 ? undefined : rest.slice(colon + 1);
  if (colon !== -1) rest = rest.slice(0, colon);
  if (verb !== undefined && !/^[a-zA-Z]+$/.test(verb)) throw new Error(`${where}: unexpected verb "${verb}"`);
  // Variables expand to their pattern ({name=a/*/b/*}) or one segment ({name}).
  const expanded = rest.replace(/\{[a-z_.]+(?:=([^}]*))?\}/g, (_, pattern: string | undefined) => pattern ?? '*');
  if (expanded.includes('{') || expanded.includes('**')) throw new Error(`${where}: unsupported template`);
  const raw = expanded === '' ? [] : expanded.slice(1).split('/');
  if (expanded !== '' && !expanded.startsWith('/')) throw new Error(`${where}: unexpected template`);
  let suffix: string | undefined;
  for (const candidate of RESOURCE_SUFFIXES) {
    if (raw.join('/').endsWith(`/${candidate}`)) {
      suffix = candidate;
      raw.splice(raw.length - candidate.split('/').length);
    }
  }
  const segments: Segment[] = [];
  let previous: string | undefined;
  for (const text of raw) {
    if (text === '*') segments.push({ param: paramName(previous, where) });
    else if (/^[a-zA-Z]+$/.test(text)) {
      segments.push({ literal: text });
      previous = text;
    } else throw new Error(`${where}: unexpected segment "${text}"`);
  }
  return { segments, ...(verb === undefined ? {} : { verb }), ...(suffix === undefined ? {} : { suffix }) };
}

function resourceOf(parsed: ParsedPath): string {
  return parsed.segments.map((segment) => segment.literal ?? `{${segment.param ?? ''}}`).join('/');
}

const SCOPED_PREFIX = 'projects/{project}/locations/{location}';

function isScoped(resource: string): boolean {
  return resource === SCOPED_PREFIX || resource.startsWith(`${SCOPED_PREFIX}/`);
}

/** What a path names: the collection (IAM name), whether an id of it is named, and the top-level collection for the family. */
interface PathTarget {
  /** `undefined`: the location (or version root) itself. */
  readonly collection?: string;
  /** The last literal is followed by an id (item method) rather than being the last segment (collection method or singleton). */
  readonly item: boolean;
  /** First collection under the location (or first segment of a location-less path). */
  readonly family?: string;
}

function targetOf(segments: readonly Segment[]): PathTarget {
  const literals: { text: string; item: boolean }[] = [];
  for (let i = 0; i < segments.length; i++) {
    const literal = segments[i]?.literal;
    if (literal !== undefined) literals.push({ text: literal, item: segments[i + 1]?.param !== undefined });
  }
  const scoped = literals[0]?.text === 'projects' && literals[1]?.text === 'locations';
  const under = scoped ? literals.slice(2) : literals[0]?.text === 'projects' ? literals.slice(1) : literals;
  const last = under[under.length - 1];
  if (last === undefined) return { item: false };
  const parent = under[under.length - 2];
  const collection = (parent === undefined ? undefined : COLLECTION_ALIASES[`${parent.text}/${last.text}`]) ?? last.text;
  return { collection, item: last.item, ...(under[0] === undefined ? {} : { family: under[0].text }) };
}

const LRO_NAMES: Readonly<Record<string, 'get' | 'list' | 'wait' | 'cancel' | 'delete'>> = {
  GetOperation: 'get',
  ListOperations: 'list',
  WaitOperation: 'wait',
  CancelOperation: 'cancel',
  DeleteOperation: 'delete',
};

const STANDARD_VERB = /^(Create|Get|List|Update|Patch|Delete)[A-Z]/;

function standardVerb(rpc: string): string | undefined {
  const verb = STANDARD_VERB.exec(rpc)?.[1];
  if (verb === undefined) return undefined;
  return verb === 'Patch' ? 'update' : verb.toLowerCase();
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

// ---------------------------------------------------------------------------
// Derivation
// ---------------------------------------------------------------------------

interface Draft {
  id: string;
  service: string;
  serviceByVersion: Partial<Record<ApiVersion, string>>;
  protoPackage?: string;
  rpc: string;
  httpMethod: HttpMethod;
  permission: string;
  permissionType: PermissionType;
  groups: OperationGroup[];
  streaming: boolean;
  longRunning: boolean;
  versions: Set<ApiVersion>;
  bindings: Map<string, { resource: string; verb?: string; suffix?: string; versions: Set<ApiVersion>; scoped: boolean }>;
}

function permissionTypeOf(id: string, groups: readonly OperationGroup[]): PermissionType {
  if (groups.some((group) => group === 'predict' || group === 'generate' || group === 'embed') || DATA_READ_IDS.has(id)) return 'DATA_READ';
  return groups.includes('read') ? 'ADMIN_READ' : 'ADMIN_WRITE';
}

/**
 * Builds the table. Throws one Error listing every problem: a permission that
 * can be neither derived nor found in the exceptions, two RPCs under one id,
 * an id with different HTTP methods or permissions across versions, an
 * exception or alias that no longer matches anything.
 */
export function deriveOperationTable(rpcs: readonly GeneratedRpc[], lroBindings: readonly GeneratedLroBinding[]): OperationTable {
  const problems: string[] = [];
  const drafts = new Map<string, Draft>();
  const owners = new Map<string, string>();
  const grpcOnly: string[] = [];
  const usedExceptions = new Set<string>();

  const add = (
    version: ApiVersion,
    key: { service: string; rpc: string; protoPackage?: string },
    id: string,
    httpMethod: HttpMethod,
    resource: string,
    parsed: ParsedPath,
    make: () => Omit<Draft, 'versions' | 'bindings' | 'serviceByVersion' | 'id' | 'httpMethod' | 'service' | 'rpc'>,
  ): void => {
    const owner = `${version} ${key.service}.${key.rpc}`;
    const previousOwner = owners.get(`${version} ${id}`);
    if (previousOwner !== undefined && previousOwner !== owner) {
      problems.push(`operation id "${id}" is both ${previousOwner} and ${owner}: add an ID_OVERRIDES entry`);
      return;
    }
    owners.set(`${version} ${id}`, owner);
    let draft = drafts.get(id);
    const made = make();
    if (draft === undefined) {
      draft = {
        id,
        service: key.service,
        serviceByVersion: {},
        rpc: key.rpc,
        httpMethod,
        ...made,
        versions: new Set(),
        bindings: new Map(),
      };
      drafts.set(id, draft);
    } else {
      if (draft.rpc !== key.rpc) problems.push(`operation id "${id}" is ${draft.rpc} in one version and ${key.rpc} in another`);
      if (draft.httpMethod !== httpMethod) problems.push(`operation id "${id}" answers to ${draft.httpMethod} and ${httpMethod}`);
      if (draft.permission !== made.permission)
        problems.push(`operation id "${id}" needs ${draft.permission} in one version and ${made.permission} in another`);
      if (draft.service !== key.service) draft.serviceByVersion[version] = key.service;
      draft.streaming ||= made.streaming;
      draft.longRunning ||= made.longRunning;
    }
    draft.versions.add(version);
    const bindingKey = `${resource}|${parsed.verb ?? ''}|${parsed.suffix ?? ''}`;
    const binding = draft.bindings.get(bindingKey) ?? {
      resource,
      ...(parsed.verb === undefined ? {} : { verb: parsed.verb }),
      ...(parsed.suffix === undefined ? {} : { suffix: parsed.suffix }),
      versions: new Set<ApiVersion>(),
      scoped: isScoped(resource),
    };
    binding.versions.add(version);
    draft.bindings.set(bindingKey, binding);
  };

  for (const fact of rpcs) {
    if (fact.bindings.length === 0) {
      grpcOnly.push(`${fact.version} ${fact.service}.${fact.rpc}`);
      continue;
    }
    for (const http of fact.bindings) {
      const where = `${fact.version} ${fact.service}.${fact.rpc} (${http.method} ${http.path})`;
      if (http.method === 'PUT') {
        problems.push(`${where}: PUT is not supported`);
        continue;
      }
      let parsed: ParsedPath;
      try {
        parsed = parsePathTemplate(http.path, fact.version);
      } catch (error) {
        problems.push((error as Error).message);
        continue;
      }
      const resource = resourceOf(parsed);
      const target = targetOf(parsed.segments);
      const std = standardVerb(fact.rpc);
      const idVerb = parsed.verb ?? std ?? lowerFirst(fact.rpc);
      const idCollection = target.collection ?? 'locations';
      const id = ID_OVERRIDES[`${fact.service}.${fact.rpc}`] ?? `${idCollection}.${idVerb}`;
      const dataPlane = DATA_PLANE_SERVICES.has(fact.service) && (idCollection === 'endpoints' || idCollection === 'publisherModels');
      add(fact.version, fact, id, http.method, resource, parsed, () => {
        let permission = PERMISSION_EXCEPTIONS[id];
        if (permission !== undefined) usedExceptions.add(id);
        else if (dataPlane) {
          // Every prediction and generation method is checked as `aiplatform.endpoints.predict`
          // on the endpoint or publisher model, Explain excepted [D][O] (PERMISSION_REFERENCE).
          permission = idVerb === 'explain' ? 'aiplatform.endpoints.explain' : 'aiplatform.endpoints.predict';
        } else {
          // Get on a collection segment is a singleton (`…/cacheConfig`): its IAM name is not the segment; it needs an exception.
          const permVerb = parsed.verb ?? std;
          if (target.collection === undefined) {
            // A custom verb on the location itself is checked on the location [D]
            // (`aiplatform.locations.evaluateInstances` on `projects/P/locations/L`).
            if (parsed.verb !== undefined) permission = `aiplatform.locations.${parsed.verb}`;
          } else if (permVerb !== undefined && (target.item || parsed.verb !== undefined || std === 'create' || std === 'list')) {
            permission = `aiplatform.${target.collection}.${permVerb}`;
          }
        }
        if (permission === undefined) {
          problems.push(
            `${where}: no permission can be derived for "${id}"; add it to PERMISSION_EXCEPTIONS with the permission ` +
              `${PERMISSION_REFERENCE} documents`,
          );
          permission = '';
        }
        const groups = new Set<OperationGroup>();
        if (dataPlane) groups.add(DATA_PLANE_VERBS[idVerb] ?? 'predict');
        const family = target.family === undefined ? undefined : FAMILY_GROUPS[target.family];
        if (family !== undefined) groups.add(family);
        if (target.collection === undefined && parsed.verb !== undefined) {
          const locationGroup = LOCATION_VERB_GROUPS[parsed.verb];
          if (locationGroup !== undefined) groups.add(locationGroup);
        }
        if (EVALUATE_COLLECTIONS.has(idCollection)) groups.add('evaluate');
        if (DEPLOY_IDS.has(id)) groups.add('deploy');
        // A GET that starts a long-running operation (RestoreDatasetVersion) changes something: not a read.
        if (http.method === 'GET' && !fact.longRunning) groups.add('read');
        if (groups.size === 0) groups.add('admin');
        const groupList = [...groups];
        return {
          permission,
          permissionType: permissionTypeOf(id, groupList),
          groups: groupList,
          streaming: fact.streaming,
          // A created job is itself the handle the caller polls.
          longRunning: fact.longRunning || (std === 'create' && /Jobs$|^trainingPipelines$/.test(idCollection)),
        };
      });
    }
  }

  // google.longrunning.Operations, nested under their parent or on the location.
  for (const lro of lroBindings) {
    const where = `${lro.version} Operations.${lro.rpc} (${lro.method} ${lro.path})`;
    let parsed: ParsedPath;
    try {
      parsed = parsePathTemplate(lro.path, lro.version);
    } catch (error) {
      problems.push((error as Error).message);
      continue;
    }
    const resource = resourceOf(parsed);
    const operationsAt = parsed.segments.findLastIndex((segment) => segment.literal === 'operations');
    if (operationsAt === -1) {
      problems.push(`${where}: no operations segment`);
      continue;
    }
    const parent = targetOf(parsed.segments.slice(0, operationsAt));
    const name = LRO_NAMES[lro.rpc];
    if (name === undefined) {
      problems.push(`${where}: unknown Operations RPC`);
      continue;
    }
    const id = parent.collection === undefined ? `operations.${name}` : `${parent.collection}.operations.${name}`;
    const read = name === 'get' || name === 'list' || name === 'wait';
    add(lro.version, { service: 'Operations', rpc: lro.rpc, protoPackage: 'google.longrunning' }, id, lro.method, resource, parsed, () => {
      // Reading an LRO nested under a resource is checked as the parent's `.get` [D] (PERMISSION_REFERENCE:
      // "aiplatform.customJobs.get (to call GET on the returned long-running operation)"); waiting is a read too.
      // Cancel and delete [I]: the operations permissions Vertex AI roles carry.
      const permission = !read
        ? `aiplatform.operations.${name}`
        : parent.collection === undefined
          ? name === 'list'
            ? 'aiplatform.operations.list'
            : 'aiplatform.operations.get'
          : // The parent's own get permission, where the table has it (a singleton's IAM name is not its segment).
            (drafts.get(`${parent.collection}.get`)?.permission ?? `aiplatform.${parent.collection}.get`);
      const groups = new Set<OperationGroup>();
      const family = parent.family === undefined ? undefined : FAMILY_GROUPS[parent.family];
      if (family !== undefined) groups.add(family);
      if (parent.collection !== undefined && EVALUATE_COLLECTIONS.has(parent.collection)) groups.add('evaluate');
      if (read) groups.add('read');
      if (groups.size === 0) groups.add('admin');
      const groupList = [...groups];
      return {
        protoPackage: 'google.longrunning',
        permission,
        permissionType: read ? 'ADMIN_READ' : 'ADMIN_WRITE',
        groups: groupList,
        streaming: false,
        longRunning: false,
      };
    });
  }

  if (problems.length > 0) throw new Error(`operation table: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);

  const specs: OperationSpec[] = [];
  const bindings: OperationBinding[] = [];
  const ordered = [...drafts.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const draft of ordered) {
    const versions = (['v1', 'v1beta1'] as const).filter((version) => draft.versions.has(version));
    const spec: OperationSpec = Object.freeze({
      id: draft.id,
      service: draft.service,
      ...(Object.keys(draft.serviceByVersion).length === 0 ? {} : { serviceByVersion: Object.freeze({ ...draft.serviceByVersion }) }),
      ...(draft.protoPackage === undefined ? {} : { protoPackage: draft.protoPackage }),
      rpc: draft.rpc,
      httpMethod: draft.httpMethod,
      permission: draft.permission,
      permissionType: draft.permissionType,
      groups: Object.freeze([...draft.groups]),
      streaming: draft.streaming,
      versions: Object.freeze(versions),
      longRunning: draft.longRunning,
    });
    specs.push(spec);
    const scopedForms = [...draft.bindings.values()].filter((binding) => binding.scoped);
    for (const binding of draft.bindings.values()) {
      let scopedForm: string | null | undefined;
      if (!binding.scoped) {
        // The same method under projects/*/locations/*: prefer the form whose resource ends like this one.
        const match = scopedForms.find((form) => form.resource.endsWith(binding.resource) && form.verb === binding.verb) ?? scopedForms[0];
        scopedForm =
          match === undefined
            ? null
            : `${match.resource}${match.suffix === undefined ? '' : `/${match.suffix}`}${match.verb === undefined ? '' : `:${match.verb}`}`;
      }
      bindings.push(
        Object.freeze({
          spec,
          resource: binding.resource,
          ...(binding.verb === undefined ? {} : { verb: binding.verb }),
          ...(binding.suffix === undefined ? {} : { suffix: binding.suffix }),
          versions: Object.freeze((['v1', 'v1beta1'] as const).filter((version) => binding.versions.has(version))),
          ...(scopedForm === undefined ? {} : { scopedForm }),
        }),
      );
    }
  }
  const unusedExceptions = Object.keys(PERMISSION_EXCEPTIONS).filter((id) => !usedExceptions.has(id));
  return { specs, bindings, grpcOnly, unusedExceptions };
}
