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
}

export async function buildAdminApp(deps: AdminDeps): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: deps.logger as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const checks = deps.readiness();
    const ready = !deps.shuttingDown() && checks.every((c) => c.ready);
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not ready', shuttingDown: deps.shuttingDown(), checks };
  });
  app.get('/metrics', async (_request, reply) => {
    reply.type(deps.registry.contentType);
    return deps.registry.metrics();
  });
  return app;
}
