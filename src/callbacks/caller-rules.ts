/**
 * A callback route's `callers` as the authorize step's rules: the caller's
 * Google identity is on the route's list, or the call is refused. Pure.
 *
 * In: the request context (a Google principal) and the matched route.
 * Out: the {@link Verdict}; an allow names the route (`callbacks:PREFIX`).
 *
 * @module
 * @throws ProxyError ERR_INTERNAL (500) when no Google principal is set
 */
import type { AccessRules, Verdict } from '../authorize/plugin.js';
import { callerNotAllowed, pipelineIncomplete } from '../authorize/refusals.js';
import type { Decision } from '../policy/decision.js';
import type { RequestContext } from '../request-context.js';
import type { RouteMatch } from './routes.js';

const NOT_LISTED: Decision = Object.freeze({ allowed: false, ruleId: null, reason: 'no-matching-rule' });

export const callerRules: AccessRules<RouteMatch> = {
  decide(context: RequestContext, { route }: RouteMatch): Verdict {
    const principal = context.principal;
    if (principal?.kind !== 'google') throw pipelineIncomplete('callback authorization reached without route or identity');
    if (route.callers.match({ email: principal.email, subject: principal.subject }) === undefined)
      return { decision: NOT_LISTED, refusal: callerNotAllowed(principal.email, route.prefix) };
    return { decision: { allowed: true, ruleId: `callbacks:${route.prefix}`, reason: 'allowed-by-rule' } };
  },
};
