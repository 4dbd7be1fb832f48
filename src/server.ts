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
import { buildAdminApp, type ReadinessCheck } from './admin/app.js';
import { buildProxyApp } from './app.js';
import { startCallbacks } from './callbacks/runtime.js';
import { toCloudLoggingEntry } from './audit/cloud-logging.js';
import type { AuditListener } from './audit/plugin.js';
import type { AuditRecord } from './audit/record.js';
import { openAuditTrail, type AuditTrail } from './audit/trail.js';
import { FloodAggregator } from './audit/flood.js';
import { TokenVerifier } from './authn/verifier.js';
import { loadConfigFile, type Settings } from './config/load.js';
import { createUpstreamAgent } from './forward/agent.js';
import { createGoogleCredential, type UpstreamCredential } from './forward/credentials.js';
import { createTeamIdentities, type TeamIdentities } from './forward/identities.js';
import { aiplatformEndpointLookup, createEndpointHosts, DEDICATED_ENDPOINT_DOMAIN, type EndpointHosts } from './vertex/endpoint-hosts.js';
import type { NamespaceLabelSource } from './identity/labels.js';
import { createKubernetesIdentity } from './identity/runtime.js';
import { PolicyReloader, type ReloadResult } from './reload/policy-reloader.js';
import { createMetrics } from './metrics/metrics.js';
import { createIapVerifier } from './console/iap.js';
import { createTracing } from './tracing/tracing.js';
import { startLimits, type LimitRuntime } from './limits/runtime.js';
import { releaseStartupMemoryWhenReady } from './lib/startup-memory.js';
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
  // Off (the default): the OpenTelemetry SDK is not even loaded.
  const tracing = await createTracing(settings.tracing, process.env, logger);
  const registry = new Registry();
  // prom-client takes exemplars only on an OpenMetrics registry; /metrics still answers in either format (metrics/exposition.ts).
  if (tracing.enabled) registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
  collectDefaultMetrics({ register: registry });

  // The gauges read their sources at scrape time: /metrics is served only once everything below is built.
  const metrics = createMetrics(
    registry,
    {
      tokenCache: () => ({ hits: verifier.stats.hits, misses: verifier.stats.misses, entries: verifier.cacheSize }),
      keySets: () => verifier.keyStatus().map((k) => ({ issuer: k.issuer, ageMs: k.ageMs })),
      policy: () => ({ version: reloader.current.policy.version, ruleCount: reloader.current.policy.ruleCount }),
      auditQueueDepth: () => auditTrail?.queueDepth() ?? 0,
      credentialAvailable: () => credential.authorization() !== undefined,
    },
    { exemplars: tracing.enabled },
  );
  // Namespace labels, TokenReview and UID revocation; revocations evict from the verifier's cache once started.
  const kube = await createKubernetesIdentity(settings.kubernetes, { logger, registry });
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
      metrics.jwksFetch(issuer, result);
      // fetch() says only "fetch failed"; the cause's code names the TLS or network problem (e.g. SELF_SIGNED_CERT_IN_CHAIN without
      // issuers[].caFile).
      const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause?.code;
      if (result === 'error')
        logger.warn(
          { issuer, error: (error as Error | undefined)?.message, ...(cause === undefined ? {} : { cause }) },
          'issuer key set fetch failed; keeping the last good keys',
        );
    },
    onRetiredKeys: (issuer, removedKeys, evictedTokens) =>
      logger.info({ issuer, removedKeys, evictedTokens }, 'issuer withdrew signing keys; tokens they signed were evicted from the cache'),
  });
  const credential: UpstreamCredential = createGoogleCredential({
    onRefresh: (result, error) => {
      metrics.credentialRefresh(result);
      if (result === 'error') logger.warn({ error: (error as Error | undefined)?.message }, 'Google access token refresh failed');
      else logger.debug('Google access token refreshed');
    },
  });
  const identities: TeamIdentities | undefined =
    settings.vertex.identities.length === 0
      ? undefined
      : createTeamIdentities({
          identities: settings.vertex.identities,
          endpoint: settings.vertex.iamCredentialsEndpoint,
          onRefresh: (serviceAccount, result, error) => {
            metrics.identityRefresh(serviceAccount, result);
            if (result === 'error')
              logger.warn({ serviceAccount, error: (error as Error | undefined)?.message }, 'team identity token refresh failed');
          },
        });
  const { endpointHosts: pinnedHosts, endpointLookup } = settings.vertex;
  const endpointLookupClient = endpointLookup.enabled
    ? aiplatformEndpointLookup([...settings.vertex.locations], (location) => settings.vertex.upstreamFor(location))
    : undefined;
  const endpointHosts: EndpointHosts | undefined =
    pinnedHosts.size === 0 && !endpointLookup.enabled
      ? undefined
      : createEndpointHosts({
          pinned: pinnedHosts,
          lookup: endpointLookupClient?.lookup,
          ttlMs: endpointLookup.ttlMs,
          maxEntries: endpointLookup.maxEntries,
          timeoutMs: endpointLookup.timeoutMs,
          protocol: new URL(settings.vertex.upstreamFor(null) ?? 'https://x').protocol === 'http:' ? 'http:' : 'https:',
          // Against Google's own hosts, a dedicated host must be in Google's dedicated-endpoint domain.
          ...(settings.vertex.googleUpstream ? { allowedHost: (host: string) => host.endsWith(DEDICATED_ENDPOINT_DOMAIN) } : {}),
          onLookup: (result, error) => {
            metrics.endpointLookup(result);
            if (result === 'error')
              logger.warn({ error: (error as Error | undefined)?.message }, 'endpoint lookup failed; its calls go to the regional host');
          },
        });
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
  const usageMetrics = createUsageMetrics(registry, settings.usage);
  // Limit rules (the store connects in the background: a Redis outage at start is handled like any other).
  const limits: LimitRuntime | undefined =
    settings.limits.rules.length === 0 ? undefined : await startLimits(settings.limits, { logger, registry, usage: usageMetrics });
  // Opened before anything listens: a store that cannot be opened (read-only filesystem) stops the program.
  const auditTrail: AuditTrail | undefined =
    settings.audit.stores.length === 0
      ? undefined
      : await openAuditTrail(settings.audit, logger, {
          batch: metrics.auditBatch,
          refused: metrics.auditRefused,
          dropped: metrics.auditDropped,
          decisionCommit: metrics.auditDecisionCommit,
        });

  const flood = auditTrail === undefined ? undefined : new FloodAggregator({ emit: (record) => auditTrail.recordFinal(record) });
  flood?.start();

  const traceProject = settings.vertex.traceProject;
  const writeAuditLine = options.writeAuditLine ?? ((line: string) => process.stdout.write(line));
  const auditListeners: AuditListener[] = [
    ...(settings.audit.stdout
      ? [
          (record: AuditRecord) =>
            writeAuditLine(
              `${JSON.stringify(toCloudLoggingEntry(record, { traceProject, format: settings.audit.stdoutFormat ?? 'compact' }))}\n`,
            ),
        ]
      : []),
    // Unauthenticated floods are stored as per-minute counts, so they cost bounded space (metrics still count each one).
    ...(flood === undefined ? [] : [(record: AuditRecord) => flood.offer(record)]),
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
  const consoleSettings = settings.audit.console;
  const auditConsole =
    consoleSettings?.enabled === true
      ? {
          rules: () => reloader.current.rules ?? [],
          iap:
            consoleSettings.iapAudience === undefined
              ? undefined
              : createIapVerifier({
                  audience: consoleSettings.iapAudience,
                  jwksUri: consoleSettings.iapJwksUri,
                  clockSkewSec: settings.authentication.clockSkewSec,
                  fetchTimeoutMs: settings.authentication.jwksFetchTimeoutMs,
                }),
        }
      : undefined;
  const proxyApp = await buildProxyApp(settings, {
    logger,
    verifier,
    labels,
    policy,
    labelIndependentPolicy,
    credential,
    dispatcher,
    auditListeners,
    callbacks,
    auditTrail,
    console: auditConsole,
    tracing,
    identities,
    endpointHosts,
    limiter: limits?.limiter,
  });
  const readiness = (): ReadinessCheck[] => [
    ...verifier.keyStatus().map((k) => ({
      name: `issuer:${k.issuer}`,
      ready: k.ready,
      detail: { keyIds: k.keyIds, ageSeconds: k.ageMs === undefined ? null : Math.round(k.ageMs / 1000) },
    })),
    { name: 'google-credential', ready: credential.ready(), detail: credential.describe() },
    // Not a readiness condition: one team's missing grant must not take every team's proxy out of service.
    ...(identities === undefined ? [] : [{ name: 'team-identities', ready: true, detail: { accounts: identities.describe() } }]),
    ...(endpointLookupClient === undefined ? [] : [{ name: 'endpoint-lookup', ready: endpointLookupClient.ready(), detail: {} }]),
    ...kube.readiness(),
    // An invalid new file never makes the proxy unready (the old policy serves); the detail says what was refused.
    { name: 'policy', ready: true, detail: { ...reloader.status() } },
    ...(auditTrail === undefined
      ? []
      : [
          {
            name: 'audit-store',
            ready: auditTrail.healthy(),
            detail: { durability: auditTrail.durability, stores: settings.audit.stores.map((s) => s.type) },
          },
        ]),
  ];
  const adminApp = await buildAdminApp({
    logger,
    registry,
    shuttingDown: () => shuttingDown,
    readyzDetails: settings.server.readyzDetails,
    ...(callbacks === undefined ? {} : { jwks: () => callbacks.jwks() }),
    readiness,
  });

  // Keys and the first token are fetched in the background; /readyz says when they are in hand.
  void verifier.start();
  void kube.start((predicate) => verifier.evict(predicate));
  reloader.start();
  await credential.start();
  identities?.start();

  await adminApp.listen({ host: settings.server.adminHost, port: settings.server.adminPort });
  await proxyApp.listen({ host: settings.server.host, port: settings.server.port });
  // Loading the client library takes seconds of CPU: after the ports are open, not before (/readyz waits for it).
  endpointLookupClient?.start();
  // What start-up allocated and no longer needs goes back to the system once, when the proxy first turns ready (lib/startup-memory.ts).
  const stopReleaseWatch = releaseStartupMemoryWhenReady({
    ready: () => !shuttingDown && readiness().every((check) => check.ready),
    onReleased: (released) =>
      logger.info(
        released === undefined
          ? {}
          : { rssBeforeMiB: mib(released.rssBefore), rssAfterMiB: mib(released.rssAfter), ms: Math.round(released.ms) },
        released === undefined ? 'start-up memory: no memory-reducing collection in this V8' : 'start-up memory released',
      ),
  });

  const dataAddress = proxyApp.server.address() as AddressInfo;
  const adminAddress = adminApp.server.address() as AddressInfo;

  return {
    dataAddress,
    adminAddress,
    reload: () => reloader.reload('signal'),
    async close() {
      // Readiness fails from here on; requests are still accepted and served for the drain period.
      shuttingDown = true;
      stopReleaseWatch();
      if (settings.server.drainPeriodMs > 0) {
        logger.info({ drainPeriodMs: settings.server.drainPeriodMs }, 'draining: /readyz fails, still serving');
        await new Promise((resolve) => setTimeout(resolve, settings.server.drainPeriodMs));
      }
      await closeWithGrace(proxyApp, settings.server.shutdownGraceMs, logger);
      await adminApp.close();
      reloader.stop();
      kube.stop();
      verifier.stop();
      credential.stop();
      identities?.stop();
      await dispatcher.close().catch(() => undefined);
      // After the data port drained: every record of a finished request is in the queue.
      flood?.stop();
      await auditTrail?.close();
      await callbacks?.close();
      await limits?.close();
      // Last: the spans of the drained requests are exported before the process exits.
      await tracing.shutdown();
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

function mib(bytes: number): number {
  return Math.round((bytes / 2 ** 20) * 10) / 10;
}
