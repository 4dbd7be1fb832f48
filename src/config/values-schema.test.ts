import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { chartConfigSchema, withGeneratedConfig } from './values-schema.js';

const CHART = join(import.meta.dirname, '../../helm/kube-vertex-proxy');
const committed = readFileSync(join(CHART, 'values.schema.json'), 'utf8');

describe('helm/kube-vertex-proxy/values.schema.json', () => {
  it('carries the config schema generated from src/config/schema.ts (run `npm run docs:config` after changing the schema)', () => {
    expect(committed).toBe(withGeneratedConfig(committed));
  });

  it('leaves a field with a default out of `required` (helm applies no defaults; the proxy does)', () => {
    const config = chartConfigSchema() as { required?: string[]; properties: Record<string, { required?: string[] }> };
    expect(config.required).toEqual(['issuers', 'vertex']);
    expect(config.properties.server?.required).toBeUndefined();
  });

  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(JSON.parse(committed) as object);
  const files = ['values.yaml', ...readdirSync(join(CHART, 'ci')).map((f) => `ci/${f}`)];
  it.each(files)('accepts %s', (file) => {
    const values = parse(readFileSync(join(CHART, file), 'utf8')) as Record<string, unknown>;
    // ci/ files are overlays on values.yaml: check the merge helm would make (top-level keys merged one level).
    const defaults = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const merged: Record<string, unknown> = { ...defaults };
    for (const [key, value] of Object.entries(values)) {
      const base = defaults[key];
      merged[key] =
        base && typeof base === 'object' && !Array.isArray(base) && value && typeof value === 'object' && !Array.isArray(value)
          ? { ...base, ...value }
          : value;
    }
    expect(validate(merged), JSON.stringify(validate.errors)).toBe(true);
  });

  it('refuses a config field the proxy does not know', () => {
    const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as { config: Record<string, unknown> };
    expect(validate({ ...values, config: { ...values.config, policies: [] } })).toBe(false);
  });
});
