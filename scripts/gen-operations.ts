/**
 * `npm run gen:operations`: reads the HTTP rules of every Vertex AI RPC from
 * the protos `@google-cloud/aiplatform` ships (`option (google.api.http)`,
 * with its `additional_bindings`), and the google.longrunning.Operations
 * bindings from the generated clients of the same package (they come from
 * the service configuration `aiplatform_{version}.yaml`, which the package
 * does not ship as such), and writes `src/vertex/operations.generated.ts`.
 *
 * The generated file holds facts only (service, RPC, streaming, long-running,
 * path templates). Permissions, groups and the rest are derived from it by
 * `src/vertex/derive-operations.ts`; this script runs that derivation on the
 * fresh facts before writing, so an RPC whose permission cannot be derived is
 * an error here, not a silent guess at run time.
 *
 * `--check` compares instead of writing (exit 1 when the file is stale).
 *
 * @module
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

import { deriveOperationTable } from '../src/vertex/derive-operations.js';
import type { GeneratedLroBinding, GeneratedRpc, HttpBindingFact } from '../src/vertex/proto-facts.js';

/**
 * The clone: the nearest directory above this file with a package.json (this file runs from scripts/ and, compiled, from
 * dist-scripts/scripts/).
 */
function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('gen-operations: no package.json above the script');
    dir = parent;
  }
  return dir;
}

const ROOT = findRoot();
const PACKAGE_DIR = path.join(ROOT, 'node_modules', '@google-cloud', 'aiplatform');
export const GENERATED_FILE = path.join(ROOT, 'src', 'vertex', 'operations.generated.ts');
const VERSIONS = ['v1', 'v1beta1'] as const;
const HTTP_VERBS = ['get', 'post', 'patch', 'delete', 'put'] as const;

interface HttpRuleOption {
  readonly [key: string]: unknown;
  readonly additional_bindings?: HttpRuleOption | readonly HttpRuleOption[];
}

function bindingsOf(rule: HttpRuleOption, where: string): HttpBindingFact[] {
  const out: HttpBindingFact[] = [];
  for (const binding of [rule, ...[rule.additional_bindings ?? []].flat()]) {
    const verbs = HTTP_VERBS.filter((verb) => typeof binding[verb] === 'string');
    if (verbs.length !== 1) throw new Error(`${where}: an HTTP rule with ${verbs.length} methods`);
    const verb = verbs[0] as (typeof HTTP_VERBS)[number];
    out.push({ method: verb.toUpperCase() as HttpBindingFact['method'], path: binding[verb] as string });
  }
  return out;
}

/** Every RPC of every service in `google/cloud/aiplatform/{version}/*.proto`, in file and declaration order. */
export function readProtoRpcs(): GeneratedRpc[] {
  const rpcs: GeneratedRpc[] = [];
  for (const version of VERSIONS) {
    const dir = path.join(PACKAGE_DIR, 'build', 'protos', 'google', 'cloud', 'aiplatform', version);
    for (const file of readdirSync(dir)
      .filter((name) => name.endsWith('.proto'))
      .sort()) {
      // Options parse without resolving imports: only names, streaming flags and options are read.
      const parsed = protobuf.parse(readFileSync(path.join(dir, file), 'utf8'), { keepCase: true });
      const visit = (ns: protobuf.NamespaceBase): void => {
        for (const child of ns.nestedArray) {
          if (child instanceof protobuf.Service) {
            for (const method of child.methodsArray) {
              const rule = (method.parsedOptions as Record<string, unknown>[] | undefined)?.find(
                (option) => '(google.api.http)' in option,
              )?.['(google.api.http)'] as HttpRuleOption | undefined;
              rpcs.push({
                version,
                service: child.name,
                rpc: method.name,
                streaming: method.responseStream === true,
                longRunning: method.responseType === 'google.longrunning.Operation',
                bindings: rule === undefined ? [] : bindingsOf(rule, `${version} ${child.name}.${method.name}`),
              });
            }
          } else if (child instanceof protobuf.Namespace) {
            visit(child);
          }
        }
      };
      visit(parsed.root);
    }
  }
  return rpcs;
}

