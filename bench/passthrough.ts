/**
 * The reverse-proxy baselines, each in its own process: fastify forwarding
 * everything to one upstream and checking nothing.
 *
 * - `--mode default`: `@fastify/http-proxy` as its README shows it, all defaults.
 * - `--mode tuned`: the project's own forwarding code and settings
 *   (the routes of src/forward/routes.ts with `dispatchUpstream` from
 *   src/forward/dispatch.ts as their handler, over the undici pool from
 *   src/forward/agent.ts, the same header filtering), still with no checks:
 *   the floor the full path is compared with.
 *
 * Prints `{"port": N}` once listening; SIGTERM stops it.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import proxy from '@fastify/http-proxy';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { createUpstreamAgent } from '../src/forward/agent.js';
import { upstreamRequestHeaders } from '../src/forward/header-policy.js';
import { dispatchUpstream } from '../src/forward/dispatch.js';
import { registerForwardRoutes } from '../src/forward/routes.js';
import { newRequestContext } from '../src/request-context.js';

const { values } = parseArgs({
  options: { mode: { type: 'string', default: 'default' }, upstream: { type: 'string' }, port: { type: 'string', default: '0' } },
});
const upstream = values.upstream as string;
const app = Fastify({ logger: false });

if (values.mode === 'tuned') {
  const dispatcher = createUpstreamAgent({ connections: 128, responseTimeoutMs: 60_000, idleTimeoutMs: 60_000, connectTimeoutMs: 5_000 });
  app.decorateRequest('kvp', null as never);
  app.addHook('onRequest', (request, _reply, done) => {
    request.kvp = newRequestContext();
    done();
  });
  // The same registration as src/forward/plugin.ts: the forwarding routes, their handler calling the one forwarding path.
  registerForwardRoutes(app, ['/', '/*'], (request: FastifyRequest, reply: FastifyReply) => {
    dispatchUpstream(dispatcher, request, reply, {
      origin: upstream,
      path: request.url,
      headers: upstreamRequestHeaders(request.headers, 'Bearer passthrough'),
      ownCredential: true,
    });
  });
} else {
  await app.register(proxy, { upstream });
}
await app.listen({ host: '127.0.0.1', port: Number(values.port) });
const address = app.server.address();
process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0 })}\n`);
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
