/**
 * The peers (`npm run bench -- --peers`): other proxies users could put in
 * front of Vertex AI instead, built from source at pinned versions with
 * `go install` once and cached outside the clone
 * (`~/.cache/kube-vertex-proxy/peers/<name>-<version>/`), then run with their
 * defaults as users run them. A peer whose module cannot be fetched or built
 * is reported as not available with the build's own error, never with a
 * figure.
 *
 * In: a {@link PeerContext} (ports, upstream, issuer, kubeconfig). Out: the
 * exact argv and config files each peer runs with (the report prints the
 * command line).
 *
 * @module
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PeerContext {
  /** Where the peer's config and data go (removed with the target). */
  readonly dir: string;
  readonly port: number;
  /** The Vertex AI stand-in, `http://127.0.0.1:PORT`. */
  readonly upstream: string;
  /** The token issuer stand-in: its `iss` (discovery at `{issuer}/.well-known/openid-configuration`). */
  readonly issuer: string;
  readonly audience: string;
  /** A kubeconfig for the Kubernetes API stand-in. */
  readonly kubeconfig: string;
}

export interface PeerLaunch {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** A path that answers 200 once the peer is ready. */
  readonly readyPath: string;
}

export interface Peer {
  /** Scenario id, `peer-<name>`. */
  readonly id: string;
  readonly name: string;
  readonly title: string;
  /** The Go package `go install` builds, and its pinned version. */
  readonly goPackage: string;
  readonly version: string;
  /**
   * Build with `go build` inside the module's own source (fetched with `go mod download MODULE@VERSION`, its go.mod, replace
   * directives and go.sum as released) instead of `go install`: for a module whose version list the module proxy refuses, which
   * `go install PKG@VERSION` asks for (to look for a deprecation notice) even when the version itself is served.
   */
  readonly buildFromModule?: string;
  readonly binary: string;
  /** What dominates its figure, as measured or read in its source. */
  readonly note: string;
  /**
   * Removes the caller's `Authorization` header once it has authenticated it and sends none of its own: its upstream is the
   * stand-in that answers without one (else every request would be the stand-in's 401, less work than the answer measured).
   */
  readonly forwardsNoAuthorization?: boolean;
  /** Needs the Kubernetes API stand-in (TokenReview, SubjectAccessReview). */
  readonly needsKubeApi?: boolean;
  launch(binary: string, context: PeerContext): PeerLaunch;
}

/** 32 bytes, as oauth2-proxy requires of a cookie secret; the bench never sets a cookie. */
const COOKIE_SECRET = 'kube-vertex-proxy-bench-cookie!!';

