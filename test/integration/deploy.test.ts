/**
 * deploy/: the Google Cloud setup script and the example callers, checked —
 * shellcheck on every script; the gcloud script run against a recording fake
 * `gcloud` (which grants exactly what the docs say, and nothing for callers);
 * the example manifests validated against the Kubernetes API schemas; and the
 * Node SDK, Python SDK and curl snippets run, as they are, through the real
 * proxy against the stand-ins (one allowed and one denied call each).
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKubeYaml, validateKubeObjects, type KubeObject } from '../helpers/kube-validate.js';
import { REPO_ROOT } from '../helpers/proxy-process.js';
import { findPythonExamplesInterpreter, findShellcheck, runTool, runToolAsync } from '../helpers/tools.js';
import { AUDIENCE, LOCATION, PROJECT, startWorld, type World } from '../helpers/world.js';

const DEPLOY = join(REPO_ROOT, 'deploy');
const SETUP = join(DEPLOY, 'gcloud', 'setup.sh');

function filesUnder(dir: string, suffix: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => f.endsWith(suffix) && statSync(f).isFile())
    .sort();
}

describe('shell scripts', () => {
  const scripts = [...filesUnder(DEPLOY, '.sh'), ...filesUnder(join(REPO_ROOT, 'scripts'), '.sh'), join(REPO_ROOT, '.ci', 'run')];

  it('include the gcloud setup and the curl example', () => {
    expect(scripts.map((s) => relative(REPO_ROOT, s))).toEqual(
      expect.arrayContaining(['deploy/gcloud/setup.sh', 'deploy/examples/curl/predict.sh', 'scripts/test-prerequisites.sh', '.ci/run']),
    );
  });

  it.each(scripts.map((s) => relative(REPO_ROOT, s)))('%s passes shellcheck', (script) => {
    const result = runTool(findShellcheck(), ['--severity=style', join(REPO_ROOT, script)]);
    expect(result.status, result.stdout).toBe(0);
  });
});

describe('deploy/gcloud/setup.sh', () => {
  /** Runs the script with a fake gcloud first on PATH; returns the gcloud calls it made. */
  function runSetup(
    args: string[],
    existing: { gsa?: boolean } = {},
  ): { status: number | null; calls: string[][]; stdout: string; stderr: string } {
    const dir = mkdtempSync(join(tmpdir(), 'kvp-gcloud-'));
    const log = join(dir, 'calls.jsonl');
    const fake = join(dir, 'gcloud');
    writeFileSync(
      fake,
      `#!/usr/bin/env bash
set -euo pipefail
printf '%s\\0' "$@" >> ${JSON.stringify(log)}
printf '\\n' >> ${JSON.stringify(log)}
case "$1 $2 \${3:-}" in
  "projects describe "*) echo 987654321098 ;;
  "iam service-accounts describe") ${existing.gsa ? 'echo "email: exists"' : 'exit 1'} ;;
esac
`,
    );
    chmodSync(fake, 0o755);
    const result = runTool('bash', [SETUP, ...args], { env: { PATH: `${dir}:${process.env.PATH ?? ''}` } });
    let text = '';
    try {
      text = readFileSync(log, 'utf8');
    } catch {
      // no call at all
    }
    const calls = text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('\0').filter((a) => a !== ''));
    return { ...result, calls };
  }

  const mutating = (calls: string[][]) => calls.filter((c) => !c.includes('describe'));
  const granted = (calls: string[][]) =>
    calls
      .filter((c) => c.includes('add-iam-policy-binding'))
      .map((c) => ({
        on: c[c.indexOf('add-iam-policy-binding') + 1],
        role: c[c.indexOf('--role') + 1],
        member: c[c.indexOf('--member') + 1],
      }));

  it('with a Google service account: enables the API, grants it roles/aiplatform.user, lets only the proxy KSA act as it', () => {
    const { status, calls, stdout } = runSetup(['--project', 'acme-ml', '--namespace', 'vertex-system', '--ksa', 'kube-vertex-proxy']);
    expect(status).toBe(0);
    expect(mutating(calls)[0]).toEqual(['services', 'enable', 'aiplatform.googleapis.com', '--project', 'acme-ml']);
    expect(mutating(calls).some((c) => c.slice(0, 4).join(' ') === 'iam service-accounts create vertex-proxy')).toBe(true);
    expect(granted(calls)).toEqual([
      { on: 'acme-ml', role: 'roles/aiplatform.user', member: 'serviceAccount:vertex-proxy@acme-ml.iam.gserviceaccount.com' },
      {
        on: 'vertex-proxy@acme-ml.iam.gserviceaccount.com',
        role: 'roles/iam.workloadIdentityUser',
        member: 'serviceAccount:acme-ml.svc.id.goog[vertex-system/kube-vertex-proxy]',
      },
    ]);
    expect(stdout).toContain('--set serviceAccount.gcpServiceAccount=vertex-proxy@acme-ml.iam.gserviceaccount.com');
  });

  it('keeps an existing Google service account (re-running is safe)', () => {
    const { status, calls } = runSetup(['--project', 'acme-ml'], { gsa: true });
    expect(status).toBe(0);
    expect(calls.some((c) => c.includes('create'))).toBe(false);
    expect(granted(calls)).toHaveLength(2);
  });

  it('with --principal: grants the role to the KSA as a Workload Identity Federation principal, and creates no service account', () => {
    const { status, calls, stdout } = runSetup(['--project', 'acme-ml', '--principal', '--namespace', 'ai-gw', '--ksa', 'kvp']);
    expect(status).toBe(0);
    expect(calls.some((c) => c.includes('service-accounts'))).toBe(false);
    expect(granted(calls)).toEqual([
      {
        on: 'acme-ml',
        role: 'roles/aiplatform.user',
        member:
          'principal://iam.googleapis.com/projects/987654321098/locations/global/workloadIdentityPools/acme-ml.svc.id.goog/subject/ns/ai-gw/sa/kvp',
      },
    ]);
    expect(stdout).toContain('--set serviceAccount.name=kvp');
  });

  it('grants serviceAccountUser on one job service account only when asked, never on the project', () => {
    const { calls } = runSetup(['--project', 'acme-ml', '--job-service-account', 'trainer-jobs@acme-ml.iam.gserviceaccount.com']);
    const user = granted(calls).filter((g) => g.role === 'roles/iam.serviceAccountUser');
    expect(user).toEqual([
      {
        on: 'trainer-jobs@acme-ml.iam.gserviceaccount.com',
        role: 'roles/iam.serviceAccountUser',
        member: 'serviceAccount:vertex-proxy@acme-ml.iam.gserviceaccount.com',
      },
    ]);
  });

  it('never grants a basic role, and nothing to anyone but the proxy', () => {
    for (const args of [
      ['--project', 'p1-x'],
      ['--project', 'p1-x', '--principal'],
    ]) {
      for (const g of granted(runSetup(args).calls)) {
        expect(g.role).not.toMatch(/^roles\/(owner|editor|viewer)$/);
        expect(g.member).toMatch(/vertex-proxy@p1-x|kube-vertex-proxy/);
      }
    }
  });

  it('--dry-run prints the commands and changes nothing', () => {
    const { status, calls, stdout } = runSetup(['--project', 'acme-ml', '--dry-run']);
    expect(status).toBe(0);
    expect(mutating(calls)).toEqual([]);
    expect(stdout).toContain('gcloud services enable aiplatform.googleapis.com');
  });

  it('refuses to run without --project', () => {
    expect(runSetup([]).status).toBe(2);
  });

  it(
    '--team-identity NAMESPACE=GSA: the team account gets the role, the proxy Token Creator on that account only, the chart ' +
      'the mapping',
    () => {
      const { status, calls, stdout } = runSetup([
        '--project',
        'acme-ml',
        '--team-identity',
        'ml=team-ml',
        '--team-identity',
        'web=web-calls@acme-ml.iam.gserviceaccount.com',
      ]);
      expect(status).toBe(0);
      expect(
        mutating(calls)
          .filter((c) => c.slice(0, 3).join(' ') === 'iam service-accounts create')
          .map((c) => c[3]),
      ).toEqual(['vertex-proxy', 'team-ml', 'web-calls']);
      const proxy = 'serviceAccount:vertex-proxy@acme-ml.iam.gserviceaccount.com';
      expect(granted(calls).slice(2)).toEqual([
        { on: 'acme-ml', role: 'roles/aiplatform.user', member: 'serviceAccount:team-ml@acme-ml.iam.gserviceaccount.com' },
        { on: 'team-ml@acme-ml.iam.gserviceaccount.com', role: 'roles/iam.serviceAccountTokenCreator', member: proxy },
        { on: 'acme-ml', role: 'roles/aiplatform.user', member: 'serviceAccount:web-calls@acme-ml.iam.gserviceaccount.com' },
        { on: 'web-calls@acme-ml.iam.gserviceaccount.com', role: 'roles/iam.serviceAccountTokenCreator', member: proxy },
      ]);
      expect(stdout).toContain(
        '--set teamIdentities.ml=team-ml@acme-ml.iam.gserviceaccount.com ' +
          '--set teamIdentities.web=web-calls@acme-ml.iam.gserviceaccount.com',
      );
      expect(runSetup(['--project', 'acme-ml', '--team-identity', 'no-equals-sign']).status).toBe(2);
    },
  );
});

