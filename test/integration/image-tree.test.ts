/**
 * The image holds no stand-in. `scripts/image-tree.sh --keep` assembles the
 * tree the Dockerfile's runtime stage copies (package.json, production
 * dependencies, dist/ built from src/ by tsconfig.build.json); this test walks
 * that tree: no file from dev/ (the stand-ins, among them an issuer that mints
 * tokens, and the `npm start` demonstration), no module that imports one or
 * reaches outside dist/, and a CLI that does not offer `dev`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/proxy-process.js';

let tree: string | undefined;
/** The kept tree (set once the script has run). */
let root = '';
let dist = '';
let output = '';

/** Every file under root, as paths relative to it. */
function files(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

/** The stand-ins' own entry points (dev/standins/*.ts exports named start…): none may appear in the built proxy. */
function standInExports(): string[] {
  const dir = join(REPO_ROOT, 'dev', 'standins');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .flatMap((f) => [...readFileSync(join(dir, f), 'utf8').matchAll(/^export (?:async )?function (start\w+)/gm)].map((m) => m[1] ?? ''));
}

beforeAll(() => {
  // The outer `npm test`'s npm_* variables must not steer the script's `npm ci` (cache and registry may).
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_') || keep.has(k.toLowerCase())),
  );
  const run = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'image-tree.sh'), '--keep'], { env, encoding: 'utf8', timeout: 170_000 });
  output = run.stdout;
  tree = /^Tree kept at (\S+)$/m.exec(run.stdout)?.[1];
  expect(run.status, `scripts/image-tree.sh failed:\n${run.stderr}`).toBe(0);
  expect(tree, output).toBeDefined();
  root = tree ?? '';
  dist = join(root, 'dist');
}, 180_000);

afterAll(async () => {
  if (tree !== undefined && tree.includes('kvp-image-tree.')) await rm(tree, { recursive: true, force: true });
}, 120_000);

describe('the image tree (scripts/image-tree.sh)', () => {
  it('holds the built proxy and nothing from dev/', () => {
    expect(output).toMatch(/^Image proxy layer .*: [\d.]+ MB$/m);
    expect(existsSync(join(dist, 'cli.js'))).toBe(true);
    const all = files(root).filter((f) => !f.startsWith('node_modules/'));
    expect(all.length).toBeGreaterThan(50);
    expect(all.filter((f) => /(^|\/)(dev|standins?|dist-dev)(\/|\.)/i.test(f))).toEqual([]);
    // A stand-in compiled under another name would still carry its exports.
    const names = standInExports();
    expect(names).toEqual(expect.arrayContaining(['startIssuer', 'startMetadataServer', 'startVertexStandIn', 'startKubeApiStandIn']));
    const carrying = files(dist)
      .filter((f) => f.endsWith('.js'))
      .flatMap((f) => {
        const text = readFileSync(join(dist, f), 'utf8');
        return names.filter((n) => new RegExp(`\\b${n}\\b`).test(text)).map((n) => `${f}: ${n}`);
      });
    expect(carrying).toEqual([]);
  });

  it('has no module that imports anything outside dist/ by a relative path, or a file that is missing', () => {
    const pattern =
      /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|(?:^|[\s;])import\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
    const bad: string[] = [];
    let checked = 0;
    for (const file of files(dist).filter((f) => f.endsWith('.js'))) {
      for (const m of readFileSync(join(dist, file), 'utf8').matchAll(pattern)) {
        const target = resolve(dirname(join(dist, file)), m[1] ?? m[2] ?? m[3] ?? '');
        checked += 1;
        if (relative(dist, target).startsWith('..') || !existsSync(target)) bad.push(`${file} imports ${relative(dist, target)}`);
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(bad).toEqual([]);
  });

  it('has a CLI that does not offer `dev`, and says where the embedded default is', () => {
    const help = spawnSync(process.execPath, [join(dist, 'cli.js'), '--help'], { cwd: root, encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('kube-vertex-proxy serve --config FILE');
    expect(help.stdout).not.toMatch(/^\s*kube-vertex-proxy dev\b/m);
    expect(help.stdout).toContain('npm start');
    const dev = spawnSync(process.execPath, [join(dist, 'cli.js'), 'dev'], { cwd: root, encoding: 'utf8' });
    expect(dev.status).toBe(2);
    expect(dev.stderr).toContain('not part of the installed proxy');
    expect(dev.stderr).toContain('npm start');
  });
});
