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
import fp from 'fastify-plugin';
import type { BodyRule } from './body-rule.js';
import { readBody } from '../forward/body-limit.js';
import { bodyStillToCome } from '../forward/body-progress.js';
import { inspectBody } from './inspect.js';

export interface InspectPluginOptions {
  readonly rules: readonly BodyRule[];
  readonly bodyLimitBytes: number;
  /** `server.bodyIdleTimeout`: a body read here stalls under the same rule as one that streams (0: off). */
  readonly bodyIdleTimeoutMs?: number;
}

export const inspectPlugin = fp<InspectPluginOptions>(
  // eslint-disable-next-line @typescript-eslint/require-await -- a fastify plugin: async tells fastify when registration is done
  async (app, { rules, bodyLimitBytes, bodyIdleTimeoutMs = 0 }) => {
    if (rules.length === 0) return;
    app.addHook('preParsing', (request, _reply, payload, done) => {
      let wanted: BodyRule[] | undefined;
      for (const rule of rules) if (rule.wants(request)) (wanted ??= []).push(rule);
      if (wanted === undefined) {
        done(null, payload);
        return;
      }
      const rulesForRequest = wanted;
      // The read watches the body's progress itself (no pass-through stream and interval per request).
      const idleMs = bodyStillToCome(request, bodyIdleTimeoutMs) ? bodyIdleTimeoutMs : 0;
      readBody(
        payload,
        bodyLimitBytes,
        (error, bytes) => {
          if (error !== undefined) {
            request.kvp.failure ??= error;
            done(error);
            return;
          }
          const body = bytes as Buffer;
          request.kvp.requestBytes = body.length;
          const result = inspectBody(request, body, request.headers['content-type'], rulesForRequest);
          if ('refuse' in result) {
            request.kvp.failure = result.refuse;
            done(result.refuse);
            return;
          }
          request.kvp.forwardBody = result.forward;
          // The content parser still wants a stream: the one just read to its end (the forwarder sends `forwardBody`).
          done(null, payload);
        },
        idleMs,
      );
    });
  },
  { name: 'kvp-inspect', fastify: '5.x', dependencies: ['kvp-authorize'] },
);