export const PEERS: readonly Peer[] = [
  {
    id: 'peer-oauth2-proxy',
    name: 'oauth2-proxy',
    title: 'oauth2-proxy in JWT-bearer mode: verifies the Kubernetes service-account token (issuer stand-in JWKS) on every request',
    goPackage: 'github.com/oauth2-proxy/oauth2-proxy/v7',
    version: 'v7.15.6',
    binary: 'oauth2-proxy',
    // https://github.com/oauth2-proxy/oauth2-proxy/blob/v7.15.6/pkg/upstream/http.go (transport) and pkg/middleware/jwt_session.go (no
    // cache).
    note:
      "Upstream transport is a clone of Go's http.DefaultTransport, which keeps at most 2 idle connections per host: at 50 " +
      'connections most requests open a new upstream connection. ' +
      ('Every request verifies the JWT signature (no verified-token cache); one request log line per request ' +
        '(--request-logging defaults to true).'),
    launch: (binary, c) => ({
      argv: [
        binary,
        `--http-address=127.0.0.1:${c.port}`,
        `--upstream=${c.upstream}/`,
        '--provider=oidc',
        `--oidc-issuer-url=${c.issuer}`,
        `--client-id=${c.audience}`,
        '--client-secret=bench-not-a-secret',
        `--cookie-secret=${COOKIE_SECRET}`,
        '--email-domain=*',
        '--skip-jwt-bearer-tokens=true',
        `--extra-jwt-issuers=${c.issuer}=${c.audience}`,
        // Service-account tokens carry no email: the subject stands in for it, unverified.
        '--oidc-email-claim=sub',
        '--insecure-oidc-allow-unverified-email=true',
      ],
      env: {},
      readyPath: '/ping',
    }),
  },
  {
    id: 'peer-kube-rbac-proxy',
    name: 'kube-rbac-proxy',
    title: 'kube-rbac-proxy: TokenReview + SubjectAccessReview against the Kubernetes API stand-in, cached',
    goPackage: 'github.com/brancz/kube-rbac-proxy/cmd/kube-rbac-proxy',
    // The newest version the module proxy serves here: it refuses v0.20.x and v0.21.0 (403), and the module's version list.
    version: 'v0.19.1',
    buildFromModule: 'github.com/brancz/kube-rbac-proxy',
    binary: 'kube-rbac-proxy',
    // cmd/kube-rbac-proxy/app/transport.go sets MaxIdleConns 100 but not MaxIdleConnsPerHost (Go's default: 2);
    // pkg/authn/delegating.go caches TokenReviews 2 min, pkg/authz/auth.go SubjectAccessReviews 5 min (allowed).
    note:
      'Authenticates (TokenReview, cached 2 min) and authorizes (SubjectAccessReview of the path and verb, allowed answers cached ' +
      "5 min) through the Kubernetes API stand-in. Its upstream transport keeps Go's default of 2 idle connections per host, " +
      'fewer than the 50 connections of the load, so many requests open a new upstream connection.',
    needsKubeApi: true,
    // Its token authenticator (k8s.io/apiserver's bearertoken) deletes the header after authenticating it.
    forwardsNoAuthorization: true,
    launch: (binary, c) => ({
      argv: [
        binary,
        `--insecure-listen-address=127.0.0.1:${c.port}`,
        `--upstream=${c.upstream}/`,
        `--kubeconfig=${c.kubeconfig}`,
        `--auth-token-audiences=${c.audience}`,
      ],
      env: {},
      // Its /healthz is served on the secure proxy-endpoints port only; any answer (401 here) means it is up.
      readyPath: '/',
    }),
  },
  {
    id: 'peer-caddy',
    name: 'caddy',
    title: "Caddy reverse_proxy (no checks): a plain Go passthrough with Caddy's defaults",
    goPackage: 'github.com/caddyserver/caddy/v2/cmd/caddy',
    version: 'v2.11.9',
    binary: 'caddy',
    // https://github.com/caddyserver/caddy/blob/v2.11.9/modules/caddyhttp/reverseproxy/httptransport.go (MaxIdleConnsPerHost = 32).
    note:
      'No access log (its default); keeps up to 32 idle upstream connections per host (its default), fewer than the 50 ' +
      'client connections.',
    launch: (binary, c) => {
      const caddyfile = join(c.dir, 'Caddyfile');
      // admin off and auto_https off: several instances on one machine, plain HTTP on loopback, as the other targets.
      writeFileSync(
        caddyfile,
        `{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n}\n\nhttp://127.0.0.1:${c.port} {\n\treverse_proxy ` +
          `${new URL(c.upstream).host}\n}\n`,
      );
      return {
        argv: [binary, 'run', '--config', caddyfile, '--adapter', 'caddyfile'],
        env: { XDG_DATA_HOME: join(c.dir, 'data'), XDG_CONFIG_HOME: join(c.dir, 'config') },
        readyPath: '/',
      };
    },
  },
];

/** `~/.cache/kube-vertex-proxy/peers` (or under `$XDG_CACHE_HOME`): built binaries, outside the clone. */
export function peersCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kube-vertex-proxy', 'peers');
}

export type PeerBuild = { readonly binary: string; readonly built: boolean } | { readonly reason: string };

