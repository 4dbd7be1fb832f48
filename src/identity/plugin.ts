/**
 * Step ② identify: the authenticated principal → the policy subject
 * `{namespace, serviceAccount, labels}`. Labels come from an in-memory source;
 * a request never waits for the Kubernetes API.
 *
 * @module
 */
import fp from 'fastify-plugin';
import type { NamespaceLabelSource } from './labels.js';

export interface IdentityPluginOptions {
  readonly labels: NamespaceLabelSource;
}

export const identityPlugin = fp<IdentityPluginOptions>(
  // eslint-disable-next-line @typescript-eslint/require-await -- a fastify plugin: async tells fastify when registration is done
  async (app, { labels }) => {
    app.addHook('onRequest', (request, _reply, done) => {
      const principal = request.kvp.principal;
      if (principal?.kind === 'kubernetes') {
        const stale = labels.stale?.();
        request.kvp.subject = {
          namespace: principal.namespace,
          serviceAccount: principal.serviceAccount,
          labels: labels.labelsOf(principal.namespace),
          ...(stale === undefined ? {} : { labelsStale: stale }),
        };
      } else if (principal?.kind === 'google') {
        // Only `googleEmails` rules can match this subject (see policy/compile.ts).
        request.kvp.subject = { namespace: '', serviceAccount: '', labels: undefined, googleEmail: principal.email };
      }
      done();
    });
  },
  { name: 'kvp-identity', fastify: '5.x', dependencies: ['kvp-authn'] },
);
