/**
 * What the container image would contain, checked without a Docker engine:
 * the Dockerfile's promises are read from the file itself, and its build is
 * re-enacted outside Docker — production dependencies only, from the same
 * lockfile, into an empty folder, plus the built `dist/` — then the proxy is
 * started from THERE (with Node 24, the image's major) against the stand-ins,
 * answers one allowed and one denied call, drains on SIGTERM, and has written
 * nothing into its own folder or HOME (only its audit file, to the data volume
 * the chart mounts).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { builtinModules } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type IssuerStandIn } from '../../dev/standins/issuer.js';
import { metadataEnv, startMetadataServer, type MetadataStandIn } from '../../dev/standins/metadata.js';
import { startVertexStandIn, type VertexStandIn } from '../../dev/standins/vertex.js';
import { REPO_ROOT, startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import { AUDIENCE, DEFAULT_RULES, LOCATION, PREDICT_PATH, PROJECT } from '../helpers/world.js';

interface PackageJson {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}
interface Lockfile {
  packages: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean }>;
}

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as PackageJson;
const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');

/** Dockerfile instructions (continuation lines joined, comments dropped), grouped by stage. */
function dockerStages(text: string): Array<{ from: string; name: string | undefined; instructions: string[] }> {
  const joined = text.replace(/\\\n/g, ' ');
  const stages: Array<{ from: string; name: string | undefined; instructions: string[] }> = [];
  for (const line of joined.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ from: from[1] as string, name: from[2], instructions: [] });
    else stages.at(-1)?.instructions.push(line);
  }
  return stages;
}

describe('Dockerfile', () => {
  const stages = dockerStages(dockerfile);
  const runtime = stages.at(-1)!;
  const nodeImage = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1] ?? '';

  it('builds on Node.js 24, the major pinned as the devDependency `node`', () => {
    const pinnedMajor = /(\d+)/.exec(pkg.devDependencies.node ?? '')?.[1];
    expect(pinnedMajor).toBe('24');
    expect(nodeImage).toMatch(new RegExp(`^node:${pinnedMajor}-`));
    // Pinned by digest: the same base at every build.
    expect(nodeImage).toMatch(/@sha256:[0-9a-f]{64}$/);
    for (const stage of stages) expect(['${NODE_IMAGE}', 'deps']).toContain(stage.from);
  });

  it('is multi-stage, and its final stage holds production dependencies only and no package manager', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    const copies = runtime.instructions.filter((i) => i.startsWith('COPY'));
    const nodeModules = copies.find((c) => c.includes('node_modules'));
    const fromStage = /--from=(\S+)/.exec(nodeModules ?? '')?.[1];
    const source = stages.find((s) => s.name === fromStage);
    expect(source?.instructions.some((i) => /npm ci\b.*--omit=dev/.test(i))).toBe(true);
    expect(runtime.instructions.some((i) => /npm (ci|install)/.test(i))).toBe(false);
    expect(runtime.instructions.some((i) => i.startsWith('RUN rm -rf') && i.includes('/usr/local/bin/npm'))).toBe(true);
    // Exactly what the artifact test below reproduces: package.json, production node_modules, dist.
    expect(copies.map((c) => c.split(/\s+/).at(-1))).toEqual(['./package.json', './node_modules', './dist']);
  });

  it('runs as a numeric non-root user, starts node directly (SIGTERM reaches it), and has no HEALTHCHECK', () => {
    const user = runtime.instructions.find((i) => i.startsWith('USER '));
    expect(user).toMatch(/^USER [1-9][0-9]*:[1-9][0-9]*$/);
    // The chart's initialHeapMiB default on node's command line (NODE_OPTIONS refuses the flag).
    expect(runtime.instructions).toContain('ENTRYPOINT ["node", "--initial-old-space-size=64", "dist/cli.js"]');
    expect(runtime.instructions.some((i) => /^HEALTHCHECK/i.test(i))).toBe(false);
    expect(dockerfile).not.toMatch(/^ARG\s+\S*(SECRET|TOKEN|PASSWORD|KEY)/im);
  });

  it('sends only the build inputs to the build context (.dockerignore)', () => {
    const ignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    expect(ignore.filter((l) => l.startsWith('!')).sort()).toEqual([
      '!package-lock.json',
      '!package.json',
      '!src/',
      '!tsconfig.build.json',
      '!tsconfig.json',
    ]);
  });
});