/**
 * The peer's binary: from the cache, else built with `go install PKG@VERSION`
 * into the cache (minutes for a large module; once). A failed build's reason
 * is the go tool's last lines (e.g. the module proxy refusing the module).
 */
export function buildPeer(peer: Peer, log: (line: string) => void): PeerBuild {
  const dir = join(peersCacheDir(), `${peer.name}-${peer.version}`);
  const binary = join(dir, peer.binary);
  if (existsSync(binary)) return { binary, built: false };
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.status !== 0) return { reason: `Go is not installed (go install ${peer.goPackage}@${peer.version} builds it)` };
  mkdirSync(dir, { recursive: true });
  log(`building ${peer.name} ${peer.version} (${buildCommand(peer)}), once`);
  const env = { ...process.env, GOBIN: dir, GOFLAGS: `${process.env.GOFLAGS ?? ''} -buildvcs=false`.trim() };
  const result =
    peer.buildFromModule === undefined
      ? spawnSync('go', ['install', `${peer.goPackage}@${peer.version}`], { encoding: 'utf8', env, maxBuffer: 1 << 26 })
      : buildInModuleSource(peer, peer.buildFromModule, binary, env);
  if (result.status === 0 && existsSync(binary)) return { binary, built: true };
  rmSync(dir, { recursive: true, force: true });
  return {
    reason: `${buildCommand(peer)} failed: ` + buildFailure(`${result.stderr}${result.error ? result.error.message : ''}`),
  };
}

/** How the peer is built, as the report prints it. */
export function buildCommand(peer: Peer): string {
  if (peer.buildFromModule === undefined) return `go install ${peer.goPackage}@${peer.version}`;
  const subdirectory = peer.goPackage.slice(peer.buildFromModule.length) || '/';
  return `go build .${subdirectory} in the source of ${peer.buildFromModule}@${peer.version} (go mod download)`;
}

/** `go mod download -json MODULE@VERSION`, then `go build` of the package in a writable copy of that source. */
function buildInModuleSource(peer: Peer, module: string, binary: string, env: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  const download = spawnSync('go', ['mod', 'download', '-json', `${module}@${peer.version}`], {
    encoding: 'utf8',
    env,
    maxBuffer: 1 << 26,
  });
  if (download.status !== 0) return { ...download, stderr: `${download.stderr}${download.stdout}` };
  const source = (JSON.parse(download.stdout) as { Dir?: string }).Dir;
  if (source === undefined) return { ...download, status: 1, stderr: `go mod download named no source directory for ${module}` };
  // The module cache is read-only; go build writes nothing into the source, but a copy keeps the cache untouched either way.
  const work = mkdtempSync(join(tmpdir(), `peer-${peer.name}-`));
  try {
    cpSync(source, work, { recursive: true });
    return spawnSync('go', ['build', '-o', binary, `.${peer.goPackage.slice(module.length)}`], {
      cwd: work,
      encoding: 'utf8',
      env,
      maxBuffer: 1 << 26,
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The go tool's error, short: its last lines, with the package repeated and
 * the module proxy's address left out (`reading https://…/@v/v1.info: 403
 * Forbidden` → `the module proxy answered 403 Forbidden`).
 */
export function buildFailure(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('go: downloading'))
    .slice(-3)
    .join(' ')
    .replace(/^go: (\S+@\S+): \1: /, 'go: $1: ')
    .replace(/reading https?:\/\/\S+: /g, 'the module proxy answered ')
    .replace(/https?:\/\/\S+/g, '(module proxy)')
    .slice(0, 300);
}

/** The command line as the report prints it: the binary's name, and run-specific values (temp dir, ports) as placeholders. */
export function printableCommand(launch: PeerLaunch, placeholders: ReadonlyArray<readonly [string, string]>): string {
  const [binary, ...args] = launch.argv;
  let text = [(binary ?? '').split('/').at(-1) ?? '', ...args].join(' ');
  for (const [value, name] of placeholders) text = text.split(value).join(name);
  return text;
}
