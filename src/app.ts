/**
 * The data port, composed in request-flow order. Read top to bottom, this is
 * what happens to every request to Vertex AI:
 *
 *   audit ─ authenticate ─ identify ─ classify ─ authorize ─ limits ─ inspect ─ (strict: commit) ─ forward ─ (audit record on close)
 *
 * Each step is an `onRequest` hook registered by its plugin, so a refusal
 * stops the request before its body is read, and the steps run in exactly
 * the order they are registered below. Only inspect (a `preParsing` hook)
 * reads a body, and only for the operations one of its rules asks for; the
 * strict audit commit (`preHandler`) follows it, so a body refusal is part of
 * the decision record. Each route family (Vertex AI, the audit API and
 * console, callbacks) is its own encapsulated context with its own steps;
 * the audit step is shared by all, and each family registers the one
 * authorize step (src/authorize/) with its own classifier. The request flow
 * and each step's refusals: docs/architecture.md.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { auditPlugin, createAuditStarter, noteConnectionRefusal, type AuditListener } from './audit/plugin.js';
import { authnPlugin } from './authn/plugin.js';
import type { TokenVerifier } from './authn/verifier.js';
import type { Settings } from './config/load.js';
import { GOOGLE_ERROR_CONTENT_TYPE, ProxyError, toGoogleErrorBody, toProxyError } from './errors.js';
import type { UpstreamCredential } from './forward/credentials.js';
import { forwardPlugin } from './forward/plugin.js';
import type { TeamIdentities } from './forward/identities.js';
import type { NamespaceLabelSource } from './identity/labels.js';
import { identityPlugin } from './identity/plugin.js';
import { lazyChildLoggerFactory } from './lib/logger.js';
import type { CompiledPolicy } from './policy/compile.js';
import { authorizePlugin, classifiedOperation, createPolicyRules } from './authorize/plugin.js';
import { classifyPlugin } from './classify/plugin.js';
import { createBodyResourcesRule } from './vertex/body-resources.js';
import type { EndpointHosts } from './vertex/endpoint-hosts.js';
import { endpointHostsPlugin } from './endpoint-hosts/plugin.js';
import { auditDurabilityPlugin } from './audit-commit/plugin.js';
import type { BodyRule } from './inspect/body-rule.js';
import { inspectPlugin } from './inspect/plugin.js';
import { jobConditionsRule } from './policy/job-body-rule.js';
import { jobLabelsRule } from './attribution/job-labels.js';
import { auditApiOperation, auditQueryRoutes, auditReadClassifier } from './audit/query-api.js';
import type { AuditTrail } from './audit/trail.js';
import { callbacksPlugin } from './callbacks/plugin.js';
import type { CallbacksRuntime } from './callbacks/runtime.js';
import { InFlightLimiter, inFlightPlugin } from './forward/in-flight.js';
import { consolePlugin, type ConsoleOptions } from './console/plugin.js';
import type { Tracing } from './tracing/tracing.js';
import type { Limiter } from './limits/limiter.js';
import { limitsPlugin } from './limits/plugin.js';
import { createRequestLabelsRule } from './usage/request-labels.js';

export interface ProxyDeps {
  readonly logger: Logger;
  readonly verifier: TokenVerifier;
  readonly labels: NamespaceLabelSource;
  readonly policy: () => CompiledPolicy;
  /** The policy as applied while the namespace-label view is stale (see policy/label-independent.ts). */
  readonly labelIndependentPolicy?: () => CompiledPolicy;
  readonly credential: UpstreamCredential;
  readonly dispatcher: Dispatcher;
  readonly auditListeners: readonly AuditListener[];
  /** The durable audit trail (strict mode's step before forward, and the query API's store). */
  readonly auditTrail?: AuditTrail | undefined;
  /** Present when callback routes are configured. */
  readonly callbacks?: CallbacksRuntime | undefined;
  /** The per-caller in-flight cap shared by both route families (default: one from `server.maxInFlightPerCaller`). */
  readonly inFlight?: InFlightLimiter;
  /** Present when `audit.console.enabled`. */
  readonly console?: Pick<ConsoleOptions, 'rules' | 'iap'> | undefined;
  /** OpenTelemetry tracing (TRACING_OFF, or absent, when off). */
  readonly tracing?: Tracing;
  /** Present when `vertex.identities` maps callers to Google service accounts. */
  readonly identities?: TeamIdentities | undefined;
  /** Present when endpoints may have hosts of their own (`vertex.endpointHosts`, `vertex.endpointLookup`). */
  readonly endpointHosts?: EndpointHosts | undefined;
  /** Present when limit rules are configured. */
  readonly limiter?: Limiter | undefined;
}

