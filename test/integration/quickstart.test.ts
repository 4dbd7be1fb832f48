/**
 * The README's first command: `npm start` runs dev/cli.ts (built to
 * dist-dev/), the embedded default. `--once` runs its demonstration and exits.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditRecordOfEntry } from '../../src/audit/cloud-logging.js';
import { DEV_CLI } from '../helpers/proxy-process.js';

describe('the embedded default (npm start)', () => {
  it('shows an allowed predict, a denied one, their audit lines and the commands to try', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvp-dev-'));
    // Its own temporary directory, to see that it leaves nothing there (the proxy's empty HOME once stayed behind).
    const scratch = mkdtempSync(join(tmpdir(), 'kvp-dev-tmp-'));
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [DEV_CLI, '--once', '--dir', dir], {
        env: { PATH: process.env.PATH ?? '', HOME: dir, TMPDIR: scratch },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.once('exit', (exitCode) => resolve({ code: exitCode, stdout: out }));
    });
    expect(code).toBe(0);
    expect(readdirSync(scratch)).toEqual([]);
    expect(stdout).toMatch(/ml\/trainer \(namespace labelled team=ml\) predicts: HTTP 200\n\{\s*"predictions":/);
    expect(stdout).toMatch(
      /web\/frontend \(namespace labelled team=web\) predicts: HTTP 403\n\{"error":\{"code":403,.*"status":"PERMISSION_DENIED"/,
    );
    const audit = stdout
      .split('\n')
      .filter((l) => l.startsWith('audit  '))
      .map((l) => auditRecordOfEntry(JSON.parse(l.slice(7)) as Record<string, unknown>));
    expect(audit.map((a) => a?.decision)).toEqual(['allow', 'deny']);
    expect(stdout).toContain('curl -s -H "Authorization: Bearer $(cat ');
    expect(stdout).toContain('kube-vertex-proxy can-i --config');
    // The printed token files hold tokens the printed commands can use; the output itself never holds a token.
    const token = readFileSync(join(dir, 'allowed.token'), 'utf8');
    expect(token.split('.')).toHaveLength(3);
    expect(stdout).not.toContain(token);
  });
});
