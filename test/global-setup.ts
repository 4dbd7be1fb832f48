/**
 * One scratch directory for the whole test run, removed when it ends: every
 * temporary file or directory a test (or a process it starts with this
 * environment) makes with `os.tmpdir()` lands under it. Tests remove what
 * they can themselves; this catches what one leaves behind (a config file of a
 * proxy it started, the empty HOME of a stand-in), which otherwise stayed in
 * /tmp: about 280 directories per `npm test`.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'kvp-tests-'));
  // Servers the tests start as another user (PostgreSQL as `postgres` when run as root) must reach their directories.
  chmodSync(root, 0o755);
  // Read by os.tmpdir() in this process and inherited by the test workers and every process they start with it.
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true });
}
