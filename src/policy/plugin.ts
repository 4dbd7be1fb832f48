/**
 * Step ④ authorize: (subject, operation) → `request.kvp.decision`. Denied
 * requests end here with 403; the decision names the rule that made it.
 *
 * @module
 */
import fp from 'fastify-plugin';
import { ProxyError } from '../errors.js';
import type { CompiledPolicy } from './compile.js';
import { actionOf, type Decision } from './decision.js';
import type { Operation } from '../vertex/operation.js';

export interface AuthorizePluginOptions {
  /** The policy in force (a function so a reload can swap it between requests). */
  readonly policy: () => CompiledPolicy;
}

export const authorizePlugin = fp<AuthorizePluginOptions>(
  async (app, options) => {
    app.addHook('onRequest', (request, _reply, done) => {
      const { subject, operation, principal } = request.kvp;
      if (subject === undefined || operation === undefined || principal === undefined) {
        // Earlier steps guarantee these; refusing keeps a wiring mistake from ever allowing.
        done(new ProxyError('ERR_INTERNAL', 'INTERNAL', 'authorization reached without identity or operation', { reason: 'pipeline-incomplete' }));
        return;
      }
      const policy = options.policy();
      const decision = policy.evaluate(subject, actionOf(operation));
      request.kvp.decision = decision;
      request.kvp.policyVersion = policy.version;
      if (!decision.allowed) {
        done(denied(decision, operation, principal.kind === 'kubernetes' ? principal.subject : principal.email));
        return;
      }
      done();
    });
  },
  { name: 'kvp-authorize', fastify: '5.x', dependencies: ['kvp-classify'] },
);

/** The 403 the caller sees: Vertex AI's own wording, plus who and why. */
export function denied(decision: Decision, operation: Operation, principalName: string): ProxyError {
  const why = decision.ruleId === null ? 'no policy rule allows it' : `denied by policy rule "${decision.ruleId}"`;
  return new ProxyError(
    'ERR_AUTHZ_DENIED',
    'PERMISSION_DENIED',
    `Permission '${operation.spec.permission}' denied on resource '//aiplatform.googleapis.com/${operation.resource}' for ${principalName}: ${why}.`,
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
