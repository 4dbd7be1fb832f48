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
import { buildAdminApp } from './admin/app.js';
import { buildProxyApp } from './app.js';
import { startCallbacks } from './callbacks/runtime.js';
import { toCloudLoggingEntry } from './audit/cloud-logging.js';
import type { AuditListener } from './audit/plugin.js';
import type { AuditRecord } from './audit/record.js';
import { openAuditTrail, type AuditTrail } from './audit/trail.js';
import { TokenVerifier } from './authn/verifier.js';
import { loadConfigFile, type Settings } from './config/load.js';
import { createUpstreamAgent } from './forward/agent.js';
import { createGoogleCredential, type UpstreamCredential } from './forward/credentials.js';
import type { NamespaceLabelSource } from './identity/labels.js';
import { createKubernetesIdentity } from './identity/runtime.js';
import { PolicyReloader, type ReloadResult } from './reload/policy-reloader.js';
import { createMetrics } from './metrics/metrics.js';
import { startLimits, type LimitRuntime } from './limits/runtime.js';
import { createUsageMetrics } from './usage/metrics.js';

export interface RunningProxy {
  readonly dataAddress: AddressInfo;
  readonly adminAddress: AddressInfo;
  /** Graceful stop: readiness off, stop accepting, drain up to the grace period, close pools. */
  close(): Promise<void>;
  /** Re-reads the config file and swaps the policy if it is valid (SIGHUP). */
  reload(): Promise<ReloadResult>;
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
  // Namespace labels, TokenReview and UID revocation (the verifier is bound late: revocation evicts from its cache).
  let verifierRef: TokenVerifier | undefined;
  const kube = createKubernetesIdentity(settings, { logger, registry, evict: (predicate) => verifierRef?.evict(predicate) ?? 0 });
  const verifier = new TokenVerifier({
    ...kube.verifierOptions,
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
  verifierRef = verifier;
  const labels: NamespaceLabelSource = kube.labels;
  const reloader = new PolicyReloader({
    path: settings.source,
    initial: settings,
    load: loadConfigFile,
    watch: settings.reload.watch,
    debounceMs: settings.reload.debounceMs,
    logger,
    registry,
    onApplied: (snapshot) => kube.setStatic(snapshot.static),
  });
  const policy = () => reloader.current.policy;
  const labelIndependentPolicy = () => reloader.current.labelIndependent;
  const metrics = createMetrics(registry, {
    tokenCache: () => ({ hits: verifier.stats.hits, misses: verifier.stats.misses, entries: verifier.cacheSize }),
    keySets: () => verifier.keyStatus().map((k) => ({ issuer: k.issuer, ageMs: k.ageMs })),
    policy: () => ({ version: reloader.current.policy.version, ruleCount: reloader.current.policy.ruleCount }),
    auditQueueDepth: () => auditTrail?.queueDepth() ?? 0,
  });
  metricsRef = metrics;
  const usageMetrics = createUsageMetrics(registry, { metricLabels: settings.config.usage.metricLabels, maxSeries: settings.config.usage.maxSeries });
  // Limit rules (the store connects in the background: a Redis outage at start is handled like any other).
  const limits: LimitRuntime | undefined = settings.limits.rules.length === 0 ? undefined : await startLimits(settings.limits, { logger, registry, usage: usageMetrics });
  // Opened before anything listens: a store that cannot be opened (read-only filesystem) stops the program.
  const auditTrail: AuditTrail | undefined =
    settings.audit.stores.length === 0
      ? undefined
      : await openAuditTrail(settings.audit, logger, { batch: metrics.auditBatch, refused: metrics.auditRefused, dropped: metrics.auditDropped });

  const traceProject = settings.config.vertex.projects[0] as string;
  const writeAuditLine = options.writeAuditLine ?? ((line: string) => process.stdout.write(line));
  const auditListeners: AuditListener[] = [
    ...(settings.audit.stdout ? [(record: AuditRecord) => writeAuditLine(`${JSON.stringify(toCloudLoggingEntry(record, { traceProject }))}\n`)] : []),
    ...(auditTrail === undefined ? [] : [(record: AuditRecord) => auditTrail.recordFinal(record)]),
    (record) => metrics.observeRecord(record),
    (record) => usageMetrics.observe(record),
  ];

  const dispatcher = createUpstreamAgent({
    connections: settings.vertex.connectionsPerHost,
    responseTimeoutMs: settings.vertex.responseTimeoutMs,
    idleTimeoutMs: settings.vertex.idleTimeoutMs,
    connectTimeoutMs: settings.vertex.connectTimeoutMs,
  });

  let shuttingDown = false;
  // Callback routes: the assertion key is loaded (or generated) before anything listens.
  const callbacks = await startCallbacks(settings);
  const proxyApp = await buildProxyApp(settings, { logger, verifier, labels, policy, labelIndependentPolicy, credential, dispatcher, auditListeners, callbacks, auditTrail, limiter: limits?.limiter });
  const adminApp = await buildAdminApp({
    logger,
    registry,
    shuttingDown: () => shuttingDown,
    ...(callbacks === undefined ? {} : { jwks: () => callbacks.jwks() }),
    readiness: () => [
      ...verifier.keyStatus().map((k) => ({ name: `issuer:${k.issuer}`, ready: k.ready, detail: { keyIds: k.keyIds, ageSeconds: k.ageMs === undefined ? null : Math.round(k.ageMs / 1000) } })),
      { name: 'google-credential', ready: credential.ready(), detail: credential.describe() },
      ...kube.readiness(),
      // An invalid new file never makes the proxy unready (the old policy serves); the detail says what was refused.
      { name: 'policy', ready: true, detail: { ...reloader.status() } },
      ...(auditTrail === undefined ? [] : [{ name: 'audit-store', ready: auditTrail.healthy(), detail: { durability: auditTrail.durability, stores: settings.audit.stores.map((s) => s.type) } }]),
    ],
  });

  // Keys and the first token are fetched in the background; /readyz says when they are in hand.
  void verifier.start();
  void kube.start();
  reloader.start();
  await credential.start();

  await adminApp.listen({ host: settings.server.adminHost, port: settings.server.adminPort });
  await proxyApp.listen({ host: settings.server.host, port: settings.server.port });

  const dataAddress = proxyApp.server.address() as AddressInfo;
  const adminAddress = adminApp.server.address() as AddressInfo;

  return {
    dataAddress,
    adminAddress,
    reload: () => reloader.reload('signal'),
    async close() {
      shuttingDown = true;
      await closeWithGrace(proxyApp, settings.server.shutdownGraceMs, logger);
      await adminApp.close();
      reloader.stop();
      kube.stop();
      verifier.stop();
      credential.stop();
      await dispatcher.close().catch(() => undefined);
      // After the data port drained: every record of a finished request is in the queue.
      await auditTrail?.close();
      await callbacks?.close();
      await limits?.close();
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