describe('example caller manifests', () => {
  const manifests = filesUnder(DEPLOY, '.yaml');
  const objects = manifests.flatMap((f) => parseKubeYaml(readFileSync(f, 'utf8')));

  it('are valid against the Kubernetes API schemas', async () => {
    expect(manifests.map((f) => relative(REPO_ROOT, f))).toContain('deploy/examples/caller-deployment.yaml');
    await validateKubeObjects(objects);
  });

  it("mount a short-lived projected token for the proxy's audience, and no Google credential", () => {
    const caller = parseKubeYaml(readFileSync(join(DEPLOY, 'examples', 'caller-deployment.yaml'), 'utf8'));
    const deployment = caller.find((o) => o.kind === 'Deployment') as KubeObject & { spec: { template: { spec: Record<string, any> } } };
    const pod = deployment.spec.template.spec;
    const sources = pod.volumes.flatMap((v: { projected?: { sources: unknown[] } }) => v.projected?.sources ?? []) as Array<{
      serviceAccountToken?: { audience: string; expirationSeconds: number; path: string };
    }>;
    const token = sources.find((s) => s.serviceAccountToken)?.serviceAccountToken;
    const chartValues = parse(readFileSync(join(REPO_ROOT, 'helm', 'kube-vertex-proxy', 'values.yaml'), 'utf8')) as {
      config: { issuers: Array<{ audiences: string[] }> };
      networkPolicy: { callerNamespaceSelector: { matchLabels: Record<string, string> } };
    };
    expect(token?.audience).toBe(AUDIENCE);
    expect(chartValues.config.issuers[0]!.audiences).toContain(token?.audience);
    expect(token!.expirationSeconds).toBeGreaterThanOrEqual(600);
    expect(token!.expirationSeconds).toBeLessThanOrEqual(3600);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(JSON.stringify(caller)).not.toMatch(/GOOGLE_APPLICATION_CREDENTIALS|iam\.gke\.io\/gcp-service-account/);
    // The caller's namespace carries the label the chart's NetworkPolicy admits.
    const namespace = caller.find((o) => o.kind === 'Namespace')!;
    expect(namespace.metadata.labels).toMatchObject(chartValues.networkPolicy.callerNamespaceSelector.matchLabels);
  });
});

