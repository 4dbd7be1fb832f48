/**
 * A per-caller cap on requests in flight, the safety net that holds with no
 * other configuration: one service account (or Google caller) cannot hold
 * more than `server.maxInFlightPerCaller` requests at once, so it cannot take
 * the whole upstream connection pool (`vertex.connectionsPerHost`) or the
 * callback pool with stalled uploads or slow streams while other callers wait.
 *
 * In: the authenticated principal (`request.kvp.principal`). Out: nothing, or
 * a 429 refusal. A slot is taken after authentication and given back when the
 * response closes, whatever ended it. Memory is bounded by the requests in
 * flight: a caller's entry exists only while it has one.
 *
 * Configurable per-rule limits (`limits.rules[].concurrentRequests`) are a
 * separate, finer tool; this cap applies to every caller regardless.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_TOO_MANY_IN_FLIGHT (429)
 */
import fp from 'fastify-plugin';
import { ProxyError } from '../errors.js';
import { principalName } from '../authn/principal.js';

/** Counts requests in flight per key. Pure bookkeeping, no timers. */
export class InFlightLimiter {
  readonly #max: number;
  readonly #counts = new Map<string, number>();

  /** `max` 0 turns the cap off. */
  constructor(max: number) {
    this.#max = max;
  }

  get max(): number {
    return this.#max;
  }

  /** Callers with at least one request in flight. */
  get size(): number {
    return this.#counts.size;
  }

  inFlight(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  /** Takes a slot: the release function (call once), or undefined when the caller is at its cap. */
  tryAcquire(key: string): (() => void) | undefined {
    if (this.#max === 0) return noop;
    const count = this.#counts.get(key) ?? 0;
    if (count >= this.#max) return undefined;
    this.#counts.set(key, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const now = (this.#counts.get(key) ?? 1) - 1;
      if (now <= 0) this.#counts.delete(key);
      else this.#counts.set(key, now);
    };
  }
}

const noop = (): void => undefined;

export interface InFlightPluginOptions {
  readonly limiter: InFlightLimiter;
}

/** The step, after authentication: one slot per request, returned when its response closes. */
export const inFlightPlugin = fp<InFlightPluginOptions>(
  // eslint-disable-next-line @typescript-eslint/require-await -- a fastify plugin: async tells fastify when registration is done
  async (app, { limiter }) => {
    if (limiter.max === 0) return;
    app.addHook('onRequest', (request, reply, done) => {
      const principal = request.kvp.principal;
      if (principal === undefined) {
        done();
        return;
      }
      const name = principalName(principal);
      const release = limiter.tryAcquire(name);
      if (release === undefined) {
        done(
          new ProxyError(
            'ERR_REQUEST_TOO_MANY_IN_FLIGHT',
            'RESOURCE_EXHAUSTED',
            `${name} already has ${limiter.max} requests in flight, the most one caller may have at once; retry when one has finished.`,
            {
              reason: 'too-many-in-flight',
              headers: { 'retry-after': '1' },
              metadata: { limit: String(limiter.max) },
            },
          ),
        );
        return;
      }
      reply.raw.once('close', release);
      done();
    });
  },
  { name: 'kvp-in-flight', fastify: '5.x', dependencies: ['kvp-authn'] },
);
