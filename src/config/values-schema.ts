/**
 * The helm chart's values schema for the `config:` subtree, generated from the
 * one config schema ({@link ConfigSchema}), so `helm install` refuses what the
 * proxy would refuse at start. The rest of
 * `helm/kube-vertex-proxy/values.schema.json` (the deployment knobs) is
 * written by hand; `--write FILE` replaces only `properties.config` in it.
 * In: nothing (the schema module). Out: a JSON Schema object; no error codes.
 * A test checks the committed file against this output; `npm run docs:config`
 * regenerates it with the configuration reference.
 *
 * @module
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ConfigSchema } from './schema.js';

type JsonSchema = Record<string, unknown>;

/**
 * The loader fills a missing field from its `default` (ajv `useDefaults`), so
 * for it such a field is optional even though TypeBox lists it as required.
 * helm applies no defaults: drop those fields from `required`, everywhere.
 */
function defaultsAreOptional(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(defaultsAreOptional);
  if (node === null || typeof node !== 'object') return node;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node as JsonSchema)) {
    // `default` and `examples` are data, not schemas: copied as they are.
    out[key] = key === 'default' || key === 'examples' ? value : defaultsAreOptional(value);
  }
  const properties = out.properties as Record<string, JsonSchema> | undefined;
  if (Array.isArray(out.required) && properties !== undefined) {
    const required = (out.required as string[]).filter((name) => properties[name]?.default === undefined);
    if (required.length > 0) out.required = required;
    else delete out.required;
  }
  return out;
}

/** The config schema as plain JSON Schema (TypeBox's symbol keys dropped), with a title for helm's messages. */
export function chartConfigSchema(): JsonSchema {
  const plain = defaultsAreOptional(JSON.parse(JSON.stringify(ConfigSchema))) as JsonSchema;
  return {
    title: 'kube-vertex-proxy config file (generated from src/config/schema.ts by `npm run docs:config`; do not edit by hand)',
    ...plain,
  };
}

/** The whole values schema text with `properties.config` regenerated. */
export function withGeneratedConfig(valuesSchemaText: string): string {
  const schema = JSON.parse(valuesSchemaText) as { properties: Record<string, unknown> };
  schema.properties.config = chartConfigSchema();
  return `${JSON.stringify(schema, null, 2)}\n`;
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  const [flag, file] = process.argv.slice(2);
  if (flag !== '--write' || file === undefined) {
    process.stderr.write('usage: values-schema.js --write helm/kube-vertex-proxy/values.schema.json\n');
    process.exitCode = 2;
  } else {
    writeFileSync(file, withGeneratedConfig(readFileSync(file, 'utf8')));
  }
}
