/**
 * Starts the real proxy the way users start it — `kube-vertex-proxy serve
 * --config FILE` as its own process, from the built `dist/` — and reads its
 * stdout: operational logs and audit lines (Cloud Logging entries).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { auditRecordOfEntry } from '../../src/audit/cloud-logging.js';
import type { AuditRecord } from '../../src/audit/record.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(REPO_ROOT, 'dist', 'cli.js');

export interface AuditEntry extends Record<string, unknown> {
  kubeVertexProxy: AuditRecord;
}

export interface ProxyProcess {
  readonly dataUrl: string;
  readonly adminUrl: string;
  readonly dataPort: number;
  readonly child: ChildProcess;
  /** Every stdout line, parsed (non-JSON lines are kept as `{ raw }`). */
  readonly lines: Array<Record<string, unknown>>;
  readonly stdoutText: () => string;
  readonly stderrText: () => string;
  /** Audit entries so far. */
  audit(): AuditEntry[];
  /** Waits for the audit entry of a request id (or any matching predicate). */
  waitForAudit(predicate: (entry: AuditEntry) => boolean, timeoutMs?: number): Promise<AuditEntry>;
  waitReady(timeoutMs?: number): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartProxyOptions {
  readonly config: Record<string, unknown> | string;
  readonly env?: Record<string, string>;
  /** Wait for /readyz before returning (default true). */
  readonly ready?: boolean;
  /** Start from this existing file (e.g. a ConfigMap-style symlink) instead of writing `config` to a temp file. */
  readonly configPath?: string;
  /** The CLI to start (default: this checkout's dist/cli.js) and its working directory (default: inherited). */
  readonly cli?: string;
  readonly cwd?: string;
}

const running = new Set<ProxyProcess>();

/** Stops every proxy a test file started (call from afterAll). */
export async function stopAllProxies(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

export function writeConfig(config: Record<string, unknown> | string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvp-test-'));
  const path = join(dir, 'config.yaml');
  writeFileSync(path, typeof config === 'string' ? config : stringify(config));
  return path;
}

export async function startProxyProcess(options: StartProxyOptions): Promise<ProxyProcess> {
  const configPath = options.configPath ?? writeConfig(options.config);
  const home = mkdtempSync(join(tmpdir(), 'kvp-home-'));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    NODE_ENV: 'production',
    ...options.env,
  };
  const child = spawn(process.execPath, [options.cli ?? CLI, 'serve', '--config', configPath], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  const lines: Array<Record<string, unknown>> = [];
  // Either shape of the stdout line (audit.stdout.format): `kubeVertexProxy` is the record here, the compact line's
  // lifted fields put back (not COMPACT_OMITS: use format full or the store for those). Built once per line, so
  // entries keep their identity across audit() calls.
  const auditEntries: AuditEntry[] = [];
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdout += `${line}\n`;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      lines.push(parsed);
      const record = auditRecordOfEntry(parsed);
      if (record !== undefined) auditEntries.push({ ...parsed, kubeVertexProxy: record });
    } catch {
      lines.push({ raw: line });
    }
    for (const w of waiters) w();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolveExit) => {
    child.once('exit', (code) => {
      exitCode = code;
      for (const w of waiters) w();
      resolveExit(code);
    });
  });

  const waitFor = <T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise((resolveFind, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) {
          cleanup();
          resolveFind(found);
        } else if (exitCode !== undefined) {
          cleanup();
          reject(new Error(`proxy exited (${exitCode}) while waiting for ${what}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}\nstdout:\n${stdout.slice(-4000)}\nstderr:\n${stderr}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const listening = await waitFor(
    () => lines.find((l) => l.message === 'kube-vertex-proxy listening') as { dataPort: number; adminPort: number } | undefined,
    20_000,
    'the "listening" log line',
  );
  const dataUrl = `http://127.0.0.1:${listening.dataPort}`;
  const adminUrl = `http://127.0.0.1:${listening.adminPort}`;
  const audit = () => [...auditEntries];

  const proc: ProxyProcess = {
    dataUrl,
    adminUrl,
    dataPort: listening.dataPort,
    child,
    lines,
    stdoutText: () => stdout,
    stderrText: () => stderr,
    audit,
    waitForAudit: (predicate, timeoutMs = 10_000) => waitFor(() => audit().find(predicate), timeoutMs, 'an audit entry'),
    async waitReady(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      while (Date.now() < deadline) {
        const response = await fetch(`${adminUrl}/readyz`).catch(() => undefined);
        if (response?.status === 200) return;
        last = (await response?.text()) ?? 'no answer';
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`proxy not ready after ${timeoutMs} ms: ${last}`);
    },
    async stop(signal = 'SIGTERM') {
      running.delete(proc);
      if (exitCode !== undefined) return exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  running.add(proc);
  if (options.ready !== false) await proc.waitReady();
  return proc;
}

/** Runs the CLI to completion (check, can-i) and returns its exit code and output. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolveRun({ code, stdout, stderr }));
  });
}
