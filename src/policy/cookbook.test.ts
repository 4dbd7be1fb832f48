/** The policy cookbook in docs/policy-guardrails.md is a valid config: its rules load as written. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';

const DOC = readFileSync(join(import.meta.dirname, '../../docs/policy-guardrails.md'), 'utf8');

describe('docs/policy-guardrails.md cookbook', () => {
  it('has at least five rule examples, and they load as one config', () => {
    const cookbook = DOC.slice(DOC.indexOf('## Cookbook'));
    const blocks = [...cookbook.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    const identities = blocks.filter((b) => b.startsWith('vertex:'));
    const rules = blocks.filter((b) => !b.startsWith('vertex:'));
    expect(rules.length + identities.length).toBeGreaterThanOrEqual(5);
    const text = [
      'issuers:',
      '  - { name: cluster, type: kubernetes, issuer: "https://issuer.example", audiences: [kube-vertex-proxy] }',
      ...identities.map((b) => b.replace('vertex:\n', 'vertex:\n  projects: [my-proj]\n  locations: [us-central1]\n')),
      'kubernetes: { namespaceLabels: static }',
      'audit: { durability: relaxed, sinks: [] }',
      'policy:',
      '  rules:',
      ...rules,
    ].join('\n');
    const settings = parseConfig(text, 'cookbook');
    expect(settings.policy.ruleCount).toBe(6);
    expect(settings.vertex.identities).toHaveLength(2);
  });
});