export async function buildProxyApp(settings: Settings, deps: ProxyDeps): Promise<FastifyInstance> {
  const startAudit = createAuditStarter({
    listeners: deps.auditListeners,
    direction: 'outbound',
    onListenerError: (error) => deps.logger.error({ err: error }, 'audit listener failed'),
    ...(deps.tracing === undefined ? {} : { tracing: deps.tracing }),
  });

  const app = Fastify({
    // Without the cast Fastify's instance takes pino's Logger type and no longer matches FastifyInstance.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- see above
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // Hot path: a request that logs nothing does not pay for a pino child logger.
    childLoggerFactory: lazyChildLoggerFactory as never,
    genReqId: () => randomUUID(),
    // The caller does not get to choose the id that audit records are keyed by.
    requestIdHeader: false,
    keepAliveTimeout: settings.server.keepAliveTimeoutMs,
    // fastify's default is no limit: a client trickling a body would hold its request (and a small body's buffer) forever.
    requestTimeout: settings.server.requestTimeoutMs,
    // Node enforces the request timeout in a periodic connection check (run it often enough for the limit)
    // and only while its headers timeout is not longer than the request timeout.
    http: requestTimeoutOptions(settings.server.requestTimeoutMs),
    // Protocol errors and timeouts before a request reached fastify: Google's error shape too, not fastify's.
    clientErrorHandler: clientError,
    return503OnClosing: true,
    bodyLimit: settings.server.bodyLimitBytes,
    routerOptions: { ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 1024 },
    // Requests the router cannot even parse still get a Google error body and an audit record.
    frameworkErrors: (error, request, reply) => {
      startAudit(request, reply);
      sendError(
        request,
        reply,
        new ProxyError('ERR_REQUEST_INVALID_PATH', 'The request URL is malformed.', {
          cause: error,
          reason: 'malformed-url',
        }),
      );
    },
  });

  app.setErrorHandler((error: FastifyError | ProxyError, request, reply) => {
    sendError(request, reply, fromFrameworkError(error));
  });
  app.setNotFoundHandler((request, reply) => {
    // Unreachable for the methods the forwarder registers; other HTTP methods end here.
    sendError(
      request,
      reply,
      new ProxyError('ERR_REQUEST_UNKNOWN_METHOD', `Method ${request.method} is not supported.`, { reason: 'unknown-method' }),
    );
  });

  // Every request on the data port, whatever its route, gets a context and one audit record.
  await app.register(auditPlugin, { startAudit });
  const inFlight = deps.inFlight ?? new InFlightLimiter(settings.server.maxInFlightPerCaller);
  // One policy, applied alike by every family's authorize step (stale-label rule included).
  const policyRules = createPolicyRules({
    policy: deps.policy,
    ...(deps.labelIndependentPolicy ? { labelIndependentPolicy: deps.labelIndependentPolicy } : {}),
  });

  // Cluster → Vertex AI. The steps' hooks are scoped to this context, so other
  // routes on the data port (audit API, callbacks) compose their own steps.
  await app.register(async function vertexApi(scope) {
    await scope.register(authnPlugin, { verifier: deps.verifier, accept: 'kubernetes' });
    // One caller cannot hold more than its share of requests (and so of the upstream pool).
    await scope.register(inFlightPlugin, { limiter: inFlight });
    await scope.register(identityPlugin, { labels: deps.labels });
    await scope.register(classifyPlugin, {
      projects: settings.vertex.projects,
      projectIdByNumber: settings.vertex.projectIdByNumber,
      locations: settings.vertex.locations,
      upstreamFor: settings.vertex.upstreamFor,
    });
    await scope.register(authorizePlugin({ classifier: classifiedOperation, rules: policyRules }));
    // Rate limits, concurrency and token budgets: refused before the body is read.
    if (deps.limiter !== undefined) await scope.register(limitsPlugin, { limiter: deps.limiter });
    // Checks that need the request body, in the order they run. With none, bodies stream untouched.
    // Dedicated and private endpoints: an allowed prediction call goes to its endpoint's own host.
    await scope.register(endpointHostsPlugin, { endpointHosts: deps.endpointHosts });
    // Checks that need the request body, in the order they run. With none, bodies stream untouched.
    const bodyRules: BodyRule[] = [];
    // Resources a body names (chat model, cachedContent, batch model, tuning baseModel, deployedModel.model), authorized like the path's.
    bodyRules.push(
      createBodyResourcesRule({
        policy: deps.policy,
        ...(deps.labelIndependentPolicy ? { labelIndependentPolicy: deps.labelIndependentPolicy } : {}),
        scope: settings.vertex,
      }),
    );
    bodyRules.push(jobConditionsRule());
    if (settings.attribution.jobLabels) bodyRules.push(jobLabelsRule());
    if (settings.attribution.requestLabels) bodyRules.push(createRequestLabelsRule());
    await scope.register(inspectPlugin, {
      rules: bodyRules,
      bodyLimitBytes: settings.server.bodyLimitBytes,
      bodyIdleTimeoutMs: settings.server.bodyIdleTimeoutMs,
    });
    // Strict durability: the decision record is committed before anything is forwarded.
    await scope.register(auditDurabilityPlugin, { trail: deps.auditTrail });
    await scope.register(forwardPlugin, {
      credential: deps.credential,
      dispatcher: deps.dispatcher,
      bodyLimitBytes: settings.server.bodyLimitBytes,
      bodyIdleTimeoutMs: settings.server.bodyIdleTimeoutMs,
      identities: deps.identities,
      requestReason: settings.attribution.requestReason,
    });
  });

  // Auditors → the audit trail: the same authentication, then the policy's `audit.read` grant.
  await app.register(async function auditApi(scope) {
    await scope.register(authnPlugin, { verifier: deps.verifier, accept: 'kubernetes' });
    await scope.register(identityPlugin, { labels: deps.labels });
    await scope.register(authorizePlugin({ classifier: auditReadClassifier(auditApiOperation), rules: policyRules }));
    await scope.register(auditQueryRoutes, { store: deps.auditTrail?.queryStore });
  });

  // Auditors in a browser (/audit/ui/): IAP or a Kubernetes token, the same `audit.read` grant and query functions.
  if (deps.console !== undefined) {
    await app.register(consolePlugin, {
      ...deps.console,
      store: deps.auditTrail?.queryStore,
      policy: deps.policy,
      policyRules,
      verifier: deps.verifier,
      labels: deps.labels,
    });
  }

  // Vertex AI → the cluster: callback routes, Google ID tokens, in their own context.
  if (deps.callbacks !== undefined) {
    const { routes, signer, assertionHeader, dispatcher } = deps.callbacks;
    await app.register(callbacksPlugin, {
      routes,
      signer,
      assertionHeader,
      dispatcher,
      verifier: deps.verifier,
      auditTrail: deps.auditTrail,
      inFlight,
      bodyIdleTimeoutMs: settings.server.bodyIdleTimeoutMs,
    });
  }
  return app;
}

