import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createTracing, failureDescription, TRACING_OFF } from './tracing.js';

const SRC = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

describe('tracing off', () => {
  it('is TRACING_OFF when disabled or OTEL_SDK_DISABLED, and refuses to start spans', async () => {
    const logger = pino({ level: 'silent' });
    expect(await createTracing({ enabled: false, resourceAttributes: {} }, {}, logger)).toBe(TRACING_OFF);
    expect(await createTracing({ enabled: true, resourceAttributes: {} }, { OTEL_SDK_DISABLED: 'true' }, logger)).toBe(TRACING_OFF);
    expect(() => TRACING_OFF.startRequest({}, 'GET')).toThrow(TypeError);
  });

  it('never loads the SDK: only src/tracing/otel.ts imports @opentelemetry, and only dynamically is it imported', () => {
    const offenders: string[] = [];
    for (const file of sources(SRC)) {
      const text = readFileSync(file, 'utf8');
      const name = relative(SRC, file);
      if (name !== join('tracing', 'otel.ts') && /from '@opentelemetry\//.test(text)) offenders.push(`${name} imports @opentelemetry`);
      if (/^import [^;]*from '[./]*(tracing\/)?otel\.js'/m.test(text)) offenders.push(`${name} imports otel.js statically`);
    }
    expect(offenders).toEqual([]);
    expect(readFileSync(join(SRC, 'tracing', 'tracing.ts'), 'utf8')).toContain("await import('./otel.js')");
  });
});

describe('failureDescription', () => {
  it('names a failure by its code or type, never by its message', () => {
    expect(failureDescription(Object.assign(new Error('token abc.def'), { code: 'ERR_AUTHN_INVALID_TOKEN' }))).toBe(
      'ERR_AUTHN_INVALID_TOKEN',
    );
    expect(failureDescription(new TypeError('secret in message'))).toBe('TypeError');
    expect(failureDescription('boom')).toBe('error');
  });
});