/** The caller manifest's pieces the Python run below depends on. */
function callerProgram(): { script: string; sdkPin: string; pod: Record<string, any> } {
  const caller = parseKubeYaml(readFileSync(join(DEPLOY, 'examples', 'caller-deployment.yaml'), 'utf8'));
  const configMap = caller.find((o) => o.kind === 'ConfigMap') as KubeObject & { data: Record<string, string> };
  const pod = (caller.find((o) => o.kind === 'Deployment') as KubeObject & { spec: { template: { spec: Record<string, any> } } }).spec
    .template.spec;
  const install = (pod.initContainers as Array<{ command: string[] }>)[0]!.command;
  return {
    script: configMap.data['predict.py'] as string,
    sdkPin: install.find((a) => a.startsWith('google-cloud-aiplatform==')) ?? '',
    pod,
  };
}

describe('the example caller Deployment runs as shipped', () => {
  it('carries predict.py verbatim in a ConfigMap mounted at /app, and runs it', () => {
    const { script, pod } = callerProgram();
    expect(script).toBe(readFileSync(join(DEPLOY, 'examples', 'python', 'predict.py'), 'utf8'));
    const app = (pod.containers as Array<Record<string, any>>)[0]!;
    expect(app.command.join(' ')).toContain('python /app/predict.py');
    const programVolume = (pod.volumes as Array<{ name: string; configMap?: { name: string } }>).find((v) => v.configMap !== undefined)!;
    expect((app.volumeMounts as Array<{ name: string; mountPath: string }>).find((m) => m.name === programVolume.name)?.mountPath).toBe(
      '/app',
    );
  });

  it('installs the SDK version the tests run predict.py with (scripts/test-prerequisites.sh) where the app imports it from', () => {
    const { sdkPin, pod } = callerProgram();
    const prerequisites = readFileSync(join(REPO_ROOT, 'scripts', 'test-prerequisites.sh'), 'utf8');
    expect(sdkPin).toMatch(/^google-cloud-aiplatform==\d+\.\d+\.\d+$/);
    expect(prerequisites).toContain(`"${sdkPin}"`);
    const init = (pod.initContainers as Array<{ command: string[]; volumeMounts: Array<{ name: string; mountPath: string }> }>)[0]!;
    const target = init.command[init.command.indexOf('--target') + 1];
    const sdkVolume = init.volumeMounts.find((m) => m.mountPath === target)!.name;
    const app = (
      pod.containers as Array<{ env: Array<{ name: string; value: string }>; volumeMounts: Array<{ name: string; mountPath: string }> }>
    )[0]!;
    const mountPath = app.volumeMounts.find((m) => m.name === sdkVolume)?.mountPath;
    expect(app.env.find((e) => e.name === 'PYTHONPATH')?.value).toBe(mountPath);
  });
});

