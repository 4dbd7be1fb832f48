/**
 * The admin port: `/healthz` (the process is alive), `/readyz` (it can serve:
 * issuer keys loaded, first Google token in hand, label view ready) and
 * `/metrics`. A separate listener, so probes and scrapes can never be proxied
 * and the data port has no unauthenticated routes.
 *
 * @module
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createExposition, wantsOpenMetrics } from '../metrics/exposition.js';

export interface ReadinessCheck {
  readonly name: string;
  readonly ready: boolean;
  readonly detail?: Record<string, unknown>;
}

export interface AdminDeps {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly readiness: () => readonly ReadinessCheck[];
  /** True once shutdown has begun: readiness fails so the endpoint is removed from the Service first. */
  readonly shuttingDown: () => boolean;
  /** The callback identity assertion's public keys, served at `/.well-known/jwks.json` when callbacks are configured. */
  readonly jwks?: () => unknown;
  /** Whether /readyz shows each check's detail (`server.readyzDetails`); off: names and ready flags only. */
  readonly readyzDetails?: boolean;
}

export async function buildAdminApp(deps: AdminDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // Without the cast Fastify's instance takes pino's Logger type and no longer matches FastifyInstance.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- see above
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const checks = deps.readiness();
    const ready = !deps.shuttingDown() && checks.every((c) => c.ready);
    reply.code(ready ? 200 : 503);
    // Key ids, policy problems and reload state are for operators, not for whoever can reach the port.
    const shown = deps.readyzDetails === true ? checks : checks.map(({ name, ready: ok }) => ({ name, ready: ok }));
    return { status: ready ? 'ready' : 'not ready', shuttingDown: deps.shuttingDown(), checks: shown };
  });
  const jwks = deps.jwks;
  if (jwks !== undefined) {
    // Backends cache it; a short max-age lets them see a new key soon after a restart with a new Secret.
    app.get('/.well-known/jwks.json', async (_request, reply) => {
      reply.type('application/jwk-set+json').header('cache-control', 'public, max-age=300');
      return JSON.stringify(jwks());
    });
  }
  const exposition = createExposition(deps.registry);
  app.get('/metrics', async (request, reply) => {
    const { contentType, body } = await exposition(wantsOpenMetrics(request.headers.accept));
    reply.type(contentType);
    return body;
  });
  return app;
}
