/**
 * A throwaway PostgreSQL server for tests and the benchmark: `initdb` into a
 * temp directory and `postgres` on 127.0.0.1 and a free port, from the
 * installed Debian binaries (`apt-get install postgresql`; `.ci/run` does
 * it). PostgreSQL refuses to run as root, so as root both run as the
 * `postgres` user (via `setpriv`, util-linux) in a directory it owns. The
 * server is our child process (`setpriv` and `taskset` exec in place), so
 * whoever started it can always stop it. `stop()` ends the server and
 * removes the directory (a kept `directory` stays).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freeLoopbackPort } from '../../dev/standins/loopback.js';

export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string;
  readonly port: number;
  /** Stops the server, keeping its data (for "store down" tests); `start()` brings it back. */
  pause(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and deletes its data. */
  stop(): Promise<void>;
}

export interface TestPostgresOptions {
  /** Default true; tests that only need a working store turn it off for speed. */
  readonly fsync?: boolean;
  /** Pin the server to this CPU core (`taskset`): the benchmark runs it beside the proxy. */
  readonly cpuCore?: number;
  /** Told the server process each time it starts (the benchmark stops it when interrupted). */
  readonly onProcess?: (child: ChildProcess) => void;
  /** Told the temp directory once it exists (the benchmark removes it when interrupted). */
  readonly onDirectory?: (dir: string) => void;
  /**
   * A directory to keep instead of a temp one (the benchmark's cached audit store): the cluster is created there when it has
   * none, and `stop()` leaves it. The postgres user must be able to reach it when running as root.
   */
  readonly directory?: string;
  /** More server settings (`-c name=value`). */
  readonly settings?: Readonly<Record<string, string>>;
}

/** @throws Error naming the package to install when the server binaries are missing. */
export function findBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const version = versions[0];
  if (version === undefined) {
    throw new Error(
      'PostgreSQL is not installed: the PostgreSQL audit-store tests need its server binaries ' +
        '(/usr/lib/postgresql/*/bin/initdb). Install them with `apt-get install postgresql` (`.ci/run` does this).',
    );
  }
  return join(root, version, 'bin');
}

const asRoot = process.getuid?.() === 0;
/** setpriv execs in place (no intermediate process), so signals reach postgres itself. */
const asPostgres = (command: string, args: string[]): [string, string[]] =>
  asRoot ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', command, ...args]] : [command, args];

export async function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const bin = findBinDir();
  const keep = options.directory !== undefined;
  const dir = options.directory ?? mkdtempSync(join(tmpdir(), 'kvp-pg-'));
  if (keep) mkdirSync(dir, { recursive: true });
  options.onDirectory?.(dir);
  const data = join(dir, 'data');
  const remove = () => {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  if (asRoot) {
    const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gids = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    chownSync(dir, Number(ids.stdout.trim()), Number(gids.stdout.trim()));
    chmodSync(dir, 0o700);
  }
  const [initCmd, initArgs] = asPostgres(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  // A kept directory that already holds a cluster is used as it is.
  const existing = existsSync(join(data, 'PG_VERSION'));
  const init = existing ? { status: 0, stderr: '', stdout: '' } : spawnSync(initCmd, initArgs, { encoding: 'utf8' });
  if (init.status !== 0) {
    remove();
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`);
  }
  const port = await freeLoopbackPort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  let output = '';

  const start = async () => {
    const [cmd, args] = asPostgres(join(bin, 'postgres'), [
      '-D',
      data,
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      `fsync=${options.fsync === false ? 'off' : 'on'}`,
      '-c',
      'max_connections=200',
      '-c',
      'shared_buffers=64MB',
      ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    ]);
    child =
      options.cpuCore === undefined
        ? spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('taskset', ['-c', String(options.cpuCore), cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    options.onProcess?.(child);
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const client = new pg.Client({ connectionString: url });
      try {
        await client.connect();
        await client.end();
        return;
      } catch {
        await client.end().catch(() => undefined);
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`postgres did not start:\n${output.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const halt = async () => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    // SIGINT: "fast shutdown" (roll back, disconnect clients, stop).
    running.kill('SIGINT');
    const timer = setTimeout(() => running.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await start();
  } catch (error) {
    // A server that never answered may still be running: stop it, and leave nothing behind.
    await halt();
    remove();
    throw error;
  }
  return {
    url,
    port,
    pause: halt,
    start,
    async stop() {
      await halt();
      remove();
    },
  };
}
