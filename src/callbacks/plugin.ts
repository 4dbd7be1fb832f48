/**
 * The callback routes on the data port: Vertex AI workloads (Google ID
 * tokens) → in-cluster Services. An encapsulated context with its own steps,
 * in request-flow order:
 *
 *   inbound ─ route ─ authenticate (Google only) ─ authorize caller ─ body limit ─ forward with assertion
 *
 * - route: strict raw-path checks, longest-prefix match, method allowlist
 *   (`request.kvp.route`); refusals happen before the token is even looked at.
 * - authenticate: the shared `authnPlugin` with `accept: 'google'`: a
 *   Kubernetes token is refused (401) here, as a Google token is on the
 *   Vertex AI routes.
 * - authorize: the shared authorize step; the route's `callers` decide
 *   (callbacks/caller-rules.ts; `request.kvp.decision`, 403 otherwise).
 * - forward: the caller's credentials stripped, the proxy's signed assertion
 *   added, then the one forwarding path (forward/dispatch.ts) under the
 *   route's body limit and timeout.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_INVALID_PATH (400), ERR_REQUEST_UNKNOWN_ROUTE (404),
 *   ERR_REQUEST_METHOD_NOT_ALLOWED (405), ERR_AUTHN_* (401), ERR_AUTHZ_DENIED (403),
 *   ERR_REQUEST_BODY_TOO_LARGE (413), ERR_FORWARD_UPSTREAM_UNREACHABLE (502), ERR_FORWARD_UPSTREAM_TIMEOUT (504)
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import { authnPlugin } from '../authn/plugin.js';
import type { TokenVerifier } from '../authn/verifier.js';
import { ProxyError, toProxyError, unauthenticated } from '../errors.js';
import { bodyTooLarge, limitChunkedBody } from '../forward/body-limit.js';
import { dispatchUpstream } from '../forward/dispatch.js';
import { registerForwardRoutes } from '../forward/routes.js';
import { handOnBody } from '../forward/body-progress.js';
import { InFlightLimiter, inFlightPlugin } from '../forward/in-flight.js';
import { commitDecision } from '../audit-commit/plugin.js';
import type { AuditTrail } from '../audit/trail.js';
import { authorizePlugin } from '../authorize/plugin.js';
import { pipelineIncomplete } from '../authorize/refusals.js';
import type { AssertionSigner } from './assertion.js';
import { callerRules } from './caller-rules.js';
import { callbackRequestHeaders } from './header-policy.js';
import type { RouteMatch, RouteTable } from './routes.js';

const ROUTE_LIMIT = ' for this callback route';

export interface CallbacksPluginOptions {
  readonly routes: RouteTable;
  readonly signer: AssertionSigner;
  readonly assertionHeader: string;
  readonly verifier: TokenVerifier;
  /** Connection pool to the in-cluster upstreams (undici Agent, TLS verified). */
  readonly dispatcher: Dispatcher;
  /** Strict durability: an allowed callback's decision record is committed before it is forwarded. */
  readonly auditTrail?: AuditTrail | undefined;
  /** The per-caller in-flight cap (shared with the Vertex AI routes). */
  readonly inFlight?: InFlightLimiter;
  /** `server.bodyIdleTimeout`; 0 or absent: off. */
  readonly bodyIdleTimeoutMs?: number;
}

