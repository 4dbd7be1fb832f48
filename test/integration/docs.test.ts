/**
 * The docs tell the truth, by test:
 * - every shell block marked ```sh runnable``` in README.md and docs/*.md runs
 *   against the embedded default (dev/cli.ts, what `npm start` runs), from the clone as a reader would type it (`npx kube-vertex-proxy`),
 *   and exits as the block says (0, or `expect-exit=N`);
 * - every metric, config field (dotted paths and the keys of config-shaped
 *   YAML examples), CLI flag and error code the docs name exists in the code;
 * - the benchmark tables in docs/benchmark.md are the rendering of the
 *   committed result file they name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BEGIN,
  END,
  newestResultFile,
  README_BEGIN,
  README_END,
  renderBenchmarkBlock,
  readmeBlockFor,
  type ResultFile,
} from '../../bench/docs.js';
import { AUDIT_READ_PERMISSION } from '../../src/audit/settings.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { ERROR_CODES } from '../../src/errors.js';
import { DEV_CLI, REPO_ROOT } from '../helpers/proxy-process.js';
import { runToolAsync } from '../helpers/tools.js';

const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');
const DOCS = [
  'README.md',
  ...readdirSync(join(REPO_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const PAGES = DOCS.map((path) => ({ path, text: read(path) }));

interface Block {
  readonly page: string;
  readonly line: number;
  readonly info: string;
  readonly body: string;
}

function codeBlocks(page: string, text: string): Block[] {
  const blocks: Block[] = [];
  for (const match of text.matchAll(/^ *```([^\n]*)\n([\s\S]*?)^ *```$/gm)) {
    const line = text.slice(0, match.index).split('\n').length;
    const indent = /^ */.exec(match[0])![0].length;
    const body = match[2]!
      .split('\n')
      .map((l) => l.slice(Math.min(indent, /^ */.exec(l)![0].length)))
      .join('\n');
    blocks.push({ page, line, info: match[1]!.trim(), body });
  }
  return blocks;
}
const BLOCKS = PAGES.flatMap((p) => codeBlocks(p.path, p.text));
/** Inline code spans and code blocks: where the docs name things. */
const CODE = PAGES.flatMap((p) => [
  ...[...p.text.matchAll(/`([^`\n]+)`/g)].map((m) => ({ page: p.path, text: m[1]! })),
  ...codeBlocks(p.path, p.text).map((b) => ({ page: p.path, text: b.body })),
]);

/** OpenTelemetry semantic-convention attribute names the docs mention. */
const OTEL_ATTRIBUTES = new Set(['service.name', 'server.address', 'server.port']);

describe('runnable shell blocks, against the embedded default', () => {
  const runnable = BLOCKS.filter((b) => /^sh\s+runnable\b/.test(b.info));
  let dev: ChildProcess;
  let dir: string;

  beforeAll(async () => {
    dir = join(mkdtempSync(join(tmpdir(), 'kvp-docs-')), '.kvp-dev');
    dev = spawn(process.execPath, [DEV_CLI, '--dir', dir], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    dev.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    dev.stderr!.on('data', () => undefined);
    const deadline = Date.now() + 60_000;
    while (!(out.includes('is running on its embedded default') && existsSync(join(dir, 'env.sh')))) {
      if (Date.now() > deadline || dev.exitCode !== null) throw new Error(`npm start (dist-dev/dev/cli.js) did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 90_000);
  afterAll(async () => {
    if (dev && dev.exitCode === null) {
      dev.kill('SIGINT');
      await new Promise((r) => dev.once('exit', r));
    }
  });

  it('exist: the quick start, can-i, check and the audit commands are among them', () => {
    const all = runnable.map((b) => b.body).join('\n');
    expect(runnable.filter((b) => b.page === 'README.md').length).toBeGreaterThanOrEqual(3);
    for (const command of [
      'curl',
      'kube-vertex-proxy can-i',
      'kube-vertex-proxy check',
      'kube-vertex-proxy audit query',
      'kube-vertex-proxy audit verify',
    ])
      expect(all).toContain(command);
  });

  it.each(runnable.map((b) => ({ name: `${b.page}:${b.line}`, block: b })))(
    '$name',
    async ({ block }) => {
      const expected = Number(/expect-exit=(\d+)/.exec(block.info)?.[1] ?? 0);
      // The blocks name the dev directory as `npm start` makes it (.kvp-dev in the clone); this run's is a temp one.
      const script = block.body.replaceAll('.kvp-dev/', `${dir}/`);
      const result = await runToolAsync('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: REPO_ROOT, timeoutMs: 180_000 });
      expect(
        result.status,
        `${block.page}:${block.line} exited ${result.status}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
      ).toBe(expected);
    },
    200_000,
  );
});

describe('names in the docs exist in the code', () => {
  const sources = (dir: string): string[] =>
    readdirSync(join(REPO_ROOT, dir), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
      .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8'));
  const src = sources('src').join('\n');

  it('every metric', () => {
    const defined = new Set([...src.matchAll(/\$\{METRIC_PREFIX\}([a-z0-9_]+)|kube_vertex_proxy_([a-z0-9_]+)/g)].map((m) => m[1] ?? m[2]));
    const named = PAGES.flatMap((p) =>
      [...p.text.matchAll(/(?:kube_vertex_proxy_|…_)([a-z0-9_]+)/g)].map((m) => ({ page: p.path, name: m[1]! })),
    );
    expect(named.length).toBeGreaterThan(20);
    const missing = named.filter(({ name }) => !defined.has(name) && !defined.has(name.replace(/_(bucket|sum|count)$/, '')));
    expect(missing, 'metrics the docs name that the code does not define').toEqual([]);
  });

  it('every error code', () => {
    const named = PAGES.flatMap((p) => [...p.text.matchAll(/\bERR_[A-Z0-9_]+\*?/g)].map((m) => ({ page: p.path, code: m[0] })));
    expect(named.length).toBeGreaterThan(3);
    // `ERR_AUTHN_*` names a family: at least one code must start so.
    const codes = Object.keys(ERROR_CODES);
    const exists = (code: string) => (code.endsWith('_*') ? codes.some((c) => c.startsWith(code.slice(0, -1))) : codes.includes(code));
    expect(named.filter(({ code }) => !exists(code))).toEqual([]);
  });

  it('every CLI flag, per command (and those of `npm run bench` and deploy/gcloud/setup.sh)', () => {
    const flagsIn = (text: string) =>
      new Set([...text.matchAll(/(['"]?)([a-z][a-z-]*)\1: \{ type: '(?:string|boolean)'/g)].map((m) => m[2]!));
    const known: Record<string, Set<string>> = {
      serve: flagsIn(read('src/cli/serve.ts')),
      check: flagsIn(read('src/cli/check.ts')),
      'can-i': flagsIn(read('src/cli/can-i.ts')),
      audit: flagsIn(read('src/cli/audit.ts')),
      dev: flagsIn(read('dev/cli.ts')),
      bench: flagsIn(read('bench/run.ts')),
      setup: new Set([...read('deploy/gcloud/setup.sh').matchAll(/^\s+--([a-z-]+)\)/gm)].map((m) => m[1]!)),
    };
    const unknown: string[] = [];
    let checked = 0;
    for (const { page, text } of CODE) {
      // A command and its arguments run to the end of the line, with `\` continuing it.
      const joined = text.replace(/\\\n\s*/g, ' ');
      for (const m of joined.matchAll(
        /(?:kube-vertex-proxy|dist\/cli\.js) (serve|check|can-i|audit)\b([^\n`]*)|npm run bench -- ([^\n`]*)|deploy\/gcloud\/setup\.sh([^\n`]*)|npm start -- ([^\n`]*)/g,
      )) {
        const command = m[1] ?? (m[3] !== undefined ? 'bench' : m[5] !== undefined ? 'dev' : 'setup');
        const rest = m[2] ?? m[3] ?? m[4] ?? m[5] ?? '';
        for (const flag of rest.matchAll(/(?:^|[\s[])--([a-z][a-z-]*)/g)) {
          checked += 1;
          if (!known[command]!.has(flag[1]!)) unknown.push(`${page}: ${command} --${flag[1]}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(unknown).toEqual([]);
  });

  describe('every config field and chart value', () => {
    type Schema = {
      properties?: Record<string, Schema>;
      additionalProperties?: boolean | Schema;
      patternProperties?: Record<string, Schema>;
      anyOf?: Schema[];
      items?: Schema;
    };
    const values = JSON.parse(read('helm/kube-vertex-proxy/values.schema.json')) as Schema;
    const config = values.properties!.config!;
    const configKeys = new Set(Object.keys(config.properties!));
    const valueKeys = new Set(Object.keys(values.properties!));

    /** The schemas a key leads to (empty: no such field). */
    const child = (schema: Schema, key: string | number): Schema[] => {
      if (schema.anyOf) return schema.anyOf.flatMap((s) => child(s, key));
      if (typeof key === 'number' || key === '[]') return schema.items ? [schema.items] : [];
      if (schema.properties?.[key]) return [schema.properties[key]];
      for (const [pattern, s] of Object.entries(schema.patternProperties ?? {})) if (new RegExp(pattern).test(key)) return [s];
      if (schema.additionalProperties !== undefined && schema.additionalProperties !== false)
        return [schema.additionalProperties === true ? {} : schema.additionalProperties];
      if (!schema.properties && !schema.anyOf) return [{}]; // a leaf or an open object: nothing to check below it
      return [];
    };
    const resolves = (root: Schema, path: ReadonlyArray<string | number>): boolean => {
      let at: Schema[] = [root];
      for (const key of path) {
        at = at.flatMap((s) => child(s, key));
        if (at.length === 0) return false;
      }
      return true;
    };

    it('dotted paths in code spans (`kubernetes.maxStaleness`, `networkPolicy.egressTargets`, `issuers[].audiences`)', () => {
      const missing: string[] = [];
      let checked = 0;
      for (const { page, text } of CODE) {
        for (const m of text.matchAll(
          /(?<![\w./-])([a-z][A-Za-z0-9]*(?:\[[^\]\s]*\])?(?:\.[a-z][A-Za-z0-9]*(?:\[[^\]\s]*\])?)+)(?![\w/:-]|\.[A-Za-z0-9])/g,
        )) {
          const token = m[1]!;
          const first = token.split(/[.[]/)[0]!;
          const isConfig = configKeys.has(first);
          if (!isConfig && !valueKeys.has(first)) continue;
          // Permission and operation names that share the `audit.` prefix are not fields.
          if (token === AUDIT_READ_PERMISSION || /^audit\.(records|summary|console)\./.test(token)) continue;
          // OpenTelemetry attribute names (`service.name`, `server.address`) are span attributes, not fields.
          if (OTEL_ATTRIBUTES.has(token)) continue;
          // File names (`audit.db`, `config.yaml`) and claim names (`kubernetes.io`) are not fields either.
          if (/\.(db|yaml|yml|json|io|md|sh|pem|ts|com)$/.test(token)) continue;
          const path = token.split('.').flatMap((seg) => {
            const b = /^([A-Za-z0-9]+)\[[^\]]*\]$/.exec(seg);
            return b ? [b[1]!, '[]'] : [seg];
          });
          checked += 1;
          if (!resolves(isConfig ? config : values, path) && !resolves(values, path)) missing.push(`${page}: ${token}`);
        }
      }
      expect(checked).toBeGreaterThan(30);
      expect(missing).toEqual([]);
    });

    it('the keys of config and values examples (YAML blocks)', () => {
      const missing: string[] = [];
      let checked = 0;
      const walk = (root: Schema, node: unknown, path: Array<string | number>, where: string) => {
        if (Array.isArray(node)) node.forEach((item, i) => walk(root, item, [...path, i], where));
        else if (node !== null && typeof node === 'object') {
          for (const [key, value] of Object.entries(node)) {
            checked += 1;
            if (!resolves(root, [...path, key])) missing.push(`${where}: ${[...path, key].join('.')}`);
            else walk(root, value, [...path, key], where);
          }
        }
      };
      for (const block of BLOCKS.filter((b) => b.info === 'yaml')) {
        let doc: unknown;
        try {
          doc = parse(block.body);
        } catch {
          continue;
        }
        if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) continue;
        const keys = Object.keys(doc);
        const where = `${block.page}:${block.line}`;
        if (keys.every((k) => configKeys.has(k))) walk(config, doc, [], where);
        else if (keys.every((k) => valueKeys.has(k))) walk(values, doc, [], where);
      }
      expect(checked).toBeGreaterThan(50);
      expect(missing).toEqual([]);
    });
  });
});

