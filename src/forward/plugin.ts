/**
 * Step ⑤ forward: the authorized request goes to the Vertex AI host its
 * location picked, with the caller's credentials replaced by the proxy's own,
 * bodies streamed both ways (server-sent events reach the caller chunk by
 * chunk), and upstream failures mapped to Google error JSON.
 *
 * @module
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import proxy from '@fastify/http-proxy';
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Dispatcher } from 'undici';
import { ProxyError } from '../errors.js';
import type { UpstreamCredential } from './credentials.js';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './header-policy.js';

export interface ForwardPluginOptions {
  readonly credential: UpstreamCredential;
  /** The connection pool to Vertex AI (undici Agent with timeouts set). */
  readonly dispatcher: Dispatcher;
  readonly bodyLimitBytes: number;
}

function bodyTooLarge(limit: number): ProxyError {
  return new ProxyError('ERR_REQUEST_BODY_TOO_LARGE', 'INVALID_ARGUMENT', `Request body exceeds the limit of ${limit} bytes.`, {
    httpStatus: 413,
    reason: 'body-too-large',
  });
}

/** Counts a chunked request body and fails it once it passes the limit. */
class BodyLimiter extends Transform {
  #seen = 0;
  readonly #limit: number;
  readonly #request: FastifyRequest;
  constructor(limit: number, request: FastifyRequest) {
    super();
    this.#limit = limit;
    this.#request = request;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    this.#request.kvp.requestBytes = this.#seen;
    if (this.#seen > this.#limit) {
      const error = bodyTooLarge(this.#limit);
      this.#request.kvp.failure = error;
      callback(error);
      return;
    }
    callback(null, chunk);
  }
}

export const forwardPlugin = fp<ForwardPluginOptions>(
  async (app, { credential, dispatcher, bodyLimitBytes }) => {
    const upstreamAuthorization = new WeakMap<FastifyRequest, string>();

    app.addHook('onRequest', (request, _reply, done) => {
      const length = request.headers['content-length'];
      if (length !== undefined) {
        const bytes = Number(length);
        request.kvp.requestBytes = bytes;
        if (bytes > bodyLimitBytes) return done(bodyTooLarge(bodyLimitBytes));
      }
      const authorization = credential.authorization();
      if (authorization === undefined) {
        // Fail closed: without the proxy's own credential nothing is forwarded (and never the caller's).
        return done(
          new ProxyError('ERR_FORWARD_CREDENTIAL_UNAVAILABLE', 'UNAVAILABLE', 'upstream credential unavailable', {
            reason: 'credential-unavailable',
          }),
        );
      }
      upstreamAuthorization.set(request, authorization);
      done();
    });

    // A Content-Length body is bounded by the check above; only chunked bodies need counting.
    app.addHook('preParsing', (request, _reply, payload, done) => {
      if (request.headers['content-length'] === undefined && request.headers['transfer-encoding'] !== undefined) {
        done(null, payload.pipe(new BodyLimiter(bodyLimitBytes, request)));
        return;
      }
      done(null, payload);
    });

    await app.register(proxy, {
      upstream: '',
      // Classification already refused anything that is not a Vertex AI method.
      httpMethods: ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS'],
      // Our own pool: reply-from's built-in undici options turn TLS verification off.
      undici: dispatcher as never,
      disableRequestLogging: true,
      replyOptions: {
        getUpstream: (request: FastifyRequest) => request.kvp.upstreamBase as string,
        // The proxy does not retry: Vertex AI SDKs retry themselves, and a retried POST may not be idempotent.
        retryDelay: () => null,
        rewriteRequestHeaders: (request: FastifyRequest, headers: IncomingHttpHeaders) => {
          request.kvp.upstreamStartedAt = process.hrtime.bigint();
          const out = upstreamRequestHeaders(headers, upstreamAuthorization.get(request) as string);
          upstreamAuthorization.delete(request);
          return out as IncomingHttpHeaders;
        },
        rewriteHeaders: (headers: IncomingHttpHeaders, request: FastifyRequest) => {
          request.kvp.upstreamHeadersAt = process.hrtime.bigint();
          return downstreamResponseHeaders(headers) as IncomingHttpHeaders;
        },
        onResponse: (request: FastifyRequest, reply: FastifyReply, res: { statusCode: number; stream: NodeJS.ReadableStream }) => {
          request.kvp.upstreamStatus = res.statusCode;
          if (res.statusCode === 401) {
            // Vertex AI refused the proxy's own token. Passing the 401 on would tell
            // the caller its Kubernetes token is bad; this is the proxy's failure.
            (res.stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
            reply.send(
              new ProxyError('ERR_FORWARD_CREDENTIAL_REJECTED', 'UNAVAILABLE', 'upstream rejected the proxy credential', {
                httpStatus: 502,
                reason: 'upstream-rejected-credential',
              }),
            );
            return;
          }
          res.stream.once('error', (error: Error) => {
            request.kvp.upstreamStreamError = error.message;
          });
          reply.send(res.stream);
        },
        onError: (reply: FastifyReply, { error }: { error: Error & { code?: string; cause?: unknown } }) => {
          reply.send(upstreamFailure(reply.request, error));
        },
      },
    } as never);
  },
  { name: 'kvp-forward', fastify: '5.x', dependencies: ['kvp-authorize'] },
);

/** reply-from/undici failures → 413, 504 or 502. Details stay in the log and audit record. */
function upstreamFailure(request: FastifyRequest, error: Error & { code?: string; cause?: unknown }): ProxyError {
  if (request.kvp.failure?.code === 'ERR_REQUEST_BODY_TOO_LARGE') return request.kvp.failure;
  const cause = (error.cause ?? error) as Error & { code?: string };
  const code = cause.code ?? error.code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'FST_REPLY_FROM_GATEWAY_TIMEOUT') {
    return new ProxyError('ERR_FORWARD_UPSTREAM_TIMEOUT', 'DEADLINE_EXCEEDED', 'upstream timeout', { cause: error, reason: 'upstream-timeout' });
  }
  return new ProxyError('ERR_FORWARD_UPSTREAM_UNREACHABLE', 'UNAVAILABLE', 'upstream unreachable', {
    cause: error,
    httpStatus: 502,
    reason: `upstream-unreachable${code === '' ? '' : `:${code.toLowerCase()}`}`,
  });
}