/** The one place an error becomes a response. */
function sendError(request: FastifyRequest, reply: FastifyReply, error: ProxyError): void {
  // Errors raised before the first hook (routing, parsing) reach here with neither set.
  if (request.kvp as typeof request.kvp | null) request.kvp.failure ??= error;
  const log = (request.log as FastifyBaseLogger | undefined) ?? reply.log;
  if (error.httpStatus >= 500) log.error({ err: error.cause ?? error, code: error.code, requestId: request.id }, error.message);
  else log.debug({ code: error.code, reason: error.reason, requestId: request.id }, error.message);
  if (reply.sent || reply.raw.headersSent) {
    // The response already started (a stream broke mid-way): all we can do is end it.
    reply.raw.destroy();
    return;
  }
  // Headers an upstream response may have set before the failure must not leak into the error.
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
  if (error.headers) reply.headers(error.headers);
  reply
    .code(error.httpStatus)
    .type(GOOGLE_ERROR_CONTENT_TYPE)
    .send(JSON.stringify(toGoogleErrorBody(error, request.id)));
}

function requestTimeoutOptions(requestTimeoutMs: number): { connectionsCheckingInterval: number; headersTimeout?: number } {
  if (requestTimeoutMs === 0) return { connectionsCheckingInterval: 30_000 };
  return {
    connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(requestTimeoutMs / 4))),
    headersTimeout: Math.min(60_000, requestTimeoutMs),
  };
}

/**
 * Errors node raises on a connection (unparseable request, headers over the
 * limit, a request not received within `server.requestTimeout`): answered in
 * Google's error shape on the raw socket, which is then closed. A request
 * already being handled when its body times out is audited by its own
 * response's close, with the answer written here (408 request-timeout).
 */
function clientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const refusal =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new ProxyError('ERR_REQUEST_TIMEOUT', 'The request was not received in time.', {
          reason: 'request-timeout',
        })
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? new ProxyError('ERR_REQUEST_HEADERS_TOO_LARGE', 'Request headers are too large.', {
            reason: 'headers-too-large',
          })
        : new ProxyError('ERR_REQUEST_MALFORMED', 'The request is not valid HTTP.', { reason: 'malformed-http' });
  if (socket.writable) {
    // A timeout is the proxy's own decision about a live caller, who gets this answer. Protocol
    // errors also come from callers that went away mid-request (EOF inside a body): those stay 499.
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') noteConnectionRefusal(socket, refusal);
    const body = JSON.stringify(toGoogleErrorBody(refusal, randomUUID()));
    socket.write(
      `HTTP/1.1 ${refusal.httpStatus} ${STATUS_CODES[refusal.httpStatus] ?? ''}\r\nContent-Type: ` +
        `${GOOGLE_ERROR_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** fastify's own errors (body too large, bad content, timeouts) in our vocabulary. */
function fromFrameworkError(error: FastifyError | ProxyError): ProxyError {
  if (error instanceof ProxyError) return error;
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ProxyError('ERR_REQUEST_BODY_TOO_LARGE', 'Request body exceeds the size limit.', {
      reason: 'body-too-large',
    });
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return new ProxyError('ERR_REQUEST_MALFORMED', 'The request is malformed.', {
      cause: error,
      reason: 'malformed-request',
    });
  }
  return toProxyError(error);
}