describe('config examples in the docs are accepted by the loader', () => {
  const base = {
    issuers: [
      {
        name: 'cluster',
        type: 'kubernetes',
        issuer: 'https://container.googleapis.com/v1/projects/my-proj/locations/us-central1/clusters/prod',
        audiences: ['kube-vertex-proxy'],
      },
    ],
    vertex: { projects: ['my-proj'], locations: ['us-central1', 'europe-west4', 'global'] },
  };
  const examples = BLOCKS.filter((b) => b.info === 'yaml').flatMap((b) => {
    let doc: unknown;
    try {
      doc = parse(b.body);
    } catch {
      return [];
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return [];
    const keys = Object.keys(doc);
    // Configs (they name their issuers) and policy examples.
    if (keys.includes('issuers') || (keys.length === 1 && keys[0] === 'policy'))
      return [{ name: `${b.page}:${b.line}`, doc: doc as Record<string, unknown> }];
    return [];
  });

  it('there are whole configs and policy recipes among them', () => {
    expect(examples.length).toBeGreaterThanOrEqual(5);
  });

  // Files that exist only inside a pod (the service-account CA, mounted Secrets) are not this machine's to read.
  const onlyInPod = (line: string) => /cannot read \/var\/run\/secrets\/[^:]*: ENOENT$/.test(line.trim());
  it.each(examples)('$name', ({ doc }) => {
    // Fragments get what they leave out (issuers, vertex) from a base config.
    const text = stringify({ ...base, ...doc });
    let problems = '';
    try {
      parseConfig(text, 'example.yaml');
    } catch (error) {
      problems =
        error instanceof ConfigError
          ? error
              .format()
              .split('\n')
              .filter((line) => line !== '' && !onlyInPod(line))
              .join('\n')
          : String(error);
    }
    expect(problems).toBe('');
  });
});

describe('the benchmark page', () => {
  it('shows the tables of the committed result file it names, as `npm run bench:docs` renders them', () => {
    const file = newestResultFile(REPO_ROOT);
    const relativeFile = file.slice(REPO_ROOT.length + 1);
    const report = JSON.parse(readFileSync(file, 'utf8')) as ResultFile;
    expect(report.mode).toBe('full');
    expect(report.machine.cpuModel).not.toBe('');
    const page = read('docs/benchmark.md');
    const generated = page.slice(page.indexOf(BEGIN), page.indexOf(END) + END.length);
    expect(generated).toBe(renderBenchmarkBlock(report, relativeFile));
  });

  it("and the README's targets table is the same run's, as `npm run bench:docs` renders it", () => {
    const readme = read('README.md');
    const generated = readme.slice(readme.indexOf(README_BEGIN), readme.indexOf(README_END) + README_END.length);
    expect(generated).toBe(readmeBlockFor(REPO_ROOT));
    expect(generated).toContain(`(${newestResultFile(REPO_ROOT).slice(REPO_ROOT.length + 1)})`);
  });

  it('and no other page repeats benchmark numbers by hand (README links to it)', () => {
    for (const { path, text } of PAGES.filter((p) => p.path !== 'docs/benchmark.md'))
      expect(text, path).not.toMatch(/^\| (full-warm|passthrough-tuned|nginx) \|/m);
  });
});

it('every page is linked from the README, and every relative link points at a file', () => {
  const readme = read('README.md');
  for (const path of DOCS.filter((p) => p !== 'README.md')) expect(readme, `README links ${path}`).toContain(`](${path})`);
  const broken: string[] = [];
  for (const { path, text } of PAGES) {
    const base = path.includes('/') ? path.slice(0, path.lastIndexOf('/') + 1) : '';
    for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      const resolved = join(REPO_ROOT, base, target);
      if (!existsSync(resolved)) broken.push(`${path}: ${target}`);
    }
  }
  expect(broken).toEqual([]);
});
