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
 *   added, small bodies (at most 64 KiB, with a content type) sent whole and
 *   larger ones streamed under the route's limit, the route's timeout.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_INVALID_PATH (400), ERR_REQUEST_UNKNOWN_ROUTE (404),
 *   ERR_REQUEST_METHOD_NOT_ALLOWED (405), ERR_AUTHN_* (401), ERR_AUTHZ_DENIED (403),
 *   ERR_REQUEST_BODY_TOO_LARGE (413), ERR_FORWARD_UPSTREAM_UNREACHABLE (502), ERR_FORWARD_UPSTREAM_TIMEOUT (504)
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import replyFrom from '@fastify/reply-from';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import { authnPlugin } from '../authn/plugin.js';
import type { TokenVerifier } from '../authn/verifier.js';
import { ProxyError, toProxyError, unauthenticated } from '../errors.js';
import { bodyTooLarge, limitChunkedBody, readSmallBodyThen, smallDeclaredBody } from '../forward/body-limit.js';
import { downstreamResponseHeaders } from '../forward/header-policy.js';
import { upstreamFailure } from '../forward/upstream-errors.js';
import { watchBodyProgress } from '../forward/body-progress.js';
import { InFlightLimiter, inFlightPlugin } from '../forward/in-flight.js';
import { commitDecision } from '../audit-commit/plugin.js';
import type { AuditTrail } from '../audit/trail.js';
import { authorizePlugin } from '../authorize/plugin.js';
import { pipelineIncomplete } from '../authorize/refusals.js';
import type { AssertionSigner } from './assertion.js';
import { callerRules } from './caller-rules.js';
import { callbackRequestHeaders } from './header-policy.js';
import type { CallbackRoute, RouteMatch, RouteTable } from './routes.js';

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

/** Methods registered on every prefix, so a disallowed one gets this context's 405, not another route family. */
const REGISTERED_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS'];

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
    done(
      null,
      match === undefined
        ? payload
        : // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- a stream typed by its interface
          (watchBodyProgress(
            request,
            limitChunkedBody(request, payload, match.route.bodyLimitBytes, ROUTE_LIMIT),
            bodyIdleTimeoutMs,
          ) as typeof payload),
    );
  });

  // Bodies are streamed to the backend untouched, whatever their type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  // Our own pool: reply-from's built-in undici options turn TLS verification off.
  await app.register(replyFrom, { undici: dispatcher as never, disableCache: true, disableRequestLogging: true });

  const forward = (request: FastifyRequest, reply: FastifyReply): void => {
    const match = matches.get(request);
    const assertion = assertions.get(request);
    const principal = request.kvp.principal;
    if (match === undefined || assertion === undefined || principal?.kind !== 'google') {
      reply.send(
        new ProxyError('ERR_INTERNAL', 'INTERNAL', 'callback forward reached without route, identity or assertion', {
          reason: 'pipeline-incomplete',
        }),
      );
      return;
    }
    assertions.delete(request);
    // A small body goes whole (see BUFFERED_BODY_MAX_BYTES); reply-from takes
    // a replacement body with its content type, so only bodies that declare one.
    const declared = smallDeclaredBody(request);
    const contentType = request.headers['content-type'];
    if (declared !== undefined && declared > 0 && contentType !== undefined && request.body instanceof Readable) {
      readSmallBodyThen(request, reply, request.body, (bytes) =>
        send(reply, match, assertion, principal.email, { body: bytes, contentType }),
      );
      return;
    }
    send(reply, match, assertion, principal.email, {});
  };

  const send = (
    reply: FastifyReply,
    match: RouteMatch,
    assertion: string,
    callerEmail: string,
    body: { body?: Buffer; contentType?: string },
  ): void => {
    const { route } = match;
    reply.from(match.target, {
      ...body,
      timeout: route.timeoutMs,
      // No retries: a callback is usually a POST, and a retried POST may not be idempotent.
      retryDelay: () => null,
      rewriteRequestHeaders: (req: FastifyRequest, headers: IncomingHttpHeaders) => {
        req.kvp.upstreamStartedAt = process.hrtime.bigint();
        const out = callbackRequestHeaders(headers, { assertionHeader, assertion, callerEmail, requestId: req.id });
        const parent = req.kvp.span;
        if (parent !== undefined) {
          // The backend's spans join the caller's trace, under the proxy's client span.
          const span = parent.child(`${req.method} callback:${route.prefix}`, 'client', {
            'http.request.method': req.method,
            'server.address': match.target.split('/')[2],
            'kvp.callback_route': route.prefix,
          });
          req.kvp.upstreamSpan = span;
          span.inject(out);
        }
        return out as IncomingHttpHeaders;
      },
      rewriteHeaders: (headers: IncomingHttpHeaders, req: FastifyRequest) => {
        req.kvp.upstreamHeadersAt = process.hrtime.bigint();
        return downstreamResponseHeaders(headers) as IncomingHttpHeaders;
      },
      onResponse: (req: FastifyRequest, rep: FastifyReply, res: { statusCode: number; stream: NodeJS.ReadableStream }) => {
        req.kvp.upstreamStatus = res.statusCode;
        res.stream.once('error', (error: Error) => {
          req.kvp.upstreamStreamError = error.message;
        });
        rep.send(res.stream);
      },
      onError: (rep: FastifyReply, { error }: { error: Error & { code?: string; cause?: unknown } }) => {
        rep.send(upstreamFailure(rep.request, error, `callback upstream for ${route.prefix}`));
      },
    } as never);
  };

  for (const route of routes.routes) registerRoute(app, route, forward);
}

function registerRoute(app: FastifyInstance, route: CallbackRoute, handler: (request: FastifyRequest, reply: FastifyReply) => void): void {
  // `/prefix/*` also matches `/prefix/`.
  for (const url of [route.prefix, `${route.prefix}/*`]) {
    app.route({ method: REGISTERED_METHODS, url, handler });
  }
}
