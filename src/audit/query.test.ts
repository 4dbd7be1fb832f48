import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { formatRecords, parseFilters, parseTime } from './query.js';
import type { StoredRecord } from './store.js';

const NOW = Date.parse('2026-11-27T12:00:00.000Z');

describe('parseTime', () => {
  it.each([
    ['2026-11-27T10:00:00Z', Date.parse('2026-11-27T10:00:00Z')],
    ['2026-11-27T10:00:00.5+01:00', Date.parse('2026-11-27T09:00:00.5Z')],
    ['2026-11-27', Date.parse('2026-11-27T00:00:00Z')],
    ['1700000000000', 1_700_000_000_000],
    ['90m', NOW - 90 * 60_000],
    ['24h', NOW - 24 * 3_600_000],
    ['7d', NOW - 7 * 86_400_000],
  ])('reads %s', (text, expected) => {
    expect(parseTime(text, NOW)).toBe(expected);
  });
  it.each(['yesterday', '2026-13-45T99:99:99Z', '-1h', '1w', ''])('refuses %j', (text) => {
    expect(() => parseTime(text, NOW)).toThrow(TypeError);
  });
});

describe('parseFilters', () => {
  it('turns every filter into the query vocabulary', () => {
    expect(
      parseFilters(
        {
          principal: 'system:serviceaccount:ml:*',
          namespace: 'ml',
          permission: 'aiplatform.endpoints.*',
          operation: 'endpoints.predict',
          resource: 'projects/p/**',
          decision: 'deny',
          status: '403',
          rule: 'r1',
          from: '1h',
          to: '2026-11-27T12:00:00Z',
        },
        NOW,
      ),
    ).toEqual({
      principal: 'system:serviceaccount:ml:*',
      namespace: 'ml',
      permission: 'aiplatform.endpoints.*',
      operation: 'endpoints.predict',
      resource: 'projects/p/**',
      decision: 'deny',
      status: 403,
      rule: 'r1',
      from: NOW - 3_600_000,
      to: NOW,
    });
  });
  it.each<[Record<string, string>, string]>([
    [{ decision: 'maybe' }, 'decision must be'],
    [{ status: '2000' }, 'status must be'],
    [{ principal: 'x'.repeat(2000) }, 'too long'],
  ])('refuses %j', (values, message) => {
    expect(() => parseFilters(values, NOW)).toThrow(message);
  });
});

describe('formatRecords', () => {
  const record = {
    time: '2026-11-27T10:00:00.000Z',
    requestId: 'r1',
    principal: '=HYPERLINK("x")',
    decision: 'deny',
    status: 403,
    operation: 'endpoints.predict',
    reason: 'no-matching-rule',
    complete: true,
  } as unknown as StoredRecord;
  it('writes CSV a spreadsheet will not evaluate', () => {
    const csv = formatRecords([record], 'csv', true);
    expect(csv.split('\n')[1]).toContain(`"'=HYPERLINK(""x"")"`);
  });
  it('writes one JSON object per line', () => {
    expect(JSON.parse(formatRecords([record], 'json', true).trim())).toEqual(record);
  });
  it('shows a decision entry without its final entry as incomplete in the table', () => {
    expect(formatRecords([{ ...record, complete: false }], 'table', true)).toContain('incomplete');
  });
});

describe('audit config', () => {
  const base = `issuers: [{name: c, type: kubernetes, issuer: "https://x", audiences: [a]}]
vertex: {projects: [p], locations: [us-central1]}
`;
  it('defaults to strict, stdout plus SQLite beside the config file', () => {
    const { audit } = parseConfig(base, '/etc/kvp/config.yaml');
    expect(audit).toMatchObject({
      durability: 'strict',
      stdout: true,
      stores: [{ type: 'sqlite', path: '/etc/kvp/audit.db' }],
      retentionMs: 2160 * 3_600_000,
    });
    expect(audit.replicaId).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
  });
  it('refuses strict durability without a durable store, and a postgres sink with both or neither of url and urlFile', () => {
    expect(() => parseConfig(`${base}audit: {sinks: [{type: stdout}]}\n`, 'c.yaml')).toThrow(
      expect.objectContaining({
        problems: [expect.objectContaining({ path: 'audit.sinks', message: expect.stringContaining('needs a durable store') })],
      }),
    );
    expect(() => parseConfig(`${base}audit: {sinks: [{type: postgres}]}\n`, 'c.yaml')).toThrow(
      expect.objectContaining({
        problems: [expect.objectContaining({ path: 'audit.sinks[0]', message: 'give exactly one of url or urlFile' })],
      }),
    );
    expect(parseConfig(`${base}audit: {durability: relaxed, sinks: []}\n`, 'c.yaml').audit.stores).toEqual([]);
  });
  it('accepts audit.read as a permission in a policy rule', () => {
    const settings = parseConfig(
      `${base}policy: {rules: [{id: auditors, effect: allow, subjects: {namespaces: [compliance]}, permissions: ` +
        `[audit.read], resources: ["audit/*"]}]}\n`,
      'c.yaml',
    );
    expect(
      settings.policy.evaluate(
        { namespace: 'compliance', serviceAccount: 'a', labels: {} },
        {
          operationId: 'audit.records.list',
          permission: 'audit.read',
          groups: [],
          resource: 'audit/records',
          project: null,
          location: null,
        },
      ),
    ).toMatchObject({ allowed: true, ruleId: 'auditors' });
  });
});
