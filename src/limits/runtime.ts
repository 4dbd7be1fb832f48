/**
 * The running limiter: the configured store opened, its availability logged
 * once per change and exposed as a metric, the metrics wired.
 *
 * @module
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { UsageMetrics } from '../usage/metrics.js';
import { Limiter } from './limiter.js';
import { createLimitMetrics } from './metrics.js';
import type { LimitSettings } from './settings.js';
import { createMemoryStore, type LimitStore } from './store.js';

export interface LimitRuntime {
  readonly limiter: Limiter;
  readonly store: LimitStore;
  close(): Promise<void>;
}

export async function startLimits(
  settings: LimitSettings,
  deps: { logger: Logger; registry: Registry; usage: UsageMetrics },
): Promise<LimitRuntime> {
  const { logger } = deps;
  const config = settings.store;
  let store: LimitStore;
  if (config.type === 'memory') {
    store = createMemoryStore();
  } else {
    let everAvailable = false;
    // Loaded only with a Redis store: the client is ~20 MiB of resident memory.
    const { openRedisStore } = await import('./redis-store.js');
    store = await openRedisStore({
      url: config.url,
      urlFile: config.urlFile,
      keyPrefix: config.keyPrefix,
      timeoutMs: config.timeoutMs,
      onAvailability: (available, error) => {
        // Once per change, never per request: an outage must not flood the log.
        if (available) {
          logger.info({ limitStore: 'redis' }, everAvailable ? 'limit store available again; limits enforced' : 'limit store connected');
          everAvailable = true;
        } else {
          logger.warn(
            { limitStore: 'redis', onUnavailable: config.onUnavailable, error: (error as Error | undefined)?.message },
            config.onUnavailable === 'failClosed'
              ? 'limit store unavailable; requests under a limit are refused (failClosed) until it is back'
              : 'limit store unavailable; requests under a limit are admitted uncounted (failOpen) until it is back',
          );
        }
      },
    });
  }
  const observer = createLimitMetrics(deps.registry, deps.usage, () => store.available());
  const limiter = new Limiter({
    rules: settings.rules,
    store,
    onUnavailable: config.type === 'redis' ? config.onUnavailable : 'failClosed',
    observer,
  });
  return { limiter, store, close: () => store.close() };
}
