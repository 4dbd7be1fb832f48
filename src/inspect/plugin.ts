/**
 * Step ⑤ inspect, between authorize and the strict audit commit: for the
 * requests some {@link BodyRule} wants (decided from the classified
 * operation, before any byte is read), the body is read whole up to the body
 * limit, parsed once, and checked by each rule. A refusal ends the request
 * here, so its decision record already says so; what goes on is the caller's
 * bytes exactly, unless a rule rewrote them because the config asks it to.
 * Requests no rule wants stream as before and pay one `wants` call per rule.
 *
 * In: `request.kvp` (operation, principal, decision). Out: `request.kvp.forwardBody`.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_BODY_TOO_LARGE (413), ERR_REQUEST_BODY_INCOMPLETE (499),
 *   ERR_REQUEST_BODY_NOT_JSON (400), ERR_REQUEST_BODY_INVALID (400), and whatever a rule refuses with
 */
import { Readable } from 'node:stream';
import fp from 'fastify-plugin';
import type { ProxyError } from '../errors.js';
import type { BodyRule } from './body-rule.js';
import { watchBodyProgress } from '../forward/body-progress.js';
import { inspectBody } from './inspect.js';
import { readWhole } from './read-whole.js';

export interface InspectPluginOptions {
  readonly rules: readonly BodyRule[];
  readonly bodyLimitBytes: number;
  /** `server.bodyIdleTimeout`: a body read here stalls under the same rule as one that streams (0: off). */
  readonly bodyIdleTimeoutMs?: number;
}

export const inspectPlugin = fp<InspectPluginOptions>(
  async (app, { rules, bodyLimitBytes, bodyIdleTimeoutMs = 0 }) => {
    if (rules.length === 0) return;
    app.addHook('preParsing', (request, _reply, payload, done) => {
      let wanted: BodyRule[] | undefined;
      for (const rule of rules) if (rule.wants(request)) (wanted ??= []).push(rule);
      if (wanted === undefined) return done(null, payload);
      const rulesForRequest = wanted;
      readWhole(watchBodyProgress(request, payload, bodyIdleTimeoutMs), bodyLimitBytes).then(
        (bytes) => {
          request.kvp.requestBytes = bytes.length;
          const result = inspectBody(request, bytes, request.headers['content-type'], rulesForRequest);
          if ('refuse' in result) {
            request.kvp.failure = result.refuse;
            done(result.refuse);
            return;
          }
          request.kvp.forwardBody = result.forward;
          // The content parser still wants a stream; the forwarder sends `forwardBody`.
          done(null, Readable.from([]) as unknown as typeof payload);
        },
        (error: Error) => {
          request.kvp.failure ??= error as ProxyError;
          done(error);
        },
      );
    });
  },
  { name: 'kvp-inspect', fastify: '5.x', dependencies: ['kvp-authorize'] },
);
