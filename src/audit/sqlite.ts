/**
 * The embedded audit store: SQLite through Node's built-in `node:sqlite`
 * (no native addon), WAL mode, `synchronous=FULL` so a commit survives a
 * power cut, entries of one event-loop turn committed in one transaction.
 *
 * In: a file path (created with its directory's permission), the writer id.
 * Out: an {@link AuditStore}. Opening throws a plain Error naming the path
 * when the file cannot be opened or written (read-only filesystem, missing
 * volume); the caller stops the program.
 *
 * `DatabaseSync` is synchronous, and a durable commit is an fsync: writes
 * therefore run on a worker thread with its own connection, so the event loop
 * keeps serving while a commit waits for the disk, and everything that
 * arrives meanwhile goes into the next transaction (group commit). Queries
 * and `verify` read through a second connection on the calling thread (WAL
 * lets readers and the writer proceed together).
 *
 * @module
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import {
  GroupCommitter,
  INSERT_COLUMNS,
  SQLITE_SQL,
  closesDecision,
  insertValues,
  legacyMarkerIndex,
  migrationPlan,
  openDecisionsTableName,
  deleteOldestRuns,
  deleteThroughSql,
  pruneOpenStatement,
  retentionReads,
  rollupTableName,
  storeReads,
  type AuditStore,
  type ChainLink,
  type Dialect,
  type StoreHooks,
} from './store.js';

const TABLE = 'audit_entries';

export interface SqliteStoreOptions extends StoreHooks {
  readonly path: string;
  readonly writer: string;
  readonly maxBatch: number;
  /** How long records no request waits on may wait for company in a transaction (GroupCommitOptions.delayMs; default 0). */
  readonly commitDelayMs?: number;
  /** Open for queries and verify only (the CLI). */
  readonly readOnly?: boolean;
}

type SqlValue = string | number | null;

/**
 * The writer thread. Plain JavaScript evaluated as the worker's source, so the
 * same code runs from `dist/` and under the test runner (which has no
 * compiled worker file to point at).
 */
const WRITER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(workerData.path);
db.exec('PRAGMA busy_timeout = 5000');
db.exec('PRAGMA journal_mode = WAL');
db.exec('PRAGMA synchronous = FULL');
// Every insert fires the hourly rollup's upsert trigger, so SQLite keeps a statement journal for it; on a file that was
// a pwrite per page the statement touched. In memory it is a copy (it holds one statement's pages, then is reset).
db.exec('PRAGMA temp_store = MEMORY');
const insert = db.prepare(workerData.insertSql);
const open = db.prepare(workerData.openSql);
const close = db.prepare(workerData.closeSql);
const remove = db.prepare(workerData.deleteSql);
const prune = db.prepare(workerData.pruneSql);
releaseStartupMemory();
parentPort.on('message', (m) => {
  try {
    if (m.op === 'insert') {
      db.exec('BEGIN IMMEDIATE');
      try {
        for (let i = 0; i < m.rows.length; i++) {
          const row = m.rows[i];
          insert.run(...row);
          // 'open' follows its own insert: last_insert_rowid() is the decision entry's id.
          if (m.effects[i] === 'open') open.run(m.requestIds[i]);
          else if (m.effects[i] === 'close') close.run(m.requestIds[i]);
        }
        db.exec('COMMIT');
      } catch (error) {
        if (db.isTransaction) db.exec('ROLLBACK');
        throw error;
      }
      parentPort.postMessage({ id: m.id, ok: true, value: m.rows.length });
    } else if (m.op === 'delete') {
      // Retention (store/retention.ts): one writer's entries up to a seq, and the open rows whose decision entry went, in one
      // transaction (no open row is left pointing at no entry).
      db.exec('BEGIN IMMEDIATE');
      let changes;
      try {
        changes = Number(remove.run(m.writer, m.seq).changes);
        if (changes > 0) prune.run();
        db.exec('COMMIT');
      } catch (error) {
        if (db.isTransaction) db.exec('ROLLBACK');
        throw error;
      }
      parentPort.postMessage({ id: m.id, ok: true, value: changes });
    } else if (m.op === 'read') {
      // Retention's reads, here so that they do not hold the event loop (the main thread's connection is synchronous).
      parentPort.postMessage({ id: m.id, ok: true, value: db.prepare(m.sql).all(...m.params) });
    } else if (m.op === 'close') {
      db.close();
      parentPort.postMessage({ id: m.id, ok: true, value: 0 });
      parentPort.close();
    }
  } catch (error) {
    parentPort.postMessage({ id: m.id, ok: false, message: String(error && error.message || error) });
  }
});
// This thread's heap is mostly what starting Node built for it and no longer needs; one memory-reducing collection gives it back
// (lib/startup-memory.ts explains the gc function, which is taken the same way).
function releaseStartupMemory() {
  const v8 = require('node:v8');
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = require('node:vm').runInNewContext('gc');
    if (typeof gc === 'function') gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } catch {
    // Only memory is at stake.
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}
`;

interface WriterThread {
  /** Resolves with the thread's answer: a count of rows (insert, delete), or the rows read (read). */
  call(message: Record<string, unknown>): Promise<unknown>;
  stop(): Promise<void>;
}

function startWriter(path: string): WriterThread {
  const worker = new Worker(WRITER_SOURCE, {
    eval: true,
    workerData: {
      path,
      insertSql: `INSERT INTO ${TABLE} (${INSERT_COLUMNS.join(', ')}) VALUES (${INSERT_COLUMNS.map(() => '?').join(', ')})`,
      openSql: `INSERT INTO ${openDecisionsTableName(TABLE)} (request_id, id) VALUES (?, last_insert_rowid())`,
      closeSql: `DELETE FROM ${openDecisionsTableName(TABLE)} WHERE request_id = ?`,
      deleteSql: deleteThroughSql(TABLE, SQLITE_SQL),
      pruneSql: pruneOpenStatement(TABLE),
    },
  });
  // The writer must not keep a finished process alive; pending calls keep it referenced.
  worker.unref();
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let dead: Error | undefined;
  const failAll = (error: Error) => {
    dead = error;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  worker.on('message', (m: { id: number; ok: boolean; value?: unknown; message?: string }) => {
    const p = pending.get(m.id);
    if (p === undefined) return;
    pending.delete(m.id);
    if (pending.size === 0) worker.unref();
    if (m.ok) p.resolve(m.value ?? 0);
    else p.reject(new Error(m.message ?? 'sqlite write failed'));
  });
  worker.on('error', (error: Error) => failAll(error));
  worker.on('exit', (code) => failAll(new Error(`the SQLite writer thread exited (${code})`)));
  return {
    call(message) {
      if (dead !== undefined) return Promise.reject(dead);
      const id = nextId++;
      worker.ref();
      return new Promise<unknown>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ ...message, id });
      });
    },
    async stop() {
      if (dead === undefined) await this.call({ op: 'close' }).catch(() => undefined);
      await worker.terminate();
    },
  };
}

/** Creates or upgrades the schema in one transaction: a crash midway leaves the old schema, not half of each. */
function migrate(db: DatabaseSync): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    const legacy = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?`).get(legacyMarkerIndex(TABLE)) !== undefined;
    const columns = new Set((db.prepare(`PRAGMA table_info(${TABLE})`).all() as Array<{ name: string }>).map((c) => c.name));
    const rollup = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(rollupTableName(TABLE)) !== undefined;
    for (const statement of migrationPlan(TABLE, SQLITE_SQL, { legacy, columns, rollup })) db.exec(statement);
    db.exec('COMMIT');
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

