/**
 * The configuration reference (docs/configuration.md), generated from the one
 * schema so the docs cannot drift from what the loader accepts. A test checks
 * the committed file against this output.
 *
 * @module
 */
import type { TSchema } from '@sinclair/typebox';
import { ConfigSchema } from './schema.js';

interface Row {
  path: string;
  type: string;
  defaultValue: string;
  description: string;
}

function typeOf(schema: TSchema): string {
  if (Array.isArray(schema.anyOf)) {
    const consts = (schema.anyOf as TSchema[]).map((s) => s.const as string | number | boolean | undefined);
    if (consts.every((c) => c !== undefined)) return consts.map((c) => `\`${String(c)}\``).join(' \\| ');
    return (schema.anyOf as TSchema[]).map(typeOf).join(' \\| ');
  }
  if (schema.type === 'array') return `list of ${typeOf(schema.items as TSchema)}`;
  if (schema.type === 'object' && schema.patternProperties) return 'map';
  if (schema.type === 'string' && schema.pattern === '^[0-9]+(ms|s|m|h)$') return 'duration';
  if (schema.type === 'string' && schema.pattern === '^[0-9]+(B|KiB|MiB|GiB)?$') return 'size';
  return String(schema.type ?? 'any');
}

function walk(schema: TSchema, path: string, required: boolean, rows: Row[]): void {
  const isObject = schema.type === 'object' && schema.properties !== undefined;
  if (path !== '') {
    rows.push({
      path,
      type: isObject ? 'object' : typeOf(schema),
      defaultValue: schema.default === undefined ? (required ? '*(required)*' : '') : `\`${JSON.stringify(schema.default)}\``,
      description: schema.description ?? '',
    });
  }
  if (isObject) {
    const requiredKeys = new Set((schema.required as string[] | undefined) ?? []);
    for (const [key, child] of Object.entries(schema.properties as Record<string, TSchema>)) {
      walk(child, path === '' ? key : `${path}.${key}`, requiredKeys.has(key) && child.default === undefined, rows);
    }
  } else if (schema.type === 'array' && (schema.items as TSchema).type === 'object') {
    walk(schema.items as TSchema, `${path}[]`, false, rows);
  }
}

export function configReference(): string {
  const rows: Row[] = [];
  walk(ConfigSchema, '', true, rows);
  const escape = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
  return [
    '# Configuration reference',
    '',
    'Generated from `src/config/schema.ts` by `npm run docs:config`; do not edit by hand.',
    'Durations are strings like `30s`, `5m`, `1h`; sizes like `512KiB`, `10MiB`. Unknown fields are errors.',
    '',
    '| Field | Type | Default | Description |',
    '|---|---|---|---|',
    ...rows
      .filter((r) => !r.path.endsWith('[]'))
      .map((r) => `| \`${r.path}\` | ${r.type} | ${r.defaultValue} | ${escape(r.description)} |`),
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  process.stdout.write(configReference());
}