describe('SDK and curl snippets, run through the real proxy', () => {
  let world: World;
  let dir: string;
  const tokenFile = (serviceAccount: string) => {
    const file = join(dir, `${serviceAccount}.token`);
    writeFileSync(file, `${world.token('ml', serviceAccount)}\n`);
    return file;
  };
  const snippetEnv = (serviceAccount: string) => ({
    VERTEX_ENDPOINT: world.proxy.dataUrl,
    VERTEX_TOKEN_FILE: tokenFile(serviceAccount),
    VERTEX_PROJECT: PROJECT,
    VERTEX_LOCATION: LOCATION,
    VERTEX_ENDPOINT_ID: '1234567890',
  });

  beforeAll(async () => {
    world = await startWorld();
    dir = mkdtempSync(join(tmpdir(), 'kvp-snippets-'));
  });
  afterAll(async () => {
    await world?.close();
  });

  it('Node (@google-cloud/aiplatform, REST): predicts as ml/trainer, is denied as ml/intern', async () => {
    const script = join(DEPLOY, 'examples', 'node', 'predict.mjs');
    const allowed = await runToolAsync(process.execPath, [script], { env: snippetEnv('trainer') });
    expect(allowed.status, allowed.stderr).toBe(0);
    expect((JSON.parse(allowed.stdout) as { predictions: unknown[] }).predictions.length).toBeGreaterThan(0);
    const denied = await runToolAsync(process.execPath, [script], { env: snippetEnv('intern') });
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toContain('PERMISSION_DENIED');
  });

  it("curl: predicts as ml/trainer, prints Google's error JSON and fails as ml/intern", async () => {
    const script = join(DEPLOY, 'examples', 'curl', 'predict.sh');
    const allowed = await runToolAsync('bash', [script], { env: snippetEnv('trainer') });
    expect(allowed.status, allowed.stderr).toBe(0);
    expect(JSON.parse(allowed.stdout)).toHaveProperty('predictions');
    const denied = await runToolAsync('bash', [script], { env: snippetEnv('intern') });
    expect(denied.status).not.toBe(0);
    expect((JSON.parse(denied.stdout) as { error: { status: string } }).error.status).toBe('PERMISSION_DENIED');
  });

  it('Python (google-cloud-aiplatform, REST): predicts as ml/trainer, is denied as ml/intern', async () => {
    const python = findPythonExamplesInterpreter();
    // The program as the caller Deployment ships it (its ConfigMap), with the SDK version it installs.
    const { script: shipped, sdkPin } = callerProgram();
    const version = await runToolAsync(python, ['-c', 'import importlib.metadata as m; print(m.version("google-cloud-aiplatform"))'], {});
    expect(`google-cloud-aiplatform==${version.stdout.trim()}`).toBe(sdkPin);
    const script = join(dir, 'predict.py');
    writeFileSync(script, shipped);
    const allowed = await runToolAsync(python, [script], { env: snippetEnv('trainer'), timeoutMs: 60_000 });
    expect(allowed.status, allowed.stderr).toBe(0);
    expect((JSON.parse(allowed.stdout) as { predictions: unknown[] }).predictions.length).toBeGreaterThan(0);
    const denied = await runToolAsync(python, [script], { env: snippetEnv('intern'), timeoutMs: 60_000 });
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toContain('403');
    expect(denied.stderr).toContain('denied by policy rule');
  }, 120_000);
});
