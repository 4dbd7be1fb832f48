/**
 * Resources named in a request body. A few Vertex AI methods pick a second
 * resource in the body rather than the path: the model of OpenAI-compatible
 * chat on `endpoints/openapi`, the `cachedContent` a generateContent call
 * reads, the `model` a batch prediction job runs, the `baseModel` a tuning job
 * starts from, the `deployedModel.model` a deploy puts behind an endpoint. A
 * grant on the path alone would grant every such resource; here each is
 * authorized as if it were the path's resource (same principal, same
 * operation and permission, that resource), and a refusal names the field.
 *
 * Pure functions plus one {@link BodyRule} for the shared inspect step.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_INVALID_BODY_RESOURCE (400), ERR_AUTHZ_BODY_RESOURCE_DENIED (403)
 */
import type { FastifyRequest } from 'fastify';

import { ProxyError } from '../errors.js';
import type { BodyRule, InspectedBody } from '../inspect/body-rule.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { actionOf, type Decision, type PolicySubject } from '../policy/decision.js';
import type { Operation } from './operation-types.js';
import type { VertexScope } from './scope.js';

/** What kind of resource name a field may hold. */
type ResourceKind = 'publisherModel' | 'model' | 'cachedContent';

export interface BodyResourceField {
  /** The field as the caller writes it (JSON, lowerCamelCase), for messages: `deployedModel.model`. */
  readonly field: string;
  readonly path: readonly string[];
  /** The kinds of resource the field may name; anything else is a 400. */
  readonly kinds: readonly ResourceKind[];
  /** How a bare value is read: `publisher/model` (OpenAI chat) or a model id of Google's (`gemini-2.5-flash`). */
  readonly shortForm?: 'publisherSlashModel' | 'googleModelId';
}

/** Operation id → the body field naming a resource. */
export const BODY_RESOURCE_FIELDS: ReadonlyMap<string, BodyResourceField> = new Map<string, BodyResourceField>([
  ['endpoints.chatCompletions', { field: 'model', path: ['model'], kinds: ['publisherModel'], shortForm: 'publisherSlashModel' }],
  ['endpoints.generateContent', { field: 'cachedContent', path: ['cachedContent'], kinds: ['cachedContent'] }],
  ['endpoints.streamGenerateContent', { field: 'cachedContent', path: ['cachedContent'], kinds: ['cachedContent'] }],
  ['publisherModels.generateContent', { field: 'cachedContent', path: ['cachedContent'], kinds: ['cachedContent'] }],
  ['publisherModels.streamGenerateContent', { field: 'cachedContent', path: ['cachedContent'], kinds: ['cachedContent'] }],
  ['batchPredictionJobs.create', { field: 'model', path: ['model'], kinds: ['model', 'publisherModel'] }],
  ['tuningJobs.create', { field: 'baseModel', path: ['baseModel'], kinds: ['publisherModel', 'model'], shortForm: 'googleModelId' }],
  ['endpoints.deployModel', { field: 'deployedModel.model', path: ['deployedModel', 'model'], kinds: ['model'] }],
]);

/** The top-level members those fields are in: all the rule reads of a body. */
const BODY_RESOURCE_TOP_LEVEL: readonly string[] = [...new Set([...BODY_RESOURCE_FIELDS.values()].map((f) => f.path[0] as string))];

/** The endpoint id Vertex AI reserves for OpenAI-compatible chat with a model chosen in the body. */
const OPENAPI_ENDPOINT = '/endpoints/openapi';

const ID = /^[A-Za-z0-9][A-Za-z0-9._@~-]{0,127}$/;
const PROJECT = /^[a-z0-9][a-z0-9-]{0,62}$/;
const LOCATION = /^[a-z][a-z0-9-]{0,62}$/;
const MAX_NAME = 1024;

/** The field this operation reads a resource from, or undefined (cheap: decided from the path alone). */
export function bodyResourceFieldOf(operation: Operation): BodyResourceField | undefined {
  const field = BODY_RESOURCE_FIELDS.get(operation.spec.id);
  // Chat completions on a deployed endpoint use that endpoint's model; only `openapi` takes it from the body.
  if (field !== undefined && operation.spec.id === 'endpoints.chatCompletions' && !operation.resource.endsWith(OPENAPI_ENDPOINT))
    return undefined;
  return field;
}

function invalid(field: string, problem: string): ProxyError {
  return new ProxyError('ERR_REQUEST_INVALID_BODY_RESOURCE', `Request body field "${field}" ${problem}.`, {
    reason: 'invalid-body-resource',
    metadata: { field },
  });
}

/**
 * The full resource name the body names, `projects/P/locations/L/…`, or
 * undefined when the field is absent (Vertex AI then uses the path's resource,
 * or refuses the request itself). Short forms resolve against the path's
 * project and location.
 *
 * @throws ProxyError ERR_REQUEST_INVALID_BODY_RESOURCE for a value that is not a name of an allowed kind
 */
