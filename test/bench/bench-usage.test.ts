/**
 * `npm run bench` told a caller's mistake as a stack trace (an unknown option) or not at all (a misspelt `--only`
 * id selected nothing, and the run reported on nothing): both now stop the run with what was wrong, exit code 2.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '../..');
const RUN = join(REPO, 'dist-bench', 'bench', 'run.js');
const scratch = mkdtempSync(join(tmpdir(), 'kvp-bench-usage-'));

function bench(...args: string[]) {
  return spawnSync(process.execPath, [RUN, ...args, '--out', join(scratch, 'out')], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, TMPDIR: scratch },
  });
}

beforeAll(() => {
  if (!existsSync(RUN)) throw new Error(`${RUN} is missing: run npm run build:bench (npm test does)`);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('npm run bench, used wrongly', () => {
  it('--help lists the options on stdout and runs nothing', () => {
    const run = bench('--help');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^usage: npm run bench/);
    for (const option of ['--quick', '--only', '--baseline', '--peers', '--node-flags']) expect(run.stdout).toContain(option);
    expect(existsSync(join(scratch, 'out'))).toBe(false);
  });

  it('an unknown option: says which, shows the usage, exit code 2, no stack', () => {
    const run = bench('--rouns', '2');
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("Unknown option '--rouns'");
    expect(run.stderr).toContain('usage: npm run bench');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('an --only id that names no scenario: says which and lists the scenarios, before any scenario runs', () => {
    const run = bench('--quick', '--only', 'full-wram,micro');
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--only names no scenario: full-wram;');
    expect(run.stderr).toMatch(/the scenarios: .*\bfull-warm\b/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.stderr).not.toContain('round 1');
    // Nothing reported, and the run's scratch directories removed.
    expect(existsSync(join(scratch, 'out', 'latest.json'))).toBe(false);
    expect(readdirSync(scratch).filter((name) => name !== 'out')).toEqual([]);
  });
});
