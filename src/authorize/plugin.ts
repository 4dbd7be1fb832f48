/**
 * Step ④ authorize, one step for every route family: the family's
 * classifier says what the request asks for, the family's rules answer, and
 * `request.kvp.decision` records the answer. A denied request ends here
 * (refusals in refusals.ts); nothing after this step runs for it.
 *
 * - Vertex AI: the classify step's operation ({@link classifiedOperation}),
 *   answered by the policy ({@link createPolicyRules}).
 * - Audit API and console: an `audit.read` operation per route (audit/query-api.ts),
 *   answered by the same policy, stale-label rule included.
 * - Callbacks: the callback route (callbacks/plugin.ts), answered by the
 *   route's `callers` (callbacks/caller-rules.ts).
 *
 * @module
 * @throws ProxyError whatever the classifier throws (400/401/404), ERR_AUTHZ_DENIED (403),
 *   ERR_IDENTITY_LABELS_STALE (403), ERR_INTERNAL (500) when earlier steps did not run
 */
import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { ProxyError } from '../errors.js';
import type { Decision } from '../policy/decision.js';
import type { RequestContext } from '../request-context.js';

export { classifiedOperation, createPolicyRules, type PolicyQuestion, type PolicyRulesOptions } from './policy-rules.js';

/** The answer of a family's rules. */
export interface Verdict {
  readonly decision: Decision;
  /** Set exactly when the decision denies: what the caller is told. */
  readonly refusal?: ProxyError;
}

/** What answers a classified request: the policy, or a callback route's callers. Plain code over the request context. */
export interface AccessRules<Question> {
  /** @throws ProxyError ERR_INTERNAL when the context lacks what earlier steps set */
  decide(context: RequestContext, question: Question): Verdict;
}

export interface AuthorizeOptions<Question> {
  /** The route family's classifier: what this request asks for. A ProxyError it throws is the refusal. */
  readonly classifier: (request: FastifyRequest) => Question;
  readonly rules: AccessRules<Question>;
}

/** The authorize step for one route family (register it in the family's context, after authenticate and identify). */
export function authorizePlugin<Question>({ classifier, rules }: AuthorizeOptions<Question>): FastifyPluginCallback {
  return fp(
    (app, _options, registered) => {
      app.addHook('onRequest', (request, _reply, done) => {
        let verdict: Verdict;
        try {
          verdict = rules.decide(request.kvp, classifier(request));
        } catch (error) {
          done(error as Error);
          return;
        }
        request.kvp.decision = verdict.decision;
        done(verdict.refusal);
      });
      registered();
    },
    { name: 'kvp-authorize', fastify: '5.x', dependencies: ['kvp-authn'] },
  );
}
