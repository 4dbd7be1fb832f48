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
  pruneOpenStatement,
  rollupTableName,
  storeReads,
  type AuditStore,
  type ChainLink,
  type Dialect,
  type StoreHooks,
} from './store.js';

const TABLE = 'audit_entries';

/**
 * Group-commit batches handed to the writer thread and not yet committed, at most: it joins them into transactions of
 * up to `maxBatch` entries as it goes. Beyond, entries wait on this thread and go over in larger batches.
 */
const WRITER_QUEUE_BATCHES = 64;

export interface SqliteStoreOptions extends StoreHooks {
  readonly path: string;
  readonly writer: string;
  readonly maxBatch: number;
  /** Final entries wait up to this long for a decision entry to share a commit with (strict mode; GroupCommitter). */
  readonly lingerMs?: number;
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
const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(workerData.path);
db.exec('PRAGMA busy_timeout = 5000');
db.exec('PRAGMA journal_mode = WAL');
db.exec('PRAGMA synchronous = FULL');
const insert = db.prepare(workerData.insertSql);
const open = db.prepare(workerData.openSql);
const close = db.prepare(workerData.closeSql);
const remove = db.prepare(workerData.deleteSql);
const prune = db.prepare(workerData.pruneSql);
releaseStartupMemory();
// The newest insert batch that failed or was skipped: a batch chained onto it ('after') must not be committed either.
let failedId = 0;
// An insert taken off the port that did not fit in the transaction before: the first of the next one.
let carried;
parentPort.on('message', (m) => {
  handle(m);
  while (carried !== undefined) {
    const next = carried;
    carried = undefined;
    handle(next);
  }
});
function handle(m) {
  if (m.op === 'insert') inserts(m);
  else other(m);
}
// Group commit: the batches that arrived while the last transaction was written go into this one, up to maxBatch rows,
// read straight off the port, so the next transaction starts as soon as the last one has committed.
function inserts(first) {
  const batch = [first];
  let rows = first.rows.length;
  for (;;) {
    if (rows >= workerData.maxBatch) break;
    const more = receiveMessageOnPort(parentPort);
    if (more === undefined) break;
    const m = more.message;
    // Only a batch chained onto the one before it joins (always so while batches are in flight).
    if (m.op !== 'insert' || m.after !== batch[batch.length - 1].id || rows + m.rows.length > workerData.maxBatch) {
      carried = m;
      break;
    }
    batch.push(m);
    rows += m.rows.length;
  }
  const ids = batch.map((m) => m.id);
  // Chained onto a batch that was not committed: neither is this one (nor the ones joined to it, chained onto it).
  if (first.after !== null && first.after === failedId) {
    failedId = ids[ids.length - 1];
    parentPort.postMessage({ ids, ok: false, rows, predecessor: true, message: 'the audit batch before it was not committed' });
    return;
  }
  try {
    db.exec('BEGIN IMMEDIATE');
    try {
      for (const m of batch) {
        for (let i = 0; i < m.rows.length; i++) {
          insert.run(...m.rows[i]);
          // 'open' follows its own insert: last_insert_rowid() is the decision entry's id.
          if (m.effects[i] === 'open') open.run(m.requestIds[i]);
          else if (m.effects[i] === 'close') close.run(m.requestIds[i]);
        }
      }
      db.exec('COMMIT');
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
    parentPort.postMessage({ ids, ok: true, value: rows, rows });
  } catch (error) {
    failedId = ids[ids.length - 1];
    parentPort.postMessage({ ids, ok: false, rows, message: String(error && error.message || error) });
  }
}
function other(m) {
  try {
    if (m.op === 'delete') {
      const changes = Number(remove.run(m.beforeMs, m.batch).changes);
      if (changes > 0) prune.run();
      parentPort.postMessage({ ids: [m.id], ok: true, value: changes });
    } else if (m.op === 'close') {
      db.close();
      parentPort.postMessage({ ids: [m.id], ok: true, value: 0 });
      parentPort.close();
    }
  } catch (error) {
    parentPort.postMessage({ ids: [m.id], ok: false, message: String(error && error.message || error) });
  }
}
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

/** A reply from the writer thread: one per transaction (inserts, `rows` set) or per other operation. */
interface WriterReply {
  readonly ids: readonly number[];
  readonly ok: boolean;
  readonly value?: number;
  readonly rows?: number;
  readonly predecessor?: boolean;
  readonly message?: string;
}

interface WriterThread {
  /** An insert batch; `after`: the insert it is chained onto while that one is in flight (null: none). */
  insert(message: Record<string, unknown>, after: boolean): Promise<number>;
  call(message: Record<string, unknown>): Promise<number>;
  stop(): Promise<void>;
}

/** A batch not committed because the batch before it, whose hash chain it continues, was not. */
export class SqliteChainPredecessorFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SqliteChainPredecessorFailed';
  }
}

