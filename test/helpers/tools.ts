/**
 * External tools the chart and deploy tests need: helm (installed by `.ci/run`
 * with `go install`), shellcheck (a Debian package) and a Python venv with the
 * official Vertex AI client (created by `.ci/run`). Missing tools FAIL the
 * tests with the command that installs them; they never skip.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

function onPath(name: string): string | undefined {
  const result = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = result.stdout.trim();
  return result.status === 0 && path !== '' ? path : undefined;
}

export function findHelm(): string {
  const found = onPath('helm');
  if (found) return found;
  let gopath = '';
  try {
    gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim();
  } catch {
    // no Go either: reported below
  }
  const candidate = gopath === '' ? '' : join(gopath, 'bin', 'helm');
  if (candidate !== '' && existsSync(candidate)) return candidate;
  throw new Error(
    'helm not found on PATH or in $(go env GOPATH)/bin: install it with `go install helm.sh/helm/v3/cmd/helm@v3.22.0` (.ci/run does)',
  );
}

export function findShellcheck(): string {
  const found = onPath('shellcheck');
  if (found) return found;
  throw new Error('shellcheck not found: install it with `apt-get install -y shellcheck` (.ci/run does)');
}

export function findKubectl(): string {
  const found = onPath('kubectl');
  if (found) return found;
  throw new Error("kubectl not found: install it with `apt-get install -y kubernetes-client` (npm test's pretest does)");
}

export interface ToolResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runTool(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): ToolResult {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { ...process.env, ...options.env },
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Like {@link runTool}, without blocking the event loop: needed whenever the command talks to
 * a server that runs in the test's own process (the stand-ins), which spawnSync would freeze.
 */
export function runToolAsync(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The venv with google-cloud-aiplatform and google-genai that `.ci/run` prepares for the Python examples. */
export function findPythonExamplesInterpreter(): string {
  const venv = process.env.KVP_PYTHON_VENV ?? join(homedir(), '.cache', 'kube-vertex-proxy', 'python-examples');
  const python = join(venv, 'bin', 'python');
  const probe = existsSync(python)
    ? spawnSync(python, ['-c', 'import google.cloud.aiplatform_v1, google.genai'], { encoding: 'utf8' })
    : undefined;
  if (probe?.status === 0) return python;
  throw new Error(
    `no Python with google-cloud-aiplatform and google-genai at ${venv}: create it with \`python3 -m venv ${venv} && ` +
      `${venv}/bin/pip install google-cloud-aiplatform==2.7.0 google-genai==2.34.0\` (.ci/run does)`,
  );
}
