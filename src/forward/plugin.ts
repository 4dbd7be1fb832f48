/**
 * Step ⑤ forward: the authorized request goes to the Vertex AI host its
 * location picked, with the caller's credentials replaced by the proxy's own
 * (or its team's Google identity), through the one forwarding path
 * (dispatch.ts): bodies streamed both ways, server-sent events reaching the
 * caller chunk by chunk, token usage read as the answer passes, upstream
 * failures mapped to Google error JSON.
 *
 * In: `request.kvp.upstreamBase` (an origin) and the classified operation.
 * Out: the response, `request.kvp.upstream*` timings, status, request id and usage.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_BODY_TOO_LARGE (413), ERR_FORWARD_CREDENTIAL_UNAVAILABLE (503),
 *   ERR_FORWARD_IDENTITY_UNAVAILABLE (503), and what dispatch.ts answers (502, 504)
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Dispatcher } from 'undici';
import { ProxyError } from '../errors.js';
import type { RequestContext } from '../request-context.js';
import type { UpstreamCredential } from './credentials.js';
import type { TeamIdentities } from './identities.js';
import { bodyTooLarge, limitChunkedBody } from './body-limit.js';
import { dispatchUpstream } from './dispatch.js';
import { registerForwardRoutes } from './routes.js';
import { upstreamRequestHeaders } from './header-policy.js';
import { handOnBody } from './body-progress.js';
import { vertexSpanStart } from '../tracing/attributes.js';
import { usageFraming } from '../usage/operations.js';
import { createUsageMeter, type UsageMeter } from '../usage/usage.js';

export interface ForwardPluginOptions {
  readonly credential: UpstreamCredential;
  /** The connection pool to Vertex AI (undici Agent with timeouts set). */
  readonly dispatcher: Dispatcher;
  readonly bodyLimitBytes: number;
  /** `server.bodyIdleTimeout`; 0 turns it off. */
  readonly bodyIdleTimeoutMs?: number;
  /** `vertex.identities`: callers whose requests go upstream as their team's Google service account. */
  readonly identities?: TeamIdentities | undefined;
  /** Send `X-Goog-Request-Reason: <request id>` upstream (attribution.requestReason). */
  readonly requestReason?: boolean;
}

function identityUnavailable(): ProxyError {
  return new ProxyError('ERR_FORWARD_IDENTITY_UNAVAILABLE', 'upstream identity unavailable', {
    reason: 'identity-unavailable',
  });
}

export const forwardPlugin = fp<ForwardPluginOptions>(
  (app, { credential, dispatcher, bodyLimitBytes, bodyIdleTimeoutMs = 0, identities, requestReason = false }, registered) => {
    const upstreamAuthorization = new WeakMap<FastifyRequest, string>();

    app.addHook('onRequest', (request, _reply, done) => {
      const length = request.headers['content-length'];
      if (length !== undefined) {
        const bytes = Number(length);
        request.kvp.requestBytes = bytes;
        if (bytes > bodyLimitBytes) {
          done(bodyTooLarge(bodyLimitBytes));
          return;
        }
      }
      const subject = request.kvp.subject;
      const team = identities === undefined || subject === undefined ? undefined : identities.serviceAccountFor(subject);
      if (identities !== undefined && team !== undefined) {
        // The team's identity or nothing: never the proxy's own instead (fail closed).
        request.kvp.upstreamIdentity = team;
        const teamAuthorization = identities.authorization(team);
        const use = (value: string | undefined): void => {
          if (value === undefined) {
            done(identityUnavailable());
            return;
          }
          upstreamAuthorization.set(request, value);
          done();
        };
        if (typeof teamAuthorization === 'object') teamAuthorization.then(use, () => done(identityUnavailable()));
        else use(teamAuthorization);
        return;
      }
      const authorization = credential.authorization();
      if (authorization === undefined) {
        // Fail closed: without the proxy's own credential nothing is forwarded (and never the caller's).
        done(
          new ProxyError('ERR_FORWARD_CREDENTIAL_UNAVAILABLE', 'upstream credential unavailable', {
            reason: 'credential-unavailable',
          }),
        );
        return;
      }
      upstreamAuthorization.set(request, authorization);
      done();
    });

    // A Content-Length body is bounded by the check above; only chunked bodies need counting.
    app.addHook('preParsing', (request, _reply, payload, done) => {
      handOnBody(request, limitChunkedBody(request, payload, bodyLimitBytes), bodyIdleTimeoutMs, (error, body) =>
        // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- a stream typed by its interface
        done(error, body as typeof payload),
      );
    });

    const forward = (request: FastifyRequest, reply: FastifyReply): void => {
      const ctx = request.kvp;
      const headers = upstreamRequestHeaders(request.headers, upstreamAuthorization.get(request) as string);
      upstreamAuthorization.delete(request);
      // Google's records then name the request the audit record is keyed by (the caller's own x-goog-* headers were dropped).
      if (requestReason) headers['x-goog-request-reason'] = request.id;
      const origin = ctx.upstreamBase as string;
      dispatchUpstream(dispatcher, request, reply, {
        origin,
        // The path and query go up exactly as the caller sent them: classification
        // already refused every path that is not a canonical Vertex AI method.
        path: request.url,
        headers,
        ownCredential: true,
        throughFramework: ctx.operation?.spec.longRunning === true,
        span: (host) => vertexSpanStart(ctx.operation, request.method, origin, host),
        meter: (statusCode, responseHeaders) => usageMeter(ctx, statusCode, responseHeaders),
      });
    };

    // Every path (classification already refused what is not a Vertex AI method), every method a Vertex AI method uses.
    registerForwardRoutes(app, ['/', '/*'], forward);
    registered();
  },
  { name: 'kvp-forward', fastify: '5.x', dependencies: ['kvp-authorize'] },
);

/** The usage tap of a successful answer of an operation that reports token usage; undefined for every other answer. */
function usageMeter(ctx: RequestContext, statusCode: number, headers: IncomingHttpHeaders): UsageMeter | undefined {
  if (statusCode < 200 || statusCode >= 300) return undefined;
  const contentType = headers['content-type'];
  const framing = usageFraming(ctx.operation, typeof contentType === 'string' ? contentType : undefined);
  if (framing === undefined) return undefined;
  ctx.usage = { tokens: undefined, modelVersion: undefined };
  return createUsageMeter(framing, (usage) => (ctx.usage = usage));
}