export function bodyResourceName(operation: Operation, field: BodyResourceField, json: unknown): string | undefined {
  let value: unknown = json;
  for (const key of field.path) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
  }
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(field.field, 'must be a string naming a resource');
  if (value.length === 0 || value.length > MAX_NAME) throw invalid(field.field, 'must name a resource');
  const scope = `projects/${operation.project ?? ''}/locations/${operation.location ?? ''}`;
  const parts = value.split('/');
  const allowed = (kind: ResourceKind): boolean => field.kinds.includes(kind);
  const ids = (list: readonly string[]): boolean => list.every((id) => ID.test(id) && !id.includes('..'));

  // Short forms first: `google/gemini-2.5-pro` (chat), `gemini-2.5-flash-001` (tuning).
  if (field.shortForm === 'publisherSlashModel' && parts.length === 2 && ids(parts))
    return `${scope}/publishers/${parts[0]}/models/${parts[1]}`;
  if (field.shortForm === 'googleModelId' && parts.length === 1 && ids(parts)) return `${scope}/publishers/google/models/${parts[0]}`;
  // Relative names: `publishers/P/models/M`, `cachedContents/C`, resolved in the path's project and location.
  if (
    parts[0] === 'publishers' &&
    parts[2] === 'models' &&
    parts.length === 4 &&
    allowed('publisherModel') &&
    ids([parts[1] as string, parts[3] as string])
  ) {
    return `${scope}/${value}`;
  }
  if (parts[0] === 'cachedContents' && parts.length === 2 && allowed('cachedContent') && ids([parts[1] as string]))
    return `${scope}/${value}`;
  // Full names.
  if (parts[0] === 'projects' && parts[2] === 'locations' && PROJECT.test(parts[1] ?? '') && LOCATION.test(parts[3] ?? '')) {
    const rest = parts.slice(4);
    if (rest[0] === 'models' && rest.length === 2 && allowed('model') && ids([rest[1] as string])) return value;
    if (
      rest[0] === 'publishers' &&
      rest[2] === 'models' &&
      rest.length === 4 &&
      allowed('publisherModel') &&
      ids([rest[1] as string, rest[3] as string])
    )
      return value;
    if (rest[0] === 'cachedContents' && rest.length === 2 && allowed('cachedContent') && ids([rest[1] as string])) return value;
  }
  const expected = field.kinds
    .map((kind) =>
      kind === 'model'
        ? 'projects/P/locations/L/models/M'
        : kind === 'cachedContent'
          ? 'projects/P/locations/L/cachedContents/C'
          : 'projects/P/locations/L/publishers/PUB/models/M',
    )
    .join(' or ');
  throw invalid(field.field, `does not name a resource of the expected kind (${expected})`);
}

export interface BodyResourcesOptions {
  readonly policy: () => CompiledPolicy;
  readonly labelIndependentPolicy?: () => CompiledPolicy;
  readonly scope: Pick<VertexScope, 'projects' | 'projectIdByNumber'>;
}

/**
 * Authorizes the body's resource as if it were the path's.
 *
 * @returns undefined when allowed (or the field is absent), else the refusal
 */
export function checkBodyResource(
  operation: Operation,
  subject: PolicySubject,
  json: unknown,
  options: BodyResourcesOptions,
  /** Sees the policy's decision on the body's resource when it refuses (for the audit record). */
  onDenied?: (decision: Decision) => void,
): ProxyError | undefined {
  const field = bodyResourceFieldOf(operation);
  if (field === undefined) return undefined;
  let resource: string | undefined;
  try {
    resource = bodyResourceName(operation, field, json);
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
  if (resource === undefined) return undefined;
  const parts = resource.split('/');
  const named = parts[1] as string;
  // Authorized as the project id, as a path with the project number would be.
  const project = options.scope.projectIdByNumber.get(named) ?? named;
  const normalized = project === named ? resource : `projects/${project}/${parts.slice(2).join('/')}`;
  const refuse = (why: string, rule?: string | null): ProxyError =>
    new ProxyError(
      'ERR_AUTHZ_BODY_RESOURCE_DENIED',
      `Permission '${operation.spec.permission}' denied on resource '//aiplatform.googleapis.com/${normalized}' named in ` +
        `the request body field "${field.field}": ${why}.`,
      {
        reason: 'body-resource-denied',
        metadata: { field: field.field, permission: operation.spec.permission, resource: normalized, ...(rule ? { rule } : {}) },
      },
    );
  if (!options.scope.projects.has(project)) return refuse(`project "${project}" is not served by this proxy`);
  const action = { ...actionOf(operation), resource: normalized, project, location: parts[3] ?? null };
  const decision = options.policy().evaluate(subject, action);
  if (!decision.allowed) onDenied?.(decision);
  if (!decision.allowed)
    return refuse(decision.ruleId === null ? 'no policy rule allows it' : `denied by policy rule "${decision.ruleId}"`, decision.ruleId);
  if (subject.labelsStale !== undefined) {
    const independent = options.labelIndependentPolicy?.().evaluate(subject, action);
    if (independent === undefined || !independent.allowed) {
      onDenied?.({ allowed: false, ruleId: independent?.ruleId ?? decision.ruleId, reason: 'labels-stale' });
      return refuse('the namespace labels are stale and the decision depends on them', independent?.ruleId);
    }
  }
  return undefined;
}

/** The rule for the inspect step: wants the body only of the methods above, and only when the path allowed the call. */
export function createBodyResourcesRule(options: BodyResourcesOptions): BodyRule {
  return {
    name: 'body-resources',
    topLevelMembers: BODY_RESOURCE_TOP_LEVEL,
    wants(request: FastifyRequest): boolean {
      const { operation, decision } = request.kvp;
      return operation !== undefined && decision?.allowed === true && bodyResourceFieldOf(operation) !== undefined;
    },
    inspect(request: FastifyRequest, body: InspectedBody) {
      const { operation, subject } = request.kvp;
      // wants() saw both; refusing keeps a wiring mistake from ever allowing.
      if (operation === undefined || subject === undefined) {
        return {
          refuse: new ProxyError('ERR_INTERNAL', 'body inspection reached without identity or operation', {
            reason: 'pipeline-incomplete',
          }),
        };
      }
      // The decision record then says what the policy said about the body's resource.
      const refusal = checkBodyResource(operation, subject, body.json, options, (decision) => {
        request.kvp.decision = decision;
      });
      return refusal === undefined ? undefined : { refuse: refusal };
    },
  };
}
