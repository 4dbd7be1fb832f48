/**
 * Step ③ classify: method + raw path → `request.kvp.operation` and the
 * upstream origin, after refusing headers that would swap the credential or
 * billing project. Every refusal here happens before any policy is consulted.
 *
 * @module
 */
import fp from 'fastify-plugin';
import { checkRequestHeaders } from '../lib/request-guard.js';
import { resolveOperation, type VertexScope } from '../vertex/scope.js';

export const classifyPlugin = fp<VertexScope>(
  // eslint-disable-next-line @typescript-eslint/require-await -- a fastify plugin: async tells fastify when registration is done
  async (app, scope) => {
    app.addHook('onRequest', (request, _reply, done) => {
      try {
        checkRequestHeaders(request.headers);
        const { upstream } = resolveOperation(request.method, request.url, scope, (operation) => {
          request.kvp.operation = operation;
        });
        request.kvp.upstreamBase = upstream;
        done();
      } catch (error) {
        done(error as Error);
      }
    });
  },
  { name: 'kvp-classify', fastify: '5.x', dependencies: ['kvp-identity'] },
);
