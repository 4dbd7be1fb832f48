/**
 * The durable audit store: what every backend (SQLite, PostgreSQL) offers,
 * and the parts they share.
 *
 * Storage model: append-only entries, never updated. An allowed request in
 * strict mode gets a `decision` entry before it is forwarded and a `final`
 * entry when its response closes; every other request gets only a `final`
 * entry. Queries see one record per request (`sql.ts`). Each writer's
 * entries form a hash chain (`chain.ts`) that `verify` recomputes
 * (`verify.ts`); retention deletes each chain's oldest run of entries
 * (`retention.ts`). Writes are group-committed (`group-commit.ts`). The schema
 * and its migrations (`schema.ts`) and every read (`reads.ts`) are written
 * once over a small {@link Dialect} (`dialect.ts`); a backend supplies the
 * dialect and its write path. `conformance.ts` is the test suite every
 * backend must pass.
 *
 * Errors: store failures reject with the backend's error; callers turn them
 * into `ERR_AUDIT_UNAVAILABLE`.
 *
 * @module
 */
export * from './types.js';
export * from './chain.js';
export * from './dialect.js';
export * from './group-commit.js';
export * from './reads.js';
export * from './retention.js';
export * from './rollup.js';
export * from './schema.js';
export * from './sql.js';
export * from './verify.js';
