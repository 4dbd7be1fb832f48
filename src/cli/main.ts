/**
 * `kube-vertex-proxy <command>`: serve, check, can-i, audit, dev.
 *
 * @module
 */
import { runAudit } from './audit.js';
import { runCanI } from './can-i.js';
import { runCheck } from './check.js';
import { runDev } from './dev.js';
import { runServe } from './serve.js';

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
  kube-vertex-proxy dev
      The embedded default: the proxy plus local stand-ins for the cluster issuer,
      the GKE metadata server and Vertex AI, with ready-to-paste curl commands.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return runServe(rest);
    case 'check':
      return runCheck(rest);
    case 'can-i':
      return runCanI(rest);
    case 'dev':
      return runDev(rest);
    case 'audit':
      return runAudit(rest);
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

export function run(argv: string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`kube-vertex-proxy: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
