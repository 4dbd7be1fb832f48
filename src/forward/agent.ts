/**
 * The connection pool to Vertex AI. One place, so the proxy and the
 * benchmark's tuned passthrough (bench/passthrough.ts) run the same settings.
 *
 * In: timeouts and pool size from `Settings.vertex`. Out: an undici `Agent`.
 * Throws nothing.
 *
 * @module
 */
import { Agent } from 'undici';

export interface UpstreamAgentOptions {
  readonly connections: number;
  readonly responseTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

export function createUpstreamAgent(options: UpstreamAgentOptions): Agent {
  return new Agent({
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    headersTimeout: options.responseTimeoutMs,
    bodyTimeout: options.idleTimeoutMs,
    connect: { timeout: options.connectTimeoutMs },
  });
}