describe('the production artifact, installed into an empty folder and started from there', () => {
  let app: string;
  let home: string;
  let data: string;
  let issuer: IssuerStandIn;
  let metadata: MetadataStandIn;
  let vertex: VertexStandIn;
  let proxy: ProxyProcess | undefined;
  let before: Map<string, string>;

  beforeAll(async () => {
    expect(existsSync(join(REPO_ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run `npm run build` first').toBe(true);
    app = mkdtempSync(join(tmpdir(), 'kvp-artifact-'));
    home = mkdtempSync(join(tmpdir(), 'kvp-artifact-home-'));
    data = mkdtempSync(join(tmpdir(), 'kvp-artifact-data-'));
    // The prod-deps stage: the same lockfile, production dependencies only, no install scripts.
    cpSync(join(REPO_ROOT, 'package.json'), join(app, 'package.json'));
    cpSync(join(REPO_ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
    // The outer `npm test`'s npm_* variables (lifecycle, package, command) must not steer this install;
    // the cache and registry settings may (the cache is warm from `npm ci`, hence --prefer-offline).
    const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_') || keep.has(k.toLowerCase())),
    ) as Record<string, string>;
    const install = spawnSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: app,
      env,
      encoding: 'utf8',
      timeout: 170_000,
    });
    expect(install.status, `npm ci --omit=dev failed:\n${install.stderr}`).toBe(0);
    // The runtime stage: package.json, node_modules, dist (the lockfile stays in the prod-deps stage).
    rmSync(join(app, 'package-lock.json'));
    cpSync(join(REPO_ROOT, 'dist'), join(app, 'dist'), { recursive: true });
    before = snapshot(app);
    for (const [path, stamp] of snapshot(home)) before.set(`HOME/${path}`, stamp);
  }, 180_000);

  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([issuer?.close(), metadata?.close(), vertex?.close()]);
    if (app) rmSync(app, { recursive: true, force: true });
    if (home) rmSync(home, { recursive: true, force: true });
    if (data) rmSync(data, { recursive: true, force: true });
  });

  it('contains every production dependency and no devDependency (checked against the lockfile)', () => {
    for (const name of Object.keys(pkg.dependencies)) expect(existsSync(join(app, 'node_modules', name)), name).toBe(true);
    // A devDependency may also be a production dependency's dependency (@types/node is one of
    // google-gax's via protobufjs), so "dev-only" is the lockfile's word, not package.json's.
    for (const name of ['node', 'typescript', 'vitest', 'fast-check'])
      expect(existsSync(join(app, 'node_modules', name)), name).toBe(false);
    const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as Lockfile;
    const devOnly = Object.entries(lock.packages).filter(
      ([path, p]) => path.startsWith('node_modules/') && (p.dev === true || p.devOptional === true),
    );
    expect(devOnly.length).toBeGreaterThan(0);
    const present = devOnly.filter(([path]) => existsSync(join(app, path))).map(([path]) => path);
    expect(present).toEqual([]);
    expect(existsSync(join(app, 'node_modules', '.bin', 'node'))).toBe(false);
  });

  it('imports only production dependencies and Node built-ins from everything the CLI can load', () => {
    const allowed = new Set(Object.keys(pkg.dependencies));
    const builtins = new Set(builtinModules);
    const bad: string[] = [];
    for (const [file, specifier] of reachableImports(join(app, 'dist', 'cli.js'))) {
      if (specifier.startsWith('node:') || builtins.has(specifier)) continue;
      const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] as string);
      if (!allowed.has(name)) bad.push(`${relative(app, file)} imports ${specifier}`);
    }
    expect(bad).toEqual([]);
  });

  it(
    'serves an allowed and a denied call with Node 24 from the installed folder, drains on SIGTERM, and writes only to its ' +
      'data volume',
    async () => {
      expect(process.versions.node.split('.')[0]).toBe('24');
      issuer = await startIssuer({ kind: 'kubernetes' });
      metadata = await startMetadataServer({ projectId: PROJECT });
      vertex = await startVertexStandIn();
      proxy = await startProxyProcess({
        cli: join(app, 'dist', 'cli.js'),
        cwd: app,
        env: { ...metadataEnv(metadata), HOME: home },
        config: {
          server: { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0, shutdownGrace: '2s' },
          issuers: [{ name: 'cluster', type: 'kubernetes', issuer: issuer.issuer, audiences: [AUDIENCE] }],
          vertex: { projects: [PROJECT], locations: [LOCATION], upstream: vertex.url },
          kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' } } },
          policy: { rules: DEFAULT_RULES },
          // As the chart configures it: the audit store on the data volume, the only writable place besides /tmp.
          audit: { durability: 'strict', sinks: [{ type: 'stdout' }, { type: 'sqlite', path: join(data, 'audit.db') }] },
        },
      });
      const tokenFor = (serviceAccount: string) =>
        issuer.mintKubernetesToken({ namespace: 'ml', serviceAccount, audience: AUDIENCE, podName: `${serviceAccount}-0` });
      const call = (serviceAccount: string) =>
        fetch(`${proxy!.dataUrl}${PREDICT_PATH}`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${tokenFor(serviceAccount)}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ instances: [{ x: 1 }] }),
        });

      const allowed = await call('trainer');
      expect(allowed.status).toBe(200);
      expect(await allowed.json()).toHaveProperty('predictions');
      const denied = await call('intern');
      expect(denied.status).toBe(403);
      expect(((await denied.json()) as { error: { status: string } }).error.status).toBe('PERMISSION_DENIED');
      expect(vertex.requests).toHaveLength(1);
      const deniedRecord = await proxy.waitForAudit((e) => e.kubeVertexProxy.serviceAccount === 'intern');
      expect(deniedRecord.kubeVertexProxy).toMatchObject({ decision: 'deny', ruleId: 'no-intern', status: 403 });

      expect(await proxy.stop('SIGTERM')).toBe(0);
      proxy = undefined;
      const after = snapshot(app);
      for (const [path, stamp] of snapshot(home)) after.set(`HOME/${path}`, stamp);
      expect(after).toEqual(before);
      // What it did write went to the mounted data volume.
      expect(existsSync(join(data, 'audit.db'))).toBe(true);
    },
  );
});

/** path → size:mtime of every file and folder under root. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const st = statSync(path);
      out.set(relative(root, path), `${st.size}:${st.mtimeMs}`);
      if (entry.isDirectory()) walk(path);
    }
  };
  walk(root);
  return out;
}

/** Every bare import specifier (static and literal dynamic) in the module graph reachable from entry. */
function reachableImports(entry: string): Array<[string, string]> {
  const seen = new Set<string>();
  const found: Array<[string, string]> = [];
  const pattern =
    /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(pattern)) {
      const specifier = (match[1] ?? match[2] ?? match[3]) as string;
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
      else found.push([file, specifier]);
    }
  };
  visit(entry);
  expect(seen.size).toBeGreaterThan(20);
  return found;
}
