/**
 * An interrupted benchmark leaves nothing running: Ctrl-C or `kill` in the
 * middle of a run stops the proxies, the load generator, nginx and the
 * throw-away PostgreSQL server it started, and removes its scratch files.
 * (Before this, killing `npm run bench` left nginx and PostgreSQL running.)
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processTree } from '../../bench/proc.js';

const REPO = resolve(import.meta.dirname, '../..');
const RUN = join(REPO, 'dist-bench', 'bench', 'run.js');

/** Every live process whose command line mentions `text`. */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(text)) found.push(`${name}: ${cmdline.slice(0, 200)}`);
    } catch {
      // gone
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'kvp-bench-abort-'));
// PostgreSQL runs as the `postgres` user when we are root: it must be able to reach its data directory.
chmodSync(scratch, 0o755);
afterAll(() => {
  // Whatever the assertions say, do not leave anything behind ourselves.
  for (const line of processesMentioning(scratch)) spawnSync('kill', ['-9', line.split(':')[0] as string]);
  rmSync(scratch, { recursive: true, force: true });
});

describe('interrupting npm run bench', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s mid-run stops every process it started (proxy, load generator, nginx, PostgreSQL) and removes its scratch files',
    async (signal) => {
      if (!existsSync(RUN)) throw new Error(`${RUN} is missing: run npm run build:bench (npm test does)`);
      const tmp = mkdtempSync(join(scratch, `${signal}-`));
      chmodSync(tmp, 0o755);
      // Every scratch path of the run (proxy configs, nginx.conf, the PostgreSQL data directory) lives under TMPDIR.
      const child = spawn(
        process.execPath,
        [RUN, '--quick', '--only', 'audit-strict-postgres,nginx,full-warm', '--out', join(tmp, 'out')],
        {
          cwd: REPO,
          env: { ...process.env, TMPDIR: tmp },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      const seen = new Set<number>();
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      // Wait until a scenario is being measured: PostgreSQL is up, a target and the load generator run.
      await new Promise<void>((ready, fail) => {
        const timer = setTimeout(() => fail(new Error(`no measurement started within 120 s:\n${stderr.slice(-2000)}`)), 120_000);
        child.stderr.on('data', (c: Buffer) => {
          stderr += c.toString();
          for (const pid of processTree(child.pid as number)) seen.add(pid);
          if (/\[bench\] round 1\/1 \S+:/.test(stderr)) {
            clearTimeout(timer);
            ready();
          }
        });
        void exited.then((code) => fail(new Error(`bench exited (${code}) before measuring:\n${stderr.slice(-2000)}`)));
      });
      for (const pid of processTree(child.pid as number)) seen.add(pid);
      const started = processesMentioning(tmp);
      expect(
        started.some((line) => /postgres/.test(line)),
        `PostgreSQL is running:\n${started.join('\n')}\n${stderr}`,
      ).toBe(true);
      seen.delete(child.pid as number);
      expect(seen.size).toBeGreaterThan(0);

      child.kill(signal);
      const code = await exited;
      expect(code, stderr.slice(-2000)).toBe(signal === 'SIGINT' ? 130 : 143);
      expect(stderr).toContain(`${signal}: stopping everything the run started`);
      expect([...seen].filter(alive), 'child processes still running').toEqual([]);
      // Anything still running from the scratch paths (PostgreSQL's data directory is one), whoever its parent is.
      expect(processesMentioning(tmp)).toEqual([]);
      expect(readdirSync(tmp).filter((name) => name.startsWith('kvp-bench-') || name.startsWith('kvp-pg-'))).toEqual([]);
    },
    180_000,
  );
});
