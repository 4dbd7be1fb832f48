/**
 * A CA and a serving certificate for 127.0.0.1 and localhost, made with the
 * openssl command (present wherever the tests' Debian packages are): for
 * servers a test or the benchmark runs with TLS because their clients send
 * credentials only over HTTPS (client-go's kubeconfig loading drops the
 * user's token for an `http://` server).
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ServingCertificates {
  /** Paths of the PEM files. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Writes `<name>.crt`/`<name>.key` and a CA (`ca.crt`) into `dir`; valid two days. */
export function makeServingCertificates(dir: string, name: string): ServingCertificates {
  const ca = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=kvp-test-ca']);
  const csr = join(dir, `${name}.csr`);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { ca, cert, key };
}
