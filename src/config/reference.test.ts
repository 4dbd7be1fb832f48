import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configReference } from './reference.js';

describe('docs/configuration.md', () => {
  it('is the reference generated from the schema (run `npm run docs:config` after changing the schema)', () => {
    expect(readFileSync(join(import.meta.dirname, '../../docs/configuration.md'), 'utf8')).toBe(configReference());
  });
});
