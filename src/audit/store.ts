/**
 * The audit store's public face: everything in `store/` (types, hash chain,
 * group commit, SQL, schema, verify), so callers import one module.
 *
 * @module
 */
export * from './store/index.js';
