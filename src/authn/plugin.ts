/**
 * Step ① authenticate: `Authorization: Bearer <JWT>` → `request.kvp.principal`.
 * A cached token is accepted synchronously; only a miss pays for a promise.
 *
 * @module
 */
import fp from 'fastify-plugin';
import { unauthenticated } from '../errors.js';
import { bearerCacheCandidate, parseBearer } from './bearer.js';
import { failureDescription } from '../tracing/tracing.js';
import type { Principal } from './principal.js';
import type { TokenVerifier } from './verifier.js';

export interface AuthnPluginOptions {
  readonly verifier: TokenVerifier;
  /** Principal kinds this listener accepts: the outbound path takes Kubernetes tokens only. */
  readonly accept: Principal['kind'];
}

export const authnPlugin = fp<AuthnPluginOptions>(
  // eslint-disable-next-line @typescript-eslint/require-await -- a fastify plugin: async tells fastify when registration is done
  async (app, { verifier, accept }) => {
    const wrongKind = () =>
      unauthenticated(
        'ERR_AUTHN_UNTRUSTED_ISSUER',
        accept === 'kubernetes'
          ? 'Only Kubernetes service-account tokens are accepted on this path.'
          : 'Only Google ID tokens are accepted on this path.',
        { reason: 'wrong-token-kind' },
      );

    app.addHook('onRequest', (request, _reply, done) => {
      // An earlier step of this context already signed the caller in (the audit console behind IAP).
      if (request.kvp.principal !== undefined) {
        done();
        return;
      }
      const candidate = bearerCacheCandidate(request.headers.authorization);
      const cached = candidate === undefined ? undefined : verifier.cached(candidate);
      if (cached !== undefined) {
        if (cached.kind !== accept) {
          done(wrongKind());
          return;
        }
        request.kvp.principal = cached;
        done();
        return;
      }
      let token: string;
      try {
        token = parseBearer(request.headers.authorization);
      } catch (error) {
        done(error as Error);
        return;
      }
      // Only a cache miss spends time worth a span: the signature check (and a TokenReview, when on).
      const span = request.kvp.span?.child('kvp.authn.verify', 'internal');
      verifier.verify(token, span).then(
        (principal) => {
          span?.end();
          if (principal.kind !== accept) {
            done(wrongKind());
            return;
          }
          request.kvp.principal = principal;
          done();
        },
        (error: unknown) => {
          if (span !== undefined) {
            span.fail(failureDescription(error));
            span.end();
          }
          done(error as Error);
        },
      );
    });
  },
  { name: 'kvp-authn', fastify: '5.x', dependencies: ['kvp-audit'] },
);
