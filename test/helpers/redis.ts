/**
 * A throwaway Redis for tests and the benchmark: Debian's `redis-server` on
 * 127.0.0.1 and a free port, no persistence, as our child process. `pause()`
 * stops it (a Redis outage), `start()` brings it back on the same port,
 * `stop()` ends it for good.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { freeLoopbackPort } from '../../dev/standins/loopback.js';

export interface TestRedis {
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  pause(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Runs one command with redis-cli semantics over a raw connection (RESP), returning the raw reply text. */
  command(...args: string[]): Promise<string>;
}

/** @throws Error naming the package when redis-server is missing. */
export function findRedisServer(): string {
  const result = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = result.stdout.trim();
  if (result.status === 0 && path !== '') return path;
  throw new Error(
    'redis-server is not installed: the shared-limit tests need it. Install it with `apt-get install redis-server` ' +
      '(scripts/test-prerequisites.sh does).',
  );
}

export async function startTestRedis(options: { cpuCore?: number; onProcess?: (child: ChildProcess) => void } = {}): Promise<TestRedis> {
  const binary = findRedisServer();
  const port = await freeLoopbackPort();
  let child: ChildProcess | undefined;

  const start = async () => {
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
    ];
    const [command, argv] = options.cpuCore === undefined ? [binary, args] : ['taskset', ['-c', String(options.cpuCore), binary, ...args]];
    const started = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    started.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    started.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    child = started;
    options.onProcess?.(started);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (started.exitCode !== null) throw new Error(`redis-server exited (${started.exitCode}): ${output}`);
      if ((await ping(port).catch(() => '')) === '+PONG') return;
      await new Promise((r) => setTimeout(r, 25));
    }
    started.kill('SIGKILL');
    throw new Error(`redis-server did not answer on port ${port}: ${output}`);
  };

  const pause = async () => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null) return;
    const exited = new Promise((r) => running.once('exit', r));
    running.kill('SIGKILL');
    await exited;
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pause,
    start,
    stop: pause,
    command: (...args) => send(port, args),
  };
}

function ping(port: number): Promise<string> {
  return send(port, ['PING']);
}

/** One RESP command on a fresh connection; resolves with the first reply line (or bulk value). */
function send(port: number, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let data = '';
    socket.setTimeout(2000, () => socket.destroy(new Error('redis command timed out')));
    socket.on('connect', () => socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      const lines = data.split('\r\n');
      if (data.startsWith('$') && lines.length >= 2) {
        const length = Number(lines[0]!.slice(1));
        if (length === -1) {
          done('');
          return;
        }
        if (lines.length >= 3) {
          done(lines[1]!);
          return;
        }
      } else if (data.includes('\r\n')) {
        done(lines[0]!);
      }
    });
    socket.on('error', reject);
    const done = (value: string) => {
      socket.end();
      resolve(value);
    };
  });
}
