/**
 * After authorize: an allowed prediction call of an endpoint that has a host
 * of its own (dedicated or Private Service Connect) is sent there instead of
 * the regional host (see endpoint-hosts.ts). Runs only for allowed requests,
 * so a refused caller never makes the proxy look an endpoint up.
 *
 * @module
 */
import fp from 'fastify-plugin';
import type { EndpointHosts } from '../vertex/endpoint-hosts.js';

export interface EndpointHostsPluginOptions {
  readonly endpointHosts: EndpointHosts | undefined;
}

export const endpointHostsPlugin = fp<EndpointHostsPluginOptions>(
  // eslint-disable-next-line @typescript-eslint/require-await -- a fastify plugin: async tells fastify when registration is done
  async (app, { endpointHosts }) => {
    if (endpointHosts === undefined) return;
    app.addHook('onRequest', (request, _reply, done) => {
      const operation = request.kvp.operation;
      if (operation === undefined || request.kvp.decision?.allowed !== true) {
        done();
        return;
      }
      const origin = endpointHosts.originFor(operation);
      if (origin === undefined) {
        done();
        return;
      }
      if (typeof origin === 'string') {
        request.kvp.upstreamBase = origin;
        done();
        return;
      }
      origin.then(
        (found) => {
          if (found !== undefined) request.kvp.upstreamBase = found;
          done();
        },
        () => done(),
      );
    });
  },
  { name: 'kvp-endpoint-hosts', fastify: '5.x', dependencies: ['kvp-authorize'] },
);
