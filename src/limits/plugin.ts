/**
 * Step: limits. After authorize, before anything is read or forwarded: the
 * limit rules that apply are checked (limiter.ts); a refusal ends the request
 * with 429 (or 503 when the store is down and fails closed). An admitted
 * request's account is settled when its response closes: tokens from the
 * usage the response reported, concurrency slots freed.
 *
 * @module
 */
import fp from 'fastify-plugin';
import { actionOf } from '../policy/decision.js';
import { chargeableTokens } from '../usage/usage.js';
import type { Limiter } from './limiter.js';

export interface LimitsPluginOptions {
  readonly limiter: Limiter;
}

export const limitsPlugin = fp<LimitsPluginOptions>(
  // eslint-disable-next-line @typescript-eslint/require-await -- a fastify plugin: async tells fastify when registration is done
  async (app, { limiter }) => {
    app.addHook('onRequest', (request, reply, done) => {
      const ctx = request.kvp;
      if (ctx.subject === undefined || ctx.operation === undefined) {
        done();
        return;
      }
      const rules = limiter.applicable(ctx.subject, actionOf(ctx.operation));
      if (rules.length === 0) {
        done();
        return;
      }
      // Listening before the store answers: a caller gone meanwhile must still free what its admission took.
      let closed = false;
      let settle: ((tokens: number) => void) | undefined;
      reply.raw.once('close', () => {
        closed = true;
        settle?.(chargeableTokens(ctx.usage?.tokens));
      });
      limiter.admit(rules, ctx.subject, request.id).then((outcome) => {
        ctx.limitRules = outcome.rules;
        if (outcome.dryRunRefusals.length > 0) ctx.limitDryRunRefusals = outcome.dryRunRefusals;
        if ('error' in outcome) {
          ctx.limitRefusedBy = outcome.rule;
          done(outcome.error);
          return;
        }
        settle = outcome.settle;
        if (closed) outcome.settle(0);
        done();
      }, done);
    });
  },
  { name: 'kvp-limits', fastify: '5.x', dependencies: ['kvp-authorize'] },
);
