/**
 * The embedded default, what `npm start` runs (`node dist-dev/dev/cli.js`,
 * built by `npm run build:dev` from dev/tsconfig.json). Starts loopback
 * stand-ins for the cluster's token issuer, the GKE metadata server and
 * Vertex AI (dev/standins/), writes a config for them, starts the real proxy
 * from it as its own process (`dist/cli.js serve --config`, the production
 * build, exactly as in a cluster), then shows an allowed and a denied predict
 * and prints the commands to try more.
 *
 * Lives outside src/ so that neither dist/ nor the image holds the stand-ins
 * (one of them mints tokens any proxy configured for it would accept).
 *
 * `--once` runs the demonstration and exits (used by the tests); `--dir`
 * names the folder for the config, tokens and env.sh (default `.kvp-dev`).
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { startIssuer } from './standins/issuer.js';
import { metadataEnv, startMetadataServer } from './standins/metadata.js';
import { startVertexStandIn } from './standins/vertex.js';
import { parse, UsageError } from '../src/cli/args.js';

const PROJECT = 'demo-project';
const LOCATION = 'us-central1';
const AUDIENCE = 'kube-vertex-proxy';

async function runDev(argv: string[]): Promise<number> {
  let once = false;
  let dir: string;
  try {
    const { values } = parse(argv, { once: { type: 'boolean' }, dir: { type: 'string' } });
    once = values.once === true;
    dir = resolve(values.dir ?? '.kvp-dev');
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`npm start: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  mkdirSync(dir, { recursive: true });

  const issuer = await startIssuer({ kind: 'kubernetes' });
  const metadata = await startMetadataServer({ projectId: PROJECT });
  const vertex = await startVertexStandIn();
  const configPath = join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    `# Written by \`npm start\` for the local stand-ins. A cluster config differs in issuer and upstream only.\n${stringify({
      server: { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0 },
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: issuer.issuer, audiences: [AUDIENCE] }],
      vertex: { projects: [PROJECT], locations: [LOCATION, 'global'], upstream: vertex.url },
      kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml', env: 'prod' }, web: { team: 'web', env: 'prod' } } },
      policy: {
        rules: [
          {
            id: 'ml-predict',
            effect: 'allow',
            description: 'Workloads in namespaces labelled team=ml may predict and generate in us-central1.',
            subjects: { namespaceSelector: { matchLabels: { team: 'ml' } } },
            permissions: ['predict', 'generate'],
            resources: [`projects/${PROJECT}/locations/${LOCATION}/**`],
          },
          {
            id: 'auditors',
            effect: 'allow',
            description: 'The compliance team reads the audit trail (API, CLI, console).',
            subjects: { serviceAccounts: ['compliance/*'] },
            permissions: ['audit.read'],
            resources: ['audit/*'],
          },
        ],
      },
      audit: { console: { enabled: true } },
    })}`,
  );

  // The proxy's HOME: empty, so no gcloud or kubectl configuration of the user's is picked up. Removed at the stop.
  const home = mkdtempSync(join(tmpdir(), 'kvp-dev-home-'));
  // dist-dev/dev/cli.js → the production build's dist/cli.js in the same clone.
  const child = spawn(process.execPath, [resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js'), 'serve', '--config', configPath], {
    env: {
      ...process.env,
      ...metadataEnv(metadata),
      HOME: home,
      GOOGLE_APPLICATION_CREDENTIALS: '',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stopAll = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await Promise.all([issuer.close(), metadata.close(), vertex.close()]);
    rmSync(home, { recursive: true, force: true });
  };

  const ports = await new Promise<{ dataPort: number; adminPort: number } | undefined>((resolvePorts) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      let entry: Record<string, unknown> | undefined;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        entry = undefined;
      }
      if (entry?.message === 'kube-vertex-proxy listening') resolvePorts(entry as unknown as { dataPort: number; adminPort: number });
      if (entry?.kubeVertexProxy !== undefined) process.stdout.write(`audit  ${line}\n`);
      else if (entry?.severity !== 'DEBUG') process.stdout.write(`log    ${line}\n`);
    });
    child.once('exit', () => resolvePorts(undefined));
  });
  if (ports === undefined) {
    await stopAll();
    return 1;
  }
  const base = `http://127.0.0.1:${ports.dataPort}`;
  const admin = `http://127.0.0.1:${ports.adminPort}`;
  await waitReady(admin);
  // For commands typed in another terminal (and the README's runnable blocks): `. .kvp-dev/env.sh`.
  writeFileSync(
    join(dir, 'env.sh'),
    `# Written by \`npm start\` (dev/cli.ts) for this run's ports.\nexport KVP_URL=${base}\nexport KVP_ADMIN_URL=${admin}` +
      `\nexport KVP_CONFIG=${configPath}\n`,
  );

  const allowed = issuer.mintKubernetesToken({
    namespace: 'ml',
    serviceAccount: 'trainer',
    audience: AUDIENCE,
    podName: 'trainer-0',
    expiresIn: 3600,
  });
  const denied = issuer.mintKubernetesToken({
    namespace: 'web',
    serviceAccount: 'frontend',
    audience: AUDIENCE,
    podName: 'frontend-0',
    expiresIn: 3600,
  });
  writeFileSync(join(dir, 'allowed.token'), allowed, { mode: 0o600 });
  writeFileSync(join(dir, 'denied.token'), denied, { mode: 0o600 });
  // The demo auditor signs in to the console with this token (pasted into its sign-in form).
  const auditor = issuer.mintKubernetesToken({ namespace: 'compliance', serviceAccount: 'auditor', audience: AUDIENCE, expiresIn: 3600 });
  writeFileSync(join(dir, 'auditor.token'), auditor, { mode: 0o600 });
  const predictPath = `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890:predict`;

  const show = async (title: string, token: string) => {
    const response = await fetch(`${base}${predictPath}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [{ feature: 1 }] }),
    });
    process.stdout.write(`\n${title}: HTTP ${response.status}\n${await response.text()}\n`);
  };
  await show('ml/trainer (namespace labelled team=ml) predicts', allowed);
  await show('web/frontend (namespace labelled team=web) predicts', denied);
  await new Promise((r) => setTimeout(r, 100));

  const rel = (file: string) => join(dir, file).replace(`${process.cwd()}/`, '');
  process.stdout.write(`
kube-vertex-proxy is running on its embedded default:
  data port   ${base}      (Vertex AI REST, Kubernetes tokens in)
  admin port  ${admin}      (/metrics /healthz /readyz)
  audit console ${base}/audit/ui/   (demo auditor compliance/auditor: sign in with the token in ${rel('auditor.token')})
  config      ${rel('config.yaml')}
  stand-ins   issuer ${issuer.issuer}
              metadata server ${metadata.url}   Vertex AI ${vertex.url}

Try it (tokens are valid for an hour; \`. ${rel('env.sh')}\` sets KVP_URL, KVP_ADMIN_URL and KVP_CONFIG):
  curl -s -H "Authorization: Bearer $(cat ${rel('allowed.token')})" -H 'content-type: application/json' \\
       -d '{"instances":[{"feature":1}]}' ${base}${predictPath}
  curl -s -H "Authorization: Bearer $(cat ${rel('denied.token')})" -H 'content-type: application/json' \\
       -d '{"instances":[{"feature":1}]}' ${base}${predictPath}
  npx kube-vertex-proxy can-i --config ${rel('config.yaml')} --as system:serviceaccount:web:frontend POST ${predictPath}
  curl -s ${admin}/metrics | grep kube_vertex_proxy_requests_total
  npx kube-vertex-proxy audit query --config ${rel('config.yaml')} --since 1h
  npx kube-vertex-proxy audit verify --config ${rel('config.yaml')}

Each request prints one audit line (Cloud Logging format) and is stored in ${rel('audit.db')}. Ctrl-C stops everything.
`);
  if (once) {
    await stopAll();
    return 0;
  }
  await new Promise<void>((resolveStop) => {
    process.once('SIGINT', () => resolveStop());
    process.once('SIGTERM', () => resolveStop());
    child.once('exit', () => resolveStop());
  });
  await stopAll();
  return 0;
}

async function waitReady(admin: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const response = await fetch(`${admin}/readyz`).catch(() => undefined);
    if (response?.ok) return;
    await response?.body?.cancel();
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the proxy did not become ready within 30 s');
}

runDev(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`npm start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
