/**
 * A classified operation, checked against what this proxy serves: a project
 * and location must be in the path, the location must be configured (it
 * becomes part of a hostname, so it is checked before it goes near a URL),
 * and the project must be one callers may address. Shared by the data path
 * and `can-i`, so both refuse the same things.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_* (400/404/405), ERR_AUTHZ_PROJECT_NOT_ALLOWED (403)
 */
import { ProxyError } from '../errors.js';
import { classify } from './classify.js';
import type { Operation } from './operation-types.js';

export interface VertexScope {
  readonly projects: ReadonlySet<string>;
  /** Project number → id: a call addressed by number is authorized as the id. */
  readonly projectIdByNumber: ReadonlyMap<string, string>;
  readonly locations: ReadonlySet<string>;
  readonly upstreamFor: (location: string | null) => string | undefined;
}

export interface ScopedOperation {
  readonly operation: Operation;
  /** Origin the request goes to. */
  readonly upstream: string;
}

/**
 * Classifies `method rawUrl` and checks its scope. `onClassified` sees the operation even when the scope check then refuses it (for the
 * audit record).
 */
export function resolveOperation(
  method: string,
  rawUrl: string,
  scope: VertexScope,
  onClassified?: (operation: Operation) => void,
): ScopedOperation {
  let operation = classify(method, rawUrl);
  const projectId = operation.project === null ? undefined : scope.projectIdByNumber.get(operation.project);
  if (projectId !== undefined) {
    // Vertex AI hands out names with the project number; the policy speaks of ids.
    // The path is forwarded as sent; only what is authorized and audited is normalized.
    operation = {
      ...operation,
      project: projectId,
      resource: `projects/${projectId}${operation.resource.slice(`projects/${operation.project}`.length)}`,
    };
  }
  onClassified?.(operation);
  if (operation.project === null || operation.location === null) {
    // Express-mode and project-only paths: Vertex AI bills and authorizes them differently (API keys,
    // no location), and the proxy's policy, upstream and audit are all keyed on project and location.
    const instead =
      operation.scopedForm === null
        ? ' This method has no projects/PROJECT/locations/LOCATION form, so the proxy does not serve it.'
        : ` Use ` +
          `/${operation.version}/` +
          `${scopedPath(operation.scopedForm ?? 'projects/{project}/locations/{location}/...', operation.resource)} instead.`;
    throw new ProxyError(
      'ERR_REQUEST_PROJECT_REQUIRED',
      `${operation.spec.rpc} must be called with a project and location in the path ` +
        `(projects/PROJECT/locations/LOCATION/...); Vertex AI express mode paths are not served.${instead}`,
      { reason: 'project-required' },
    );
  }
  const upstream = scope.locations.has(operation.location) ? scope.upstreamFor(operation.location) : undefined;
  if (upstream === undefined) {
    throw new ProxyError('ERR_REQUEST_LOCATION_NOT_SERVED', `Location "${operation.location}" is not served by this proxy.`, {
      reason: 'location-not-served',
      metadata: { location: operation.location },
    });
  }
  if (!scope.projects.has(operation.project)) {
    throw new ProxyError('ERR_AUTHZ_PROJECT_NOT_ALLOWED', `Project "${operation.project}" is not served by this proxy.`, {
      reason: 'project-not-allowed',
      metadata: { project: operation.project },
    });
  }
  return { operation, upstream };
}

/**
 * The scoped form with the caller's own ids where they line up
 * (`publishers/google/models/m` → `projects/PROJECT/locations/LOCATION/publishers/google/models/m:generateContent`).
 */
function scopedPath(template: string, resource: string): string {
  const prefix = 'projects/{project}/locations/{location}';
  let rest = template.startsWith(prefix) ? template.slice(prefix.length) : template;
  const verbAt = rest.lastIndexOf(':');
  const verb = verbAt === -1 ? '' : rest.slice(verbAt);
  rest = verbAt === -1 ? rest : rest.slice(0, verbAt);
  const wanted = rest.split('/').filter((segment) => segment !== '');
  const given = resource === '' ? [] : resource.split('/');
  const fits = wanted.length === given.length && wanted.every((segment, i) => segment.startsWith('{') || segment === given[i]);
  const tail = fits ? given.join('/') : wanted.join('/');
  return `projects/PROJECT/locations/LOCATION${tail === '' ? '' : `/${tail}`}${verb}`;
}
