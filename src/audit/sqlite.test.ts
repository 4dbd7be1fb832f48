import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { describeAuditStoreConformance, record, type ConformanceBackend } from '../../test/helpers/audit-store-conformance.js';
import { openSqliteStore } from './sqlite.js';

function sqliteBackend(): ConformanceBackend {
  const dir = mkdtempSync(join(tmpdir(), 'kvp-audit-sqlite-'));
  const path = join(dir, 'audit.db');
  const rows = (sql: string) => {
    const db = new DatabaseSync(path);
    try {
      return db.prepare(sql).all() as Array<Record<string, unknown>>;
    } finally {
      db.close();
    }
  };
  const exec = (sql: string) => {
    const db = new DatabaseSync(path);
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
  };
  return {
    open: (writer = 'replica-a') => Promise.resolve(openSqliteStore({ path, writer, maxBatch: 500 })),
    exec: (sql) => {
      exec(sql);
      return Promise.resolve();
    },
    rows: (sql) => Promise.resolve(rows(sql)),
    indexNames: () =>
      Promise.resolve(
        rows(`SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'audit_entries_%' AND name NOT LIKE 'sqlite_%'`).map((r) =>
          String(r.name),
        ),
      ),
    expectIndexedPlan(sql) {
      exec('ANALYZE');
      const plan = rows(`EXPLAIN QUERY PLAN ${sql}`)
        .map((r) => String(r.detail))
        .join('\n');
      // Final entries through the partial index; open decisions from the open list, each looked up by id.
      expect(plan).toMatch(/INDEX \S+_f_principal/);
      expect(plan).toContain('SCAN o');
      expect(plan).toContain('SEARCH e USING INTEGER PRIMARY KEY');
      expect(plan).not.toMatch(/SCAN e\b/);
      return Promise.resolve();
    },
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

describeAuditStoreConformance('sqlite', sqliteBackend);

describe('SQLite store: group commit on the writer thread', () => {
  it('packs concurrent appends into few transactions, and a failed transaction leaves no hole in the chain', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvp-audit-gc-'));
    const batches: number[] = [];
    const store = openSqliteStore({
      path: join(dir, 'a.db'),
      writer: 'w',
      maxBatch: 500,
      onBatch: (_k, size, _s, ok) => ok && batches.push(size),
    });
    await Promise.all(Array.from({ length: 1000 }, (_, i) => store.append([{ phase: 'final', record: record(i) }])));
    expect(batches.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(batches.length).toBeLessThanOrEqual(4);
    expect(await store.verify()).toMatchObject({ ok: true, entries: 1000 });
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
