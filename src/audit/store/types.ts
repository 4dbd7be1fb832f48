/**
 * The audit store's vocabulary: what a store offers ({@link AuditStore}),
 * what a query asks for, what comes back, and the shape of a stored entry.
 * Every backend implements {@link AuditStore}; the shared conformance suite
 * (`conformance.ts`) is what "implements" means.
 *
 * @module
 */
import type { AuditRecord } from '../record.js';

export type EntryPhase = 'decision' | 'final';

/** Copies of record fields kept in their own columns so queries can filter and sum them; verify checks they agree with the record. */
export interface IndexedColumns {
  readonly request_id: string;
  readonly time_ms: number;
  readonly principal: string | null;
  readonly namespace: string | null;
  readonly operation: string | null;
  readonly permission: string | null;
  readonly resource: string | null;
  readonly decision: string;
  readonly rule_id: string | null;
  readonly status: number | null;
  /** Usage columns (added by a later schema; null in older rows and where the response reported none). */
  readonly model: string | null;
  readonly prompt_tokens: number | null;
  readonly candidates_tokens: number | null;
  readonly thoughts_tokens: number | null;
  readonly cached_tokens: number | null;
  readonly tool_tokens: number | null;
  readonly total_tokens: number | null;
}

/** The usage columns, in order, with the TokenUsage field each copies. */
export const TOKEN_COLUMNS = [
  ['prompt_tokens', 'prompt'],
  ['candidates_tokens', 'candidates'],
  ['thoughts_tokens', 'thoughts'],
  ['cached_tokens', 'cached'],
  ['tool_tokens', 'tool'],
  ['total_tokens', 'total'],
] as const;

export const COLUMN_NAMES = [
  'request_id',
  'time_ms',
  'principal',
  'namespace',
  'operation',
  'permission',
  'resource',
  'decision',
  'rule_id',
  'status',
  'model',
  ...TOKEN_COLUMNS.map(([column]) => column),
] as const;

/** An entry ready to insert: chained and hashed. */
export interface ChainedEntry {
  readonly writer: string;
  readonly seq: number;
  readonly phase: EntryPhase;
  readonly writtenMs: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly recordJson: string;
  /** Indexed copies of record fields; verify checks they agree with `recordJson`. */
  readonly columns: IndexedColumns;
}

/** One stored row, as read back: a chained entry and its row id. */
export interface StoredEntry extends ChainedEntry {
  readonly id: number;
}

/** The head of one writer's chain. */
export interface ChainLink {
  readonly seq: number;
  readonly hash: string;
}

/** What a query asks for. Every field optional; patterns use `*` for any run of characters. */
export interface AuditQuery {
  readonly principal?: string;
  readonly namespace?: string;
  /** Exact permission, or a pattern (`aiplatform.endpoints.*`). */
  readonly permission?: string;
  readonly operation?: string;
  /** Exact resource name, or a pattern (`projects/p/locations/l/endpoints/*`). */
  readonly resource?: string;
  readonly decision?: 'allow' | 'deny';
  readonly status?: number;
  readonly rule?: string;
  /** Epoch ms, inclusive. */
  readonly from?: number;
  /** Epoch ms, exclusive. */
  readonly to?: number;
}

/**
 * A record as read back: `complete` is false for a decision entry whose request never got its final entry (the process died mid-request).
 */
export type StoredRecord = AuditRecord & { readonly complete: boolean };

export interface RecordPage {
  readonly records: StoredRecord[];
  /** Opaque; pass back to get the next (older) page. Undefined on the last page. */
  readonly nextCursor: string | undefined;
}

export interface SummaryRow {
  readonly principal: string | null;
  readonly permission: string | null;
  readonly decision: string;
  readonly count: number;
}

/** What `summary --group-by` may group by. */
export const SUMMARY_GROUPS = ['principal', 'namespace', 'model'] as const;
export type SummaryGroup = (typeof SUMMARY_GROUPS)[number];

/** One group of a usage summary: requests and summed tokens (unreported counts add nothing). */
export interface UsageSummaryRow {
  readonly principal?: string | null;
  readonly namespace?: string | null;
  readonly model?: string | null;
  readonly requests: number;
  readonly promptTokens: number;
  readonly candidatesTokens: number;
  readonly thoughtsTokens: number;
  readonly cachedTokens: number;
  readonly toolTokens: number;
  readonly totalTokens: number;
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly writers: number;
  readonly entries: number;
  /** The first broken link, when there is one. */
  readonly broken?: { readonly writer: string; readonly seq: number; readonly id: number; readonly problem: string };
}

export interface AuditStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Appends entries durably (committed when the promise resolves); many callers share one transaction. */
  append(entries: ReadonlyArray<{ phase: EntryPhase; record: AuditRecord }>): Promise<void>;
  query(query: AuditQuery, limit: number, cursor?: string): Promise<RecordPage>;
  summary(query: AuditQuery): Promise<SummaryRow[]>;
  /** Requests and tokens summed by the given columns (at least one of {@link SUMMARY_GROUPS}). */
  usageSummary(query: AuditQuery, groupBy: readonly SummaryGroup[]): Promise<UsageSummaryRow[]>;
  verify(range?: { from?: number; to?: number }): Promise<VerifyResult>;
  /**
   * Retention: deletes each writer's oldest run of entries written before `beforeMs` (up to its first entry written at or after
   * it: store/retention.ts), at most `batch` per statement; returns how many went.
   */
  deleteOlderThan(beforeMs: number, batch: number): Promise<number>;
  /** Whether the last write or open succeeded (readiness). */
  healthy(): boolean;
  close(): Promise<void>;
}

export interface StoreHooks {
  /** After each transaction: how many entries, how long it took, whether it committed. */
  readonly onBatch?: (kind: AuditStore['kind'], size: number, seconds: number, ok: boolean) => void;
}
