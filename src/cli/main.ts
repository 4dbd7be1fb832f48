/**
 * `kube-vertex-proxy <command>`: serve, check, can-i, audit. The embedded
 * default with local stand-ins (`npm start`) is not part of this build: it
 * lives in dev/ and is compiled to dist-dev/ only in a clone.
 *
 * @module
 */
// Each command loads its own modules when it runs (dynamic imports below): `serve`
// does not hold the store readers of `audit` in memory.
import { UsageError } from './usage-error.js';

const USAGE = `kube-vertex-proxy: identity-aware proxy between GKE workloads and Vertex AI

Usage:
  kube-vertex-proxy serve --config FILE
      Run the proxy (data port for Vertex AI traffic, admin port for /metrics /healthz /readyz).
  kube-vertex-proxy check --config FILE
      Validate a config file; print every problem with its path; exit 1 if any.
  kube-vertex-proxy can-i --config FILE --as system:serviceaccount:NS:SA [--namespace-labels k=v,...] METHOD PATH
      Would the policy allow this call? Exit 0 allowed, 1 denied, 2 the call itself is invalid.
  kube-vertex-proxy can-i --config FILE --as-google EMAIL METHOD PATH
      Would a callback route admit this Google caller (Vertex AI workload)? Same exit codes.
  kube-vertex-proxy audit query|summary --config FILE [--principal P] [--namespace NS] [--permission PERM] [--resource R]
        [--decision allow|deny] [--since T] [--until T] [--format table|json|csv]
      Query the audit store named in the config (or a running proxy: --proxy URL --token-file FILE).
  kube-vertex-proxy audit verify --config FILE [--since T] [--until T]
      Check every writer's hash chain; report the first broken link; exit 1 if there is one.

To try it locally with stand-ins for the cluster issuer, the GKE metadata server and Vertex AI,
run \`npm ci && npm start\` in a clone of the repository (not part of the installed proxy or its image).
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return (await import('./serve.js')).runServe(rest);
    case 'check':
      return (await import('./check.js')).runCheck(rest);
    case 'can-i':
      return (await import('./can-i.js')).runCanI(rest);
    case 'dev':
      // Kept as a pointer: older docs and muscle memory say `kube-vertex-proxy dev`.
      process.stderr.write('kube-vertex-proxy: "dev" is not part of the installed proxy; in a clone of the repository run `npm start`.\n');
      return 2;
    case 'audit':
      return (await import('./audit.js')).runAudit(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

/** The one place a usage error is reported: `<command>: <problem>` on stderr, exit 2. */
async function reportUsageError(argv: string[], error: UsageError): Promise<number> {
  const [command, sub] = argv;
  // `audit` has subcommands: name the one given, and show their usage as `audit` alone does.
  const usage = command === 'audit' ? (await import('./audit.js')).AUDIT_USAGE : '';
  process.stderr.write(`${command === 'audit' ? `audit ${sub ?? ''}` : (command ?? '')}: ${error.message}\n${usage}`);
  return 2;
}

export function run(argv: string[]): void {
  main(argv)
    .catch(async (error: unknown) => {
      if (error instanceof UsageError) return reportUsageError(argv, error);
      throw error;
    })
    .then(
      (code) => {
        process.exitCode = code;
      },
      (error: unknown) => {
        process.stderr.write(`kube-vertex-proxy: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 1;
      },
    );
}
