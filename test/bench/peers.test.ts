/**
 * The peers' definitions (bench/peers.ts): the command lines they run with,
 * how a failed build is reported, and where builds are cached. Building and
 * running them is `npm run bench -- --peers` (minutes of `go install` or `go build`), not a test.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildCommand, buildFailure, PEERS, peersCacheDir, printableCommand, type PeerContext } from '../../bench/peers.js';

const dir = mkdtempSync(join(tmpdir(), 'kvp-peers-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const context: PeerContext = {
  dir,
  port: 18080,
  upstream: 'http://127.0.0.1:19090',
  issuer: 'http://127.0.0.1:19191/issuer',
  audience: 'kube-vertex-proxy',
  kubeconfig: join(dir, 'kubeconfig'),
};
const peer = (id: string) => {
  const found = PEERS.find((p) => p.id === id);
  if (found === undefined) throw new Error(`no peer ${id}`);
  return found;
};

describe('bench/peers.ts', () => {
  it('pins each peer to a version, names what dominates its figure, and caches builds outside the clone', () => {
    expect(PEERS.map((p) => p.id)).toEqual(['peer-oauth2-proxy', 'peer-kube-rbac-proxy', 'peer-caddy']);
    for (const p of PEERS) {
      expect(p.version, p.id).toMatch(/^v\d+\.\d+\.\d+$/);
      expect(p.note, p.id).toMatch(/\S/);
    }
    expect(peersCacheDir()).toMatch(/kube-vertex-proxy\/peers$/);
    expect(peersCacheDir().startsWith(join(import.meta.dirname, '../..'))).toBe(false);
  });

  it('runs oauth2-proxy in JWT-bearer mode against the issuer stand-in, and prints the command with placeholders', () => {
    const launch = peer('peer-oauth2-proxy').launch('/cache/oauth2-proxy', context);
    expect(launch.argv).toContain('--skip-jwt-bearer-tokens=true');
    expect(launch.argv).toContain(`--extra-jwt-issuers=${context.issuer}=${context.audience}`);
    expect(launch.argv).toContain(`--oidc-issuer-url=${context.issuer}`);
    expect(launch.argv).toContain(`--upstream=${context.upstream}/`);
    const printed = printableCommand(launch, [
      ['127.0.0.1:18080', '127.0.0.1:$PORT'],
      [context.upstream, '$VERTEX_STAND_IN'],
      [context.issuer, '$ISSUER'],
    ]);
    expect(printed.startsWith('oauth2-proxy --http-address=127.0.0.1:$PORT --upstream=$VERTEX_STAND_IN/ ')).toBe(true);
    expect(printed).toContain('--extra-jwt-issuers=$ISSUER=kube-vertex-proxy');
  });

  it('builds kube-rbac-proxy inside its module source (the proxy refuses its version list) and runs it against the stand-in', () => {
    const krp = peer('peer-kube-rbac-proxy');
    expect(buildCommand(krp)).toBe(
      'go build ./cmd/kube-rbac-proxy in the source of github.com/brancz/kube-rbac-proxy@v0.19.1 (go mod download)',
    );
    expect(buildCommand(peer('peer-caddy'))).toBe('go install github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9');
    const launch = krp.launch('/cache/kube-rbac-proxy', context);
    expect(launch.argv).toContain(`--kubeconfig=${context.kubeconfig}`);
    expect(launch.argv).toContain(`--auth-token-audiences=${context.audience}`);
    expect(launch.argv).toContain(`--upstream=${context.upstream}/`);
    expect(krp.needsKubeApi).toBe(true);
  });

  it("runs Caddy's reverse_proxy from a Caddyfile with the admin API and automatic HTTPS off", () => {
    const launch = peer('peer-caddy').launch('/cache/caddy', context);
    expect(launch.argv.slice(1)).toEqual(['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile']);
    const caddyfile = readFileSync(join(dir, 'Caddyfile'), 'utf8');
    expect(caddyfile).toContain('admin off');
    expect(caddyfile).toContain('auto_https off');
    expect(caddyfile).toContain('http://127.0.0.1:18080 {\n\treverse_proxy 127.0.0.1:19090\n}');
  });

  it("reports a failed build in the go tool's words, without the module proxy's address", () => {
    const stderr =
      'go: downloading example.com/x v1.0.0\ngo: github.com/brancz/kube-rbac-proxy@v0.21.0: ' +
      'github.com/brancz/kube-rbac-proxy@v0.21.0: reading ' +
      'https://proxy.example/github.com/brancz/kube-rbac-proxy/@v/v0.21.0.info: 403 Forbidden\n\tserver response: This ' +
      'module version is not available.\n';
    expect(buildFailure(stderr)).toBe(
      'go: github.com/brancz/kube-rbac-proxy@v0.21.0: the module proxy answered 403 Forbidden server response: This module ' +
        'version is not available.',
    );
    expect(buildFailure('# pkg\n./main.go:1:1: syntax error\n')).toBe('# pkg ./main.go:1:1: syntax error');
  });
});
