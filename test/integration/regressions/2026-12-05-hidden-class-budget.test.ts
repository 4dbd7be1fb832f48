/**
 * Performance regression (issue 16): compiling the config schema with Ajv's
 * code optimiser added some 1,400 keys (`data14`, `err55`, …) as first
 * properties of fresh `{}` objects. V8 records each such key as a transition
 * of the one hidden class every `{}` starts from, and past its limit (some
 * 1,500) stops recording new ones: objects built the same way then each get a
 * hidden class of their own. Node's `process.nextTick` records are built that
 * way, so every tick, and the full path per request, cost measurably more.
 *
 * What the proxy loads must leave that budget room: after importing the built
 * server (which compiles the config validator at import), a few hundred new
 * first keys must still share hidden classes. V8's own check, through
 * `--allow-natives-syntax`, in a process of its own; no timing.
 */
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/proxy-process.js';

/** New first keys that must still fit after the import: headroom for what serving adds (keys, tokens, responses). */
const HEADROOM = 300;

const PROBE = `
await import(${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'dist', 'server.js')).href)});
let shared = 0;
for (let i = 0; i < ${HEADROOM}; i++) {
  const key = Symbol('probe' + i);
  const a = {};
  a[key] = 1;
  const b = {};
  b[key] = 1;
  if (%HaveSameMap(a, b)) shared++;
}
process.stdout.write(String(shared));
`;

describe('the empty object hidden class after loading the proxy', () => {
  it(`still takes ${HEADROOM} new first keys as shared transitions`, () => {
    const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', PROBE], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(Number(out)).toBe(HEADROOM);
  });
});