function startWriter(path: string, maxBatch: number, onTransaction: (rows: number, seconds: number, ok: boolean) => void): WriterThread {
  const worker = new Worker(WRITER_SOURCE, {
    eval: true,
    workerData: {
      path,
      maxBatch,
      insertSql: `INSERT INTO ${TABLE} (${INSERT_COLUMNS.join(', ')}) VALUES (${INSERT_COLUMNS.map(() => '?').join(', ')})`,
      openSql: `INSERT INTO ${openDecisionsTableName(TABLE)} (request_id, id) VALUES (?, last_insert_rowid())`,
      closeSql: `DELETE FROM ${openDecisionsTableName(TABLE)} WHERE request_id = ?`,
      deleteSql: `DELETE FROM ${TABLE} WHERE id IN (SELECT id FROM ${TABLE} WHERE written_ms < ? ORDER BY id LIMIT ?)`,
      pruneSql: pruneOpenStatement(TABLE),
    },
  });
  // The writer must not keep a finished process alive; pending calls keep it referenced.
  worker.unref();
  const pending = new Map<number, { resolve: (n: number) => void; reject: (e: Error) => void; posted: bigint }>();
  let nextId = 1;
  let lastInsertId = 0;
  let dead: Error | undefined;
  const failAll = (error: Error) => {
    dead = error;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  worker.on('message', (m: WriterReply) => {
    const first = pending.get(m.ids[0] as number);
    // A transaction's time runs from when its oldest batch was handed over.
    if (m.rows !== undefined && first !== undefined) onTransaction(m.rows, Number(process.hrtime.bigint() - first.posted) / 1e9, m.ok);
    for (const id of m.ids) {
      const p = pending.get(id);
      if (p === undefined) continue;
      pending.delete(id);
      if (m.ok) p.resolve(m.value ?? 0);
      else if (m.predecessor === true) p.reject(new SqliteChainPredecessorFailed(m.message ?? 'not committed'));
      else p.reject(new Error(m.message ?? 'sqlite write failed'));
    }
    if (pending.size === 0) worker.unref();
  });
  worker.on('error', (error: Error) => failAll(error));
  worker.on('exit', (code) => failAll(new Error(`the SQLite writer thread exited (${code})`)));
  const post = (message: Record<string, unknown>, extra: Record<string, unknown>): Promise<number> => {
    if (dead !== undefined) return Promise.reject(dead);
    const id = nextId++;
    worker.ref();
    return new Promise<number>((resolve, reject) => {
      pending.set(id, { resolve, reject, posted: process.hrtime.bigint() });
      worker.postMessage({ ...message, ...extra, id });
    });
  };
  return {
    insert(message, after) {
      const chainedOnto = after ? lastInsertId : null;
      const done = post(message, { op: 'insert', after: chainedOnto });
      if (dead === undefined) lastInsertId = nextId - 1;
      return done;
    },
    call: (message) => post(message, {}),
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

  const writer =
    options.readOnly === true
      ? undefined
      : startWriter(options.path, options.maxBatch, (rows, seconds, ok) => options.onBatch?.('sqlite', rows, seconds, ok));
  let healthy = true;
  /** A batch failed before it reached the writer: the batches chained onto it must not reach it either. */
  let unsentTail = false;
  const committer = new GroupCommitter({
    writer: options.writer,
    maxBatch: options.maxBatch,
    // The writer thread joins what queued behind its transaction into the next one (group commit on its side): each
    // batch goes over at once, so a transaction starts as soon as the one before it has committed.
    eager: true,
    maxInFlight: WRITER_QUEUE_BATCHES,
    lingerMs: options.lingerMs ?? 0,
    loadHead: () => {
      const row = db.prepare(`SELECT seq, hash FROM ${TABLE} WHERE writer = ? ORDER BY seq DESC LIMIT 1`).get(options.writer) as
        { seq: number | bigint; hash: string } | undefined;
      return Promise.resolve(row === undefined ? undefined : ({ seq: Number(row.seq), hash: row.hash } satisfies ChainLink));
    },
    write: async (entries, previous) => {
      if (writer === undefined) throw new Error('the audit store is open read-only');
      if (previous === undefined) unsentTail = false;
      else if (unsentTail) throw new SqliteChainPredecessorFailed('the audit batch before it was not committed');
      let sent: Promise<number>;
      try {
        sent = writer.insert(
          {
            rows: entries.map(insertValues),
            requestIds: entries.map((e) => e.columns.request_id),
            effects: entries.map((e) => (e.phase === 'decision' ? 'open' : closesDecision(e) ? 'close' : null)),
          },
          previous !== undefined,
        );
      } catch (error) {
        unsentTail = true;
        healthy = false;
        options.onBatch?.('sqlite', entries.length, 0, false);
        throw error;
      }
      try {
        await sent;
        healthy = true;
      } catch (error) {
        // The batch before failed, not this one: that failure already said whether the store is healthy.
        if (!(error instanceof SqliteChainPredecessorFailed)) healthy = false;
        throw error;
      }
    },
    // Transactions are counted by the writer thread (one may hold several batches); these are batches that never reached it.
    onUnwritten: (size) => options.onBatch?.('sqlite', size, 0, false),
  });

  // Readiness must recover without traffic (an unready pod gets none): an empty write transaction proves the file is writable again.
  const probe = setInterval(() => {
    if (healthy || writer === undefined) return;
    writer.insert({ rows: [], requestIds: [], effects: [] }, false).then(
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
    async deleteOlderThan(beforeMs, batch) {
      let total = 0;
      if (writer === undefined) throw new Error('the audit store is open read-only');
      for (;;) {
        // On the writer thread: one batch per transaction, interleaved with the inserts.
        const changes = await writer.call({ op: 'delete', beforeMs, batch });
        total += changes;
        if (changes < batch) return total;
      }
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
