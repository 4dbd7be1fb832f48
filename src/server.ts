/**
 * A running proxy: builds the dependencies from validated settings, starts
 * both listeners, and stops them in the right order (readiness off, stop
 * accepting, drain in-flight requests, close the upstream pool).
 *
 * @module
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { Agent } from 'undici';
import { buildAdminApp } from './admin/app.js';
import { buildProxyApp } from './app.js';
import { toCloudLoggingEntry } from './audit/cloud-logging.js';
import type { AuditListener } from './audit/plugin.js';
import { TokenVerifier } from './authn/verifier.js';
import type { Settings } from './config/load.js';
import { createGoogleCredential, type UpstreamCredential } from './forward/credentials.js';
import { createNoLabelSource, createStaticLabelSource, type NamespaceLabelSource } from './identity/labels.js';
import { createMetrics } from './metrics/metrics.js';

export interface RunningProxy {
  readonly dataAddress: AddressInfo;
  readonly adminAddress: AddressInfo;
  /** Graceful stop: readiness off, stop accepting, drain up to the grace period, close pools. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger: Logger;
  /** Where audit lines go (Cloud Logging entries, one JSON object per line). Default: stdout. */
  readonly writeAuditLine?: (line: string) => void;
}

export async function startProxy(settings: Settings, options: StartOptions): Promise<RunningProxy> {
  const { logger } = options;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  let metricsRef: ReturnType<typeof createMetrics> | undefined;
  const verifier = new TokenVerifier({
    issuers: settings.issuers,
    clockSkewSec: settings.authentication.clockSkewSec,
    cacheMaxEntries: settings.authentication.tokenCacheMaxEntries,
    negativeTtlMs: settings.authentication.negativeTtlMs,
    jwksRefreshIntervalMs: settings.authentication.jwksRefreshIntervalMs,
    jwksMinRefreshIntervalMs: settings.authentication.jwksMinRefreshIntervalMs,
    jwksFetchTimeoutMs: settings.authentication.jwksFetchTimeoutMs,
    onJwksFetch: (issuer, result, error) => {
      metricsRef?.jwksFetch(issuer, result);
      if (result === 'error') logger.warn({ issuer, error: (error as Error | undefined)?.message }, 'issuer key set fetch failed; keeping the last good keys');
    },
  });
  const credential: UpstreamCredential = createGoogleCredential({
    onRefresh: (result, error) => {
      metricsRef?.credentialRefresh(result);
      if (result === 'error') logger.warn({ error: (error as Error | undefined)?.message }, 'Google access token refresh failed');
      else logger.debug('Google access token refreshed');
    },
  });
  const labels: NamespaceLabelSource =
    settings.config.kubernetes.namespaceLabels === 'static' ? createStaticLabelSource(settings.config.kubernetes.static) : createNoLabelSource();
  const policy = () => settings.policy;
  const metrics = createMetrics(registry, {
    tokenCache: () => ({ hits: verifier.stats.hits, misses: verifier.stats.misses, entries: verifier.cacheSize }),
    keySets: () => verifier.keyStatus().map((k) => ({ issuer: k.issuer, ageMs: k.ageMs })),
    policy: () => ({ version: settings.policy.version, ruleCount: settings.policy.ruleCount }),
  });
  metricsRef = metrics;

  const traceProject = settings.config.vertex.projects[0] as string;
  const writeAuditLine = options.writeAuditLine ?? ((line: string) => process.stdout.write(line));
  const auditListeners: AuditListener[] = [
    (record) => writeAuditLine(`${JSON.stringify(toCloudLoggingEntry(record, { traceProject }))}\n`),
    (record) => metrics.observeRecord(record),
  ];

  const dispatcher = new Agent({
    connections: settings.vertex.connectionsPerHost,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    headersTimeout: settings.vertex.responseTimeoutMs,
    bodyTimeout: settings.vertex.idleTimeoutMs,
    connect: { timeout: settings.vertex.connectTimeoutMs },
  });

  let shuttingDown = false;
  const proxyApp = await buildProxyApp(settings, { logger, verifier, labels, policy, credential, dispatcher, auditListeners });
  const adminApp = await buildAdminApp({
    logger,
    registry,
    shuttingDown: () => shuttingDown,
    readiness: () => [
      ...verifier.keyStatus().map((k) => ({ name: `issuer:${k.issuer}`, ready: k.ready, detail: { keyIds: k.keyIds, ageSeconds: k.ageMs === undefined ? null : Math.round(k.ageMs / 1000) } })),
      { name: 'google-credential', ready: credential.ready(), detail: credential.describe() },
      { name: 'namespace-labels', ready: labels.ready(), detail: { source: labels.kind } },
    ],
  });

  // Keys and the first token are fetched in the background; /readyz says when they are in hand.
  void verifier.start();
  await credential.start();

  await adminApp.listen({ host: settings.server.adminHost, port: settings.server.adminPort });
  await proxyApp.listen({ host: settings.server.host, port: settings.server.port });

  const dataAddress = proxyApp.server.address() as AddressInfo;
  const adminAddress = adminApp.server.address() as AddressInfo;

  return {
    dataAddress,
    adminAddress,
    async close() {
      shuttingDown = true;
      await closeWithGrace(proxyApp, settings.server.shutdownGraceMs, logger);
      await adminApp.close();
      verifier.stop();
      credential.stop();
      await dispatcher.close().catch(() => undefined);
    },
  };
}

async function closeWithGrace(app: FastifyInstance, graceMs: number, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
    timer.unref();
  });
  const closed = app.close().then(() => 'closed' as const);
  const result = await Promise.race([closed, deadline]);
  if (timer) clearTimeout(timer);
  if (result === 'timeout') {
    logger.warn({ graceMs }, 'shutdown grace period over; closing remaining connections');
    app.server.closeAllConnections();
    await closed;
  }
}