export async function callbacksPlugin(app: FastifyInstance, options: CallbacksPluginOptions): Promise<void> {
  const { routes, signer, assertionHeader, verifier, dispatcher, auditTrail, inFlight, bodyIdleTimeoutMs = 0 } = options;
  const strict = auditTrail?.durability === 'strict' ? auditTrail : undefined;
  const matches = new WeakMap<FastifyRequest, RouteMatch>();
  const assertions = new WeakMap<FastifyRequest, string>();

  // ⓪ inbound + route: before anything else, so every record of this context says inbound.
  app.addHook('onRequest', (request, _reply, done) => {
    request.kvp.direction = 'inbound';
    try {
      const match = routes.match(request.method, request.url, (route) => {
        request.kvp.route = route.prefix;
        request.kvp.upstreamBase = route.upstreamOrigin;
      });
      matches.set(request, match);
      done();
    } catch (error) {
      done(error as Error);
    }
  });

  // ① authenticate: Google ID tokens only.
  await app.register(authnPlugin, { verifier, accept: 'google' });
  if (inFlight !== undefined) await app.register(inFlightPlugin, { limiter: inFlight });

  // ② authorize: the shared step, with the route as the question and the route's callers as the rules.
  await app.register(
    authorizePlugin({
      classifier: (request) => {
        const match = matches.get(request);
        const principal = request.kvp.principal;
        if (match === undefined || principal?.kind !== 'google')
          throw pipelineIncomplete('callback authorization reached without route or identity');
        const { tokenAudiences, prefix } = match.route;
        if (tokenAudiences !== undefined && !principal.audiences.some((a) => tokenAudiences.has(a))) {
          // The issuer accepted the audience, but it names another route: a token for one callback URL is not a pass for all of them.
          throw unauthenticated('ERR_AUTHN_INVALID_TOKEN', `The token audience is not accepted on ${prefix}.`, {
            reason: 'wrong-audience',
          });
        }
        return match;
      },
      rules: callerRules,
    }),
  );

  // ③ the declared body length, and the assertion.
  app.addHook('onRequest', (request, _reply, done) => {
    const match = matches.get(request);
    const principal = request.kvp.principal;
    if (match === undefined || principal?.kind !== 'google' || request.kvp.decision?.allowed !== true) {
      done(pipelineIncomplete('callback forward reached without an allowed decision'));
      return;
    }
    const { route } = match;
    const length = request.headers['content-length'];
    if (length !== undefined) {
      const bytes = Number(length);
      request.kvp.requestBytes = bytes;
      if (bytes > route.bodyLimitBytes) {
        done(bodyTooLarge(route.bodyLimitBytes, ROUTE_LIMIT));
        return;
      }
    }
    // Signed here, before the body starts to flow, so the handler hands the stream to the forwarder at once.
    signer
      .sign({ audience: route.audience, email: principal.email, subject: principal.subject, route: route.prefix, requestId: request.id })
      .then((assertion) => {
        assertions.set(request, assertion);
        return strict === undefined ? undefined : commitDecision(strict, request);
      })
      .then(
        () => done(),
        (error: unknown) => done(error instanceof ProxyError ? error : toProxyError(error)),
      );
  });

  app.addHook('preParsing', (request, _reply, payload, done) => {
    const match = matches.get(request);
    if (match === undefined) {
      done(null, payload);
      return;
    }
    handOnBody(request, limitChunkedBody(request, payload, match.route.bodyLimitBytes, ROUTE_LIMIT), bodyIdleTimeoutMs, (error, body) =>
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- a stream typed by its interface
      done(error, body as typeof payload),
    );
  });

  const forward = (request: FastifyRequest, reply: FastifyReply): void => {
    const match = matches.get(request);
    const assertion = assertions.get(request);
    const principal = request.kvp.principal;
    if (match === undefined || assertion === undefined || principal?.kind !== 'google') {
      reply.send(
        new ProxyError('ERR_INTERNAL', 'callback forward reached without route, identity or assertion', {
          reason: 'pipeline-incomplete',
        }),
      );
      return;
    }
    assertions.delete(request);
    const { route } = match;
    const query = request.url.indexOf('?');
    // The one forwarding path (never retried: a callback is usually a POST, and a retried POST may not be idempotent).
    dispatchUpstream(dispatcher, request, reply, {
      origin: route.upstreamOrigin,
      // The route's forwarded path, then the caller's query exactly as sent.
      path: `${match.target.slice(route.upstreamOrigin.length)}${query === -1 ? '' : request.url.slice(query)}`,
      headers: callbackRequestHeaders(request.headers, { assertionHeader, assertion, callerEmail: principal.email, requestId: request.id }),
      timeoutMs: route.timeoutMs,
      upstreamName: `callback upstream for ${route.prefix}`,
      // The backend's spans join the caller's trace, under the proxy's client span.
      span: (host) => ({
        name: `${request.method} callback:${route.prefix}`,
        attributes: { 'http.request.method': request.method, 'server.address': host, 'kvp.callback_route': route.prefix },
      }),
    });
  };

  // `prefix` and `prefix/*` of every route (`/prefix/*` also matches
  // `/prefix/`), with every forwarded method on each, so a method a route does
  // not allow gets this context's 405, not another route family's.
  registerForwardRoutes(
    app,
    routes.routes.flatMap((route) => [route.prefix, `${route.prefix}/*`]),
    forward,
  );
}
