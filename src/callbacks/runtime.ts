/**
 * What the callback routes need at run time, built from validated settings:
 * the assertion signer (its key loaded or generated) and a connection pool to
 * the in-cluster upstreams. `server.ts` starts it before the listeners, hands
 * it to the data app (routes) and the admin app (JWKS), and closes it last.
 *
 * @module
 * @throws Error from {@link startCallbacks} when the assertion key file is unusable.
 */
import { Agent, type Dispatcher } from 'undici';
import type { Settings } from '../config/load.js';
import { AssertionSigner, type PublicJwks } from './assertion.js';
import type { RouteTable } from './routes.js';

export interface CallbacksRuntime {
  readonly routes: RouteTable;
  readonly signer: AssertionSigner;
  readonly assertionHeader: string;
  /** An undici Agent in production; any dispatcher (a MockAgent in tests). */
  readonly dispatcher: Dispatcher;
  jwks(): PublicJwks;
  close(): Promise<void>;
}

/** Connections per in-cluster upstream; callbacks are low-rate compared with the outbound path. */
const CONNECTIONS_PER_UPSTREAM = 32;

/** Undefined when no callback route is configured: nothing is started and no JWKS is served. */
export async function startCallbacks(settings: Settings): Promise<CallbacksRuntime | undefined> {
  const { callbacks } = settings;
  if (callbacks.routes.size === 0) return undefined;
  const signer = await AssertionSigner.create({
    keyFile: callbacks.assertion.keyFile,
    issuer: callbacks.assertion.issuer,
    lifetimeSec: callbacks.assertion.lifetimeSec,
  });
  const longest = Math.max(...callbacks.routes.routes.map((r) => r.timeoutMs));
  // Per-request timeouts (the route's) are passed with each request; these are the pool's ceilings.
  const dispatcher = new Agent({
    connections: CONNECTIONS_PER_UPSTREAM,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: longest,
    bodyTimeout: longest,
    connect: { timeout: Math.min(longest, 10_000) },
  });
  return {
    routes: callbacks.routes,
    signer,
    assertionHeader: callbacks.assertion.header,
    dispatcher,
    jwks: () => signer.jwks(),
    async close() {
      await dispatcher.close().catch(() => undefined);
    },
  };
}
