import { describe, expect, it } from 'vitest';
import { consoleUrl, readConsoleParams, toAuditQuery } from './params.js';

const NOW = Date.parse('2026-12-04T12:00:00Z');

describe('console parameters', () => {
  it('reads the known filters, trimmed, and drops empty ones', () => {
    expect(readConsoleParams({ namespace: ' ml ', principal: '', pageToken: 'x', other: 'y' })).toEqual({ namespace: 'ml' });
  });

  it('refuses a repeated filter', () => {
    expect(() => readConsoleParams({ namespace: ['a', 'b'] })).toThrow('namespace is given more than once');
  });

  it('spells a service account as its principal, patterns included', () => {
    expect(toAuditQuery({ serviceAccount: 'ml/*', decision: 'deny' }, NOW)).toEqual({
      principal: 'system:serviceaccount:ml:*',
      decision: 'deny',
    });
    expect(() => toAuditQuery({ serviceAccount: 'ml' }, NOW)).toThrow('NAMESPACE/NAME');
    expect(() => toAuditQuery({ serviceAccount: 'ml/a', principal: 'x' }, NOW)).toThrow('not both');
  });

  it("uses the query API's parsing for times and values, with defaults for missing filters", () => {
    expect(toAuditQuery({}, NOW, { from: '24h' })).toEqual({ from: NOW - 86_400_000 });
    expect(toAuditQuery({ from: '1h', status: '403' }, NOW, { from: '24h' })).toEqual({ from: NOW - 3_600_000, status: 403 });
    expect(() => toAuditQuery({ status: 'abc' }, NOW)).toThrow('status must be an HTTP status code');
  });

  it('builds shareable URLs with only the filters in use', () => {
    expect(consoleUrl('/audit/ui/', {})).toBe('/audit/ui/');
    expect(consoleUrl('/audit/ui/', { namespace: 'ml', resource: 'projects/p/*' }, { pageToken: 'abc', empty: '' })).toBe(
      '/audit/ui/?namespace=ml&resource=projects%2Fp%2F*&pageToken=abc',
    );
  });
});
