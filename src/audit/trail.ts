/**
 * The audit trail of a running proxy: the durable stores from the config,
 * the durability mode, the bounded queue of records written after their
 * response, and the retention sweep.
 *
 * In: {@link AuditSettings}. Out: `recordDecision` (strict mode: resolves
 * once every store committed the decision entry, rejects otherwise — the
 * caller refuses the request with `ERR_AUDIT_UNAVAILABLE`), `recordFinal`
 * (never throws; failures are retried while the queue has room, then
 * dropped, counted and logged), and the store that serves queries.
 * Opening throws when a store cannot be opened at all (SQLite file not
 * writable); an unreachable PostgreSQL only makes the trail unhealthy.
 *
 * @module
 */
import type { Logger } from 'pino';
import type { AuditRecord } from './record.js';
import type { AuditSettings, AuditStoreSettings } from './settings.js';
import { openSqliteStore } from './sqlite.js';
import type { AuditStore, StoreHooks } from './store.js';

export interface AuditTrailMetrics {
  batch(store: AuditStore['kind'], size: number, seconds: number, ok: boolean): void;
  refused(): void;
  dropped(count: number): void;
  /** Strict mode: one decision entry's wait until every store committed it (or one failed). */
  decisionCommit?(seconds: number, ok: boolean): void;
}

export interface AuditTrail {
  readonly durability: AuditSettings['durability'];
  /** Strict mode: the decision entry, committed to every store before the call may be forwarded. */
  recordDecision(record: AuditRecord): Promise<void>;
  /** The complete record at response close (an audit listener). */
  recordFinal(record: AuditRecord): void;
  /** The store queries read: the shared PostgreSQL store when there is one, else the first configured. */
  readonly queryStore: AuditStore | undefined;
  /** Records accepted but not yet committed. */
  queueDepth(): number;
  healthy(): boolean;
  /** Writes what is queued (up to `graceMs`), then closes the stores. */
  close(graceMs?: number): Promise<void>;
}

export async function openStore(
  settings: AuditStoreSettings,
  writer: string,
  batching: { readonly maxBatch: number; readonly commitDelayMs: number },
  hooks: StoreHooks & { onError?: (error: unknown) => void },
): Promise<AuditStore> {
  if (settings.type === 'sqlite') return openSqliteStore({ path: settings.path, writer, ...batching, ...hooks });
  // The PostgreSQL client is loaded only with a PostgreSQL sink.
  const { openPostgresStore } = await import('./postgres.js');
  return openPostgresStore({
    url: settings.url,
    urlFile: settings.urlFile,
    table: settings.table,
    maxConnections: settings.maxConnections,
    pipelineDepth: settings.pipelineDepth,
    writer,
    ...batching,
    ...hooks,
  });
}

const RETRY_DELAY_MS = 1000;
const RETENTION_BATCH = 5000;

export async function openAuditTrail(settings: AuditSettings, logger: Logger, metrics: AuditTrailMetrics): Promise<AuditTrail> {
  const stores: AuditStore[] = [];
  try {
    for (const store of settings.stores) {
      stores.push(
        await openStore(
          store,
          settings.replicaId,
          { maxBatch: settings.maxBatch, commitDelayMs: settings.commitDelayMs },
          {
            onBatch: (kind, size, seconds, ok) => metrics.batch(kind, size, seconds, ok),
            onError: (error) =>
              logger.warn({ store: store.type, error: (error as Error).message }, 'audit store unreachable; retrying on the next write'),
          },
        ),
      );
    }
  } catch (error) {
    await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
    throw error;
  }

  let pending = 0;
  let droppedSinceLog = 0;
  let lastDropLog = 0;
  let closing = false;
  const retryTimers = new Set<NodeJS.Timeout>();

  const drop = (count: number, why: string) => {
    metrics.dropped(count);
    droppedSinceLog += count;
    const now = Date.now();
    // One log line per 10 s at most: an outage must not turn into a log flood.
    if (now - lastDropLog >= 10_000) {
      logger.error({ dropped: droppedSinceLog, reason: why, maxQueue: settings.maxQueue }, 'audit records dropped');
      droppedSinceLog = 0;
      lastDropLog = now;
    }
  };

  // A record counts against maxQueue from the moment it is accepted until it is
  // committed or dropped, retries included: with the store down and failing
  // fast, retrying records must not pile up outside the bound.
  const writeFinal = (store: AuditStore, record: AuditRecord): void => {
    if (pending >= settings.maxQueue) {
      drop(1, 'queue-full');
      return;
    }
    pending += 1;
    attemptFinal(store, record, 0);
  };

  const attemptFinal = (store: AuditStore, record: AuditRecord, attempt: number): void => {
    store.append([{ phase: 'final', record }]).then(
      () => {
        pending -= 1;
      },
      (error: unknown) => {
        if (closing) {
          pending -= 1;
          drop(1, 'store-unavailable');
          return;
        }
        if (attempt === 0) logger.warn({ store: store.kind, error: (error as Error).message }, 'audit write failed; retrying');
        const timer = setTimeout(() => {
          retryTimers.delete(timer);
          attemptFinal(store, record, attempt + 1);
        }, RETRY_DELAY_MS);
        retryTimers.add(timer);
      },
    );
  };

  let retention: NodeJS.Timeout | undefined;
  if (settings.retentionMs > 0 && stores.length > 0) {
    const sweep = async () => {
      for (const store of stores) {
        try {
          const deleted = await store.deleteOlderThan(Date.now() - settings.retentionMs, RETENTION_BATCH);
          if (deleted > 0) logger.info({ store: store.kind, deleted }, 'audit retention: old records deleted');
        } catch (error) {
          logger.warn({ store: store.kind, error: (error as Error).message }, 'audit retention sweep failed');
        }
      }
    };
    retention = setInterval(() => void sweep(), settings.retentionIntervalMs);
    retention.unref();
    void sweep();
  }

  return {
    durability: settings.durability,
    async recordDecision(record) {
      pending += 1;
      const started = process.hrtime.bigint();
      const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
      try {
        await (stores.length === 1
          ? (stores[0] as AuditStore).append([{ phase: 'decision', record }])
          : Promise.all(stores.map((store) => store.append([{ phase: 'decision', record }]))));
        metrics.decisionCommit?.(seconds(), true);
      } catch (error) {
        metrics.decisionCommit?.(seconds(), false);
        metrics.refused();
        throw error;
      } finally {
        pending -= 1;
      }
    },
    recordFinal(record) {
      for (const store of stores) writeFinal(store, record);
    },
    queryStore: stores.find((s) => s.kind === 'postgres') ?? stores[0],
    queueDepth: () => pending,
    healthy: () => stores.every((s) => s.healthy()),
    async close(graceMs = 5000) {
      closing = true;
      if (retention) clearInterval(retention);
      for (const timer of retryTimers) clearTimeout(timer);
      if (retryTimers.size > 0) {
        pending -= retryTimers.size;
        drop(retryTimers.size, 'store-unavailable');
        retryTimers.clear();
      }
      const deadline = Date.now() + graceMs;
      while (pending > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
    },
  };
}