/**
 * The google.longrunning.Operations HTTP rules, as the generated clients carry
 * them (`lroOptions.httpRules`: `selector: 'google.longrunning.Operations.GetOperation', get: '…', additional_bindings: [...]`).
 * Read as text: each path string belongs to the last selector before it.
 */
export function readLroBindings(): GeneratedLroBinding[] {
  const seen = new Set<string>();
  const out: GeneratedLroBinding[] = [];
  for (const version of VERSIONS) {
    const dir = path.join(PACKAGE_DIR, 'build', 'src', version);
    for (const file of readdirSync(dir)
      .filter((name) => name.endsWith('_client.js'))
      .sort()) {
      const text = readFileSync(path.join(dir, file), 'utf8');
      const start = text.indexOf('lroOptions.httpRules = [');
      if (start === -1) continue;
      const end = text.indexOf('];', start);
      const rules = text.slice(start, end);
      let selector = '';
      for (const match of rules.matchAll(/selector: '([^']+)'|\b(get|post|delete|patch): '([^']+)'/g)) {
        if (match[1] !== undefined) {
          selector = match[1];
          continue;
        }
        const rpc = /^google\.longrunning\.Operations\.([A-Za-z]+)$/.exec(selector)?.[1];
        const pathTemplate = match[3] as string;
        if (rpc === undefined || !pathTemplate.startsWith(`/${version}/`)) continue;
        const key = `${version} ${rpc} ${pathTemplate}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ version, rpc, method: (match[2] as string).toUpperCase() as GeneratedLroBinding['method'], path: pathTemplate });
      }
    }
  }
  out.sort((a, b) =>
    a.version === b.version ? (a.path === b.path ? a.rpc.localeCompare(b.rpc) : a.path < b.path ? -1 : 1) : a.version < b.version ? -1 : 1,
  );
  return out;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The text of `src/vertex/operations.generated.ts` for the installed package. Throws when the derivation finds a problem. */
export function renderOperationsSource(): string {
  const rpcs = readProtoRpcs();
  const lro = readLroBindings();
  // Fails (with every problem listed) before anything is written.
  const table = deriveOperationTable(rpcs, lro);
  if (table.unusedExceptions.length > 0)
    throw new Error(`permission exceptions for operations the protos no longer have: ${table.unusedExceptions.join(', ')}`);
  const lines = [
    '// GENERATED by `npm run gen:operations` from the protos of @google-cloud/aiplatform ' + packageVersion() + '. Do not edit:',
    '// change the package version (or src/vertex/derive-operations.ts) and run the generator again.',
    '//',
    '// RPCS: every RPC of google.cloud.aiplatform.{v1,v1beta1} with its `option (google.api.http)` bindings',
    '// (empty: no REST binding, gRPC only). LRO_BINDINGS: the google.longrunning.Operations bindings.',
    '',
    "import type { GeneratedLroBinding, GeneratedRpc } from './proto-facts.js';",
    '',
    `export const AIPLATFORM_PACKAGE_VERSION = ${JSON.stringify(packageVersion())};`,
    '',
    'export const RPCS: readonly GeneratedRpc[] = [',
    ...rpcs.map((rpc) => `  ${JSON.stringify(rpc)},`),
    '];',
    '',
    'export const LRO_BINDINGS: readonly GeneratedLroBinding[] = [',
    ...lro.map((binding) => `  ${JSON.stringify(binding)},`),
    '];',
    '',
  ];
  return lines.join('\n');
}

const invokedDirectly = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]);
if (invokedDirectly) {
  const source = renderOperationsSource();
  if (process.argv.includes('--check')) {
    const current = readFileSync(GENERATED_FILE, 'utf8');
    if (current !== source) {
      console.error(`${path.relative(ROOT, GENERATED_FILE)} is stale: run npm run gen:operations`);
      process.exitCode = 1;
    }
  } else {
    writeFileSync(GENERATED_FILE, source);
    console.log(`wrote ${path.relative(ROOT, GENERATED_FILE)}`);
  }
}
