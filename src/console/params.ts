/**
 * The console's URL vocabulary: the filters of a view as query parameters
 * (so a view can be shared by its URL) → an {@link AuditQuery} for the
 * query API, and back to links. Pure.
 *
 * Throws `TypeError` with a caller-facing message for a bad value.
 *
 * @module
 */
import { FILTER_NAMES, parseFilters, type FilterName } from '../audit/query.js';
import type { AuditQuery } from '../audit/store.js';

/** The query API's filters plus `serviceAccount` (`NAMESPACE/NAME`, `*` allowed), a spelling of `principal`. */
export const CONSOLE_FILTERS = [...FILTER_NAMES.slice(0, 1), 'serviceAccount', ...FILTER_NAMES.slice(1)] as const;
export type ConsoleFilter = (typeof CONSOLE_FILTERS)[number];
export type ConsoleParams = Partial<Record<ConsoleFilter, string>>;

const SERVICE_ACCOUNT = /^([a-z0-9*][-a-z0-9.*]*)\/([a-z0-9*][-a-z0-9.*]*)$/;

/** Reads the known filters from a parsed query string; other parameters (paging, format) are left to the caller. */
export function readConsoleParams(raw: Record<string, unknown>): ConsoleParams {
  const params: ConsoleParams = {};
  for (const name of CONSOLE_FILTERS) {
    const value = raw[name];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new TypeError(`${name} is given more than once`);
    const trimmed = value.trim();
    if (trimmed !== '') params[name] = trimmed;
  }
  return params;
}

/** The filters as the query API's query; `defaults` fill filters the URL leaves out (e.g. a summary's `from`). */
export function toAuditQuery(params: ConsoleParams, now: number, defaults: Partial<Record<FilterName, string>> = {}): AuditQuery {
  const values: Partial<Record<FilterName, string>> = { ...defaults };
  for (const name of FILTER_NAMES) if (params[name] !== undefined) values[name] = params[name];
  if (params.serviceAccount !== undefined) {
    const match = SERVICE_ACCOUNT.exec(params.serviceAccount);
    if (!match) throw new TypeError('service account must be NAMESPACE/NAME (patterns with * allowed, e.g. ml/*)');
    if (params.principal !== undefined) throw new TypeError('give a principal or a service account, not both');
    values.principal = `system:serviceaccount:${match[1]}:${match[2]}`;
  }
  return parseFilters(values, now);
}

/** A console URL with these filters (empty ones left out) and extra parameters. */
export function consoleUrl(path: string, params: ConsoleParams, extra: Record<string, string | undefined> = {}): string {
  const search = new URLSearchParams();
  for (const name of CONSOLE_FILTERS) {
    const value = params[name];
    if (value !== undefined && value !== '') search.set(name, value);
  }
  for (const [name, value] of Object.entries(extra)) if (value !== undefined && value !== '') search.set(name, value);
  const text = search.toString();
  return text === '' ? path : `${path}?${text}`;
}