export function openSqliteStore(options: SqliteStoreOptions): AuditStore {
  let db: DatabaseSync;
  try {
    if (options.readOnly !== true) mkdirSync(dirname(options.path), { recursive: true });
    db = new DatabaseSync(options.path, { readOnly: options.readOnly === true });
    db.exec('PRAGMA busy_timeout = 5000');
    if (options.readOnly !== true) {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = FULL');
      migrate(db);
    }
    // LIKE must be case-sensitive, as in PostgreSQL, so a filter means the same on both stores.
    db.exec('PRAGMA case_sensitive_like = ON');
  } catch (error) {
    throw new Error(
      `cannot open the SQLite audit store at ${options.path}: ${(error as Error).message} (in a container with a read-only ` +
        `root filesystem, set audit.sinks[].path to a mounted volume)`,
      { cause: error },
    );
  }

  const writer = options.readOnly === true ? undefined : startWriter(options.path);
  let healthy = true;
  const committer = new GroupCommitter({
    writer: options.writer,
    maxBatch: options.maxBatch,
    delayMs: options.commitDelayMs ?? 0,
    loadHead: () => {
      const row = db.prepare(`SELECT seq, hash FROM ${TABLE} WHERE writer = ? ORDER BY seq DESC LIMIT 1`).get(options.writer) as
        { seq: number | bigint; hash: string } | undefined;
      return Promise.resolve(row === undefined ? undefined : ({ seq: Number(row.seq), hash: row.hash } satisfies ChainLink));
    },
    write: async (entries) => {
      if (writer === undefined) throw new Error('the audit store is open read-only');
      try {
        await writer.call({
          op: 'insert',
          rows: entries.map(insertValues),
          requestIds: entries.map((e) => e.columns.request_id),
          effects: entries.map((e) => (e.phase === 'decision' ? 'open' : closesDecision(e) ? 'close' : null)),
        });
        healthy = true;
      } catch (error) {
        healthy = false;
        throw error;
      }
    },
    onBatch: (size, seconds, ok) => options.onBatch?.('sqlite', size, seconds, ok),
  });

  // Readiness must recover without traffic (an unready pod gets none): an empty write transaction proves the file is writable again.
  const probe = setInterval(() => {
    if (healthy || writer === undefined) return;
    writer.call({ op: 'insert', rows: [] }).then(
      () => {
        healthy = true;
      },
      () => undefined,
    );
  }, 2000);
  probe.unref();

  const dialect: Dialect = {
    ...SQLITE_SQL,
    all: (sql, params) => Promise.resolve(db.prepare(sql).all(...(params as SqlValue[]))),
  };

  return {
    kind: 'sqlite',
    append: (entries) => committer.submit(entries),
    ...storeReads(dialect, TABLE),
    deleteOlderThan(beforeMs, batch) {
      const thread = writer;
      if (thread === undefined) return Promise.reject(new Error('the audit store is open read-only'));
      // All on the writer thread: each delete its own transaction, interleaved with the inserts.
      const onThread: Dialect = {
        ...SQLITE_SQL,
        all: async (sql, params) => (await thread.call({ op: 'read', sql, params })) as Array<Record<string, unknown>>,
      };
      return deleteOldestRuns(
        {
          ...retentionReads(onThread, TABLE),
          deleteThrough: async (writerId, seq) => Number(await thread.call({ op: 'delete', writer: writerId, seq })),
        },
        beforeMs,
        batch,
      );
    },
    healthy: () => healthy,
    async close() {
      clearInterval(probe);
      await committer.idle();
      await writer?.stop();
      if (db.isOpen) db.close();
    },
  };
}
