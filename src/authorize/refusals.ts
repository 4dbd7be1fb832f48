/**
 * The authorize step's refusals, for every route family: what the caller
 * sees when the rules say no. Vertex AI's own wording (permission, resource,
 * principal), plus which rule decided; never anything the caller could not
 * already know.
 *
 * @module
 */
import { ProxyError } from '../errors.js';
import type { Decision } from '../policy/decision.js';
import type { Operation } from '../vertex/operation-types.js';

/**
 * 403 for a policy denial. `hint` (optional) tells the caller how a grant
 * narrower than the one asked for could still apply.
 */
export function denied(decision: Decision, operation: Operation, principalName: string, hint?: string): ProxyError {
  const why = decision.ruleId === null ? 'no policy rule allows it' : `denied by policy rule "${decision.ruleId}"`;
  return new ProxyError(
    'ERR_AUTHZ_DENIED',
    `Permission '${operation.spec.permission}' denied on resource '//aiplatform.googleapis.com/${operation.resource}' for ` +
      `${principalName}: ${why}.${hint === undefined ? '' : ` ${hint}`}`,
    {
      reason: decision.reason,
      metadata: {
        permission: operation.spec.permission,
        resource: operation.resource,
        principal: principalName,
        ...(decision.ruleId === null ? {} : { rule: decision.ruleId }),
      },
    },
  );
}

/** 403 for a decision that depends on namespace labels while the label view is stale. */
export function labelsStale(decision: Decision, operation: Operation, principalName: string, ageSeconds: number | null): ProxyError {
  const age = ageSeconds === null ? 'has not synced yet' : `was last in sync ${ageSeconds}s ago`;
  return new ProxyError(
    'ERR_IDENTITY_LABELS_STALE',
    `Permission '${operation.spec.permission}' denied on resource '//aiplatform.googleapis.com/${operation.resource}' for ` +
      `${principalName}: the decision depends on namespace labels and the proxy's label view is stale (it ${age}).`,
    {
      reason: 'labels-stale',
      metadata: {
        permission: operation.spec.permission,
        resource: operation.resource,
        principal: principalName,
        ...(decision.ruleId === null ? {} : { rule: decision.ruleId }),
      },
    },
  );
}

/** 403 for a callback caller the route does not list. */
export function callerNotAllowed(callerEmail: string, routePrefix: string): ProxyError {
  return new ProxyError('ERR_AUTHZ_DENIED', `${callerEmail} is not allowed to call ${routePrefix}: it is not among the route's callers.`, {
    reason: 'caller-not-allowed',
    metadata: { principal: callerEmail, route: routePrefix },
  });
}

/** 500 when a step runs without what earlier steps guarantee: a wiring mistake must refuse, never allow. */
export function pipelineIncomplete(what: string): ProxyError {
  return new ProxyError('ERR_INTERNAL', what, { reason: 'pipeline-incomplete' });
}
