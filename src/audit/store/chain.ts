/**
 * Tamper evidence: each entry carries `hash = SHA-256(prevHash, writer, seq,
 * phase, writtenMs, recordJson)`, chained per writer (replica) in `seq`
 * order. Retention deletes the oldest entries, so a chain may legitimately
 * start later than seq 1: its first remaining entry is the anchor.
 *
 * In: records to chain onto a head; stored entries to check. Out: hashed
 * entries; the problem with an entry, if any. Pure: no I/O.
 *
 * @module
 */
import { hash } from 'node:crypto';
import type { AuditRecord } from '../record.js';
import { COLUMN_NAMES, type ChainedEntry, type ChainLink, type EntryPhase, type IndexedColumns, type StoredEntry } from './types.js';

export const GENESIS_HASH = '0'.repeat(64);

export function entryHash(prevHash: string, writer: string, seq: number, phase: EntryPhase, writtenMs: number, recordJson: string): string {
  // One-shot: the same bytes as hashing the header and then the record, without a Hash object per entry (verify hashes millions).
  return hash('sha256', `${prevHash}\n${writer}\n${seq}\n${phase}\n${writtenMs}\n${recordJson}`, 'hex');
}

export function indexedColumns(record: AuditRecord, phase: EntryPhase): IndexedColumns {
  return {
    request_id: record.requestId,
    time_ms: Date.parse(record.time),
    principal: record.principal ?? null,
    namespace: record.namespace ?? null,
    operation: record.operation ?? null,
    permission: record.permission ?? null,
    resource: record.resource ?? null,
    decision: record.decision,
    rule_id: record.ruleId ?? null,
    status: phase === 'decision' ? null : record.status,
    model: record.model ?? null,
    prompt_tokens: record.tokens?.prompt ?? null,
    candidates_tokens: record.tokens?.candidates ?? null,
    thoughts_tokens: record.tokens?.thoughts ?? null,
    cached_tokens: record.tokens?.cached ?? null,
    tool_tokens: record.tokens?.tool ?? null,
    total_tokens: record.tokens?.total ?? null,
  };
}

/** Chains `batch` onto `head` (undefined: a new chain from the genesis hash); returns the entries and the new head. */
export function chainEntries(
  head: ChainLink | undefined,
  writer: string,
  writtenMs: number,
  batch: ReadonlyArray<{ readonly phase: EntryPhase; readonly record: AuditRecord }>,
): { entries: ChainedEntry[]; head: ChainLink } {
  let seq = head?.seq ?? 0;
  let prev = head?.hash ?? GENESIS_HASH;
  const entries = batch.map(({ phase, record }): ChainedEntry => {
    seq += 1;
    const recordJson = JSON.stringify(record);
    const hash = entryHash(prev, writer, seq, phase, writtenMs, recordJson);
    const entry: ChainedEntry = { writer, seq, phase, writtenMs, prevHash: prev, hash, recordJson, columns: indexedColumns(record, phase) };
    prev = hash;
    return entry;
  });
  return { entries, head: { seq, hash: prev } };
}

/** What is wrong with a stored entry given the one before it in its writer's chain (undefined: the chain's first remaining entry). */
export function entryProblem(entry: StoredEntry, previous: StoredEntry | undefined): string | undefined {
  if (previous !== undefined) {
    if (entry.seq !== previous.seq + 1) return `sequence gap: ${previous.seq} is followed by ${entry.seq} (entries removed)`;
    if (entry.prevHash !== previous.hash) return "prev_hash does not match the previous entry's hash";
  } else if (entry.seq === 1 && entry.prevHash !== GENESIS_HASH) {
    return 'the first entry does not start from the genesis hash';
  }
  const expected = entryHash(entry.prevHash, entry.writer, entry.seq, entry.phase, entry.writtenMs, entry.recordJson);
  if (expected !== entry.hash) return "hash does not match the entry's content (entry modified)";
  let record: AuditRecord;
  try {
    record = JSON.parse(entry.recordJson) as AuditRecord;
  } catch {
    return 'record is not valid JSON';
  }
  const columns = indexedColumns(record, entry.phase);
  for (const name of COLUMN_NAMES) {
    const stored = entry.columns[name];
    const hashed = columns[name];
    // Equal values first (nearly every column of every entry): no two strings made per column to compare.
    if (stored !== hashed && String(hashed) !== String(stored)) return `column ${name} does not match the hashed record (entry modified)`;
  }
  return undefined;
}
