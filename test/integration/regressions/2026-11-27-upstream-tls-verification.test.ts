/**
 * Security regression: @fastify/reply-from's built-in undici options set
 * `tls.rejectUnauthorized = false` (lib/request.js getUndiciOptions). A proxy
 * using them would send its Google access token to any TLS endpoint that
 * answers for the upstream name. The proxy brings its own undici Agent with
 * verification on: an upstream with an untrusted certificate gets nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREDICT_PATH, startWorld, type World } from '../../helpers/world.js';

let world: World;
let server: Server;
let received = 0;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvp-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => {
    received++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"predictions":[]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  world = await startWorld({ config: (d) => ({ ...d, vertex: { ...(d.vertex as object), upstream: `https://127.0.0.1:${port}` } }) });
});
afterAll(async () => {
  await world?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

describe('upstream TLS verification', () => {
  it('refuses an upstream whose certificate is not trusted; the proxy token is never sent', async () => {
    const response = await world.call(PREDICT_PATH, { body: '{}' });
    expect(response.status).toBe(502);
    expect(received).toBe(0);
  });
});
