/**
 * The routes a forwarding family serves (Vertex AI, callbacks), registered on
 * fastify directly: every method a Vertex AI or callback call uses, and a
 * pass-through body parser that leaves every body the caller's stream,
 * whatever its content type, for the one forwarding path (dispatch.ts).
 *
 * Why not @fastify/http-proxy's routes with its `handler` option (what this
 * replaced): per request its handler re-parses and re-serialises the query,
 * validates and resolves a destination with three `new URL`s and copies the
 * reply options, all for a destination dispatch.ts never uses (it sends the
 * path the family vetted: classification or the callback route table refused
 * everything else before the handler runs). And it registers
 * @fastify/reply-from, which pins undici 7, whose dispatcher wraps every
 * handler written to undici's current interface in an adapter (a controller
 * and header objects parsed per response) that undici 8 does without. Both
 * together were most of the full path's CPU regression of issue 16 (about a
 * tenth per request; docs/operations.md). The registration here is the part
 * of it the proxy used.
 *
 * @module
 */
import type { FastifyInstance, RouteHandlerMethod } from 'fastify';

/** Every method a Vertex AI or callback call uses (the methods @fastify/http-proxy registered by default). */
export const FORWARDED_METHODS: readonly string[] = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS'];

/**
 * Registers `urls` (find-my-way patterns, e.g. `/*`) for {@link FORWARDED_METHODS}
 * in `app`'s context, with the pass-through body parser: fastify's own parsers
 * are removed first, or a JSON or text/plain body (a rawPredict) would be read
 * into a value and never forwarded.
 */
export function registerForwardRoutes(app: FastifyInstance, urls: readonly string[], handler: RouteHandlerMethod): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => {
    done(null, payload);
  });
  for (const url of urls) app.route({ method: [...FORWARDED_METHODS], url, handler });
}
