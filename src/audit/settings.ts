/**
 * The `audit` config section → {@link AuditSettings}: units converted, sink
 * paths resolved, the Postgres URL file named (read at start, never here),
 * semantic problems reported through the loader's `add`.
 *
 * In: the validated `audit` section and the config file's directory.
 * Out: frozen-ready settings. Throws nothing; problems go to `add`.
 *
 * @module
 */
import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/units.js';

/** The permission the audit query API checks (`GET /audit/v1/*`); grant it in a policy rule. */
export const AUDIT_READ_PERMISSION = 'audit.read';

export type AuditStoreSettings =
  | { readonly type: 'sqlite'; readonly path: string }
  | {
      readonly type: 'postgres';
      readonly url: string | undefined;
      readonly urlFile: string | undefined;
      readonly table: string;
      readonly maxConnections: number;
      /** Group-commit batches in flight at once (undefined: the store's default). */
      readonly pipelineDepth: number | undefined;
    };

export interface AuditSettings {
  readonly durability: 'strict' | 'relaxed';
  readonly stdout: boolean;
  /** Durable stores, in config order. Queries read {@link queryStoreOf}. */
  readonly stores: readonly AuditStoreSettings[];
  readonly replicaId: string;
  /** 0 = keep forever. */
  readonly retentionMs: number;
  readonly retentionIntervalMs: number;
  readonly maxBatch: number;
  /** How long records no request waits on (relaxed records, strict completions) may wait to share a transaction. */
  readonly commitDelayMs: number;
  readonly maxQueue: number;
  /** The auditor's console (`/audit/ui/`). */
  readonly console?: { readonly enabled: boolean; readonly iapAudience: string | undefined; readonly iapJwksUri: string };
  /** The stdout sink's line: each fact once, or with the AuditLog-shaped payload too. */
  readonly stdoutFormat?: 'compact' | 'full';
}

export function deriveAuditSettings(
  audit: Config['audit'],
  configDir: string,
  add: (path: (string | number)[], message: string) => void,
): AuditSettings {
  const stores: AuditStoreSettings[] = [];
  let stdout = false;
  audit.sinks.forEach((sink, i) => {
    switch (sink.type) {
      case 'stdout':
        if (stdout) add(['audit', 'sinks', i], 'stdout is listed twice');
        stdout = true;
        break;
      case 'sqlite':
        stores.push({ type: 'sqlite', path: isAbsolute(sink.path) ? sink.path : resolve(configDir, sink.path) });
        break;
      case 'postgres':
        if ((sink.url === undefined) === (sink.urlFile === undefined)) add(['audit', 'sinks', i], 'give exactly one of url or urlFile');
        if (sink.url !== undefined && !/^postgres(ql)?:\/\//.test(sink.url)) add(['audit', 'sinks', i, 'url'], 'must be a postgres:// URL');
        stores.push({
          type: 'postgres',
          url: sink.url,
          urlFile: sink.urlFile === undefined ? undefined : resolve(configDir, sink.urlFile),
          table: sink.table ?? 'kvp_audit_records',
          maxConnections: sink.maxConnections ?? 4,
          pipelineDepth: sink.pipelineDepth,
        });
        break;
    }
  });
  if (audit.durability === 'strict' && stores.length === 0) {
    add(
      ['audit', 'sinks'],
      'durability "strict" needs a durable store (a sqlite or postgres sink): stdout alone cannot promise that a record ' +
        'exists before the call is forwarded',
    );
  }
  if (audit.console.enabled && stores.length === 0) {
    add(['audit', 'console', 'enabled'], 'the console reads the audit trail: it needs a durable store (a sqlite or postgres sink)');
  }
  if (!/^https?:\/\//.test(audit.console.iapJwksUri)) add(['audit', 'console', 'iapJwksUri'], 'must be an http(s) URL');
  return {
    durability: audit.durability,
    stdout,
    stores,
    replicaId: audit.replicaId ?? sanitizeReplicaId(hostname()),
    retentionMs: parseDuration(audit.retention),
    retentionIntervalMs: Math.max(1000, parseDuration(audit.retentionInterval)),
    maxBatch: audit.maxBatch,
    commitDelayMs: parseDuration(audit.commitDelay),
    maxQueue: audit.maxQueue,
    console: { enabled: audit.console.enabled, iapAudience: audit.console.iapAudience, iapJwksUri: audit.console.iapJwksUri },
    stdoutFormat: audit.stdout.format,
  };
}

/**
 * The store queries and `audit verify` read: the shared PostgreSQL store when there is one (a per-pod SQLite file sees one replica only),
 * else the first.
 */
export function queryStoreOf(settings: AuditSettings): AuditStoreSettings | undefined {
  return settings.stores.find((s) => s.type === 'postgres') ?? settings.stores[0];
}

function sanitizeReplicaId(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 128);
  return cleaned === '' ? 'replica' : cleaned;
}
