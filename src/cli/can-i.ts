/**
 * `kube-vertex-proxy can-i --config FILE --as system:serviceaccount:NS:SA
 * [--namespace-labels k=v,...] METHOD PATH` — the decision the running proxy
 * would make, like `kubectl auth can-i`. Exit 0 allowed, 1 denied, 2 when the
 * question itself is malformed (bad path, bad flags) or cannot be answered
 * (`namespaceLabels: watch` and the Kubernetes API unreachable).
 *
 * The namespace's labels: `--namespace-labels` when given; else, as the
 * running proxy would see them, the static map, none (`off`), or for
 * `watch` a GET of the namespace from the Kubernetes API found the way
 * `serve` finds it (kubernetes.kubeconfig, in-cluster, $KUBECONFIG,
 * ~/.kube/config).
 *
 * @module
 */
import { canICallback } from '../callbacks/can-i.js';
import { consoleOperation } from '../console/plugin.js';
import type { Settings } from '../config/load.js';
import type { PolicySubject } from '../policy/decision.js';
import { ProxyError } from '../errors.js';
import { loadKubeConfig } from '../identity/kube-config.js';
import { createNoLabelSource, createStaticLabelSource } from '../identity/labels.js';
import { readNamespaceLabels } from '../identity/read-namespace.js';
import { actionOf } from '../policy/decision.js';
import { allowCandidates, dryRunByUrl } from '../policy/job-decision.js';
import { jobKindOf } from '../policy/job-spec.js';
import { resolveOperation } from '../vertex/scope.js';
import { applicableLimits, bucketOf } from '../limits/rules.js';
import { loadOrReport, parse, UsageError } from './args.js';

const SA = /^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/;

export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--namespace-labels: "${pair}" is not key=value`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}

/** A page of the audit console: the `audit.read` question its route asks. */
function canIConsole(settings: Settings, subject: PolicySubject, name: string, method: string, path: string): number {
  const operation = consoleOperation(path.split('?', 1)[0] as string, method.toUpperCase());
  if (operation === undefined) {
    process.stdout.write(`invalid: ${method.toUpperCase()} ${path} is not a page of the audit console\n`);
    return 2;
  }
  const decision = settings.policy.evaluate(subject, actionOf(operation));
  const lines = [
    decision.allowed ? 'allowed' : 'denied',
    `  principal:  ${name}`,
    `  operation:  ${operation.spec.id}`,
    `  permission: ${operation.spec.permission}`,
    `  resource:   ${operation.resource}`,
    `  rule:       ${decision.ruleId ?? '(none: default deny)'} (${decision.reason})`,
    `  policy:     ${settings.policy.version.slice(0, 12)}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return decision.allowed ? 0 : 1;
}

export async function runCanI(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      config: { type: 'string', short: 'c' },
      as: { type: 'string' },
      'as-google': { type: 'string' },
      'namespace-labels': { type: 'string' },
    },
    true,
  );
  // Callbacks: a Google caller (email or unique id) on a callback route.
  const asGoogle = values['as-google'];
  if (asGoogle !== undefined) {
    if (values.as !== undefined || values['namespace-labels'] !== undefined)
      throw new UsageError('--as-google cannot be combined with --as or --namespace-labels');
    if (positionals.length !== 2) throw new UsageError('expected METHOD PATH, e.g. POST /callbacks/training/jobs/1');
    const settings = await loadOrReport(values.config);
    if (settings === undefined) return 2;
    // The audit console: an auditor signed in through IAP, decided by `googleEmails` rules.
    if ((positionals[1] as string).startsWith('/audit/ui/')) {
      return canIConsole(
        settings,
        { namespace: '', serviceAccount: '', labels: undefined, googleEmail: asGoogle.toLowerCase() },
        asGoogle,
        positionals[0] as string,
        positionals[1] as string,
      );
    }
    return canICallback(settings, asGoogle, (positionals[0] as string).toUpperCase(), positionals[1] as string, (text) =>
      process.stdout.write(text),
    );
  }
  if (values.as === undefined)
    throw new UsageError('--as system:serviceaccount:NAMESPACE:NAME (or --as-google EMAIL for a callback route) is required');
  const match = SA.exec(values.as);
  if (!match) throw new UsageError(`--as: "${values.as}" is not system:serviceaccount:NAMESPACE:NAME`);
  if (positionals.length !== 2) throw new UsageError('expected METHOD PATH, e.g. POST /v1/projects/P/locations/L/endpoints/E:predict');
  const [method, path] = positionals as [string, string];
  const settings = await loadOrReport(values.config);
  if (settings === undefined) return 2;

  const namespace = match[1] as string;
  const serviceAccount = match[3] as string;
  let labels: Readonly<Record<string, string>> | undefined;
  let labelOrigin = '';
  let unknownNamespace = 'namespace unknown to the label source';
  if (values['namespace-labels'] !== undefined) {
    labels = parseLabels(values['namespace-labels']);
    labelOrigin = ' (from --namespace-labels)';
  } else if (settings.kubernetes.namespaceLabels === 'watch') {
    // The running proxy follows the API server's labels; ask it the same way `serve` finds it.
    try {
      const api = loadKubeConfig(settings.kubernetes.kubeconfig);
      labels = await readNamespaceLabels(api.client, namespace, settings.kubernetes.apiTimeoutMs).finally(() => api.client.close());
      labelOrigin = ` (from the Kubernetes API, ${api.server})`;
      unknownNamespace = `namespace not found in the Kubernetes API, ${api.server}`;
    } catch (error) {
      process.stderr.write(
        `can-i: ${(error as Error).message}\ncan-i: kubernetes.namespaceLabels is "watch"; pass --namespace-labels k=v,... ` +
          `to decide without the API server\n`,
      );
      return 2;
    }
  } else {
    const source =
      settings.kubernetes.namespaceLabels === 'static' ? createStaticLabelSource(settings.kubernetes.static) : createNoLabelSource();
    labels = source.labelsOf(namespace);
  }
  if (path.startsWith('/audit/ui/')) return canIConsole(settings, { namespace, serviceAccount, labels }, values.as, method, path);

  let operation;
  try {
    operation = resolveOperation(method.toUpperCase(), path, settings.vertex).operation;
  } catch (error) {
    if (error instanceof ProxyError) {
      const refusedByScope = error.code === 'ERR_AUTHZ_PROJECT_NOT_ALLOWED';
      process.stdout.write(`${refusedByScope ? 'denied' : 'invalid'}: ${error.message} (${error.code}, HTTP ${error.httpStatus})\n`);
      return refusedByScope ? 1 : 2;
    }
    throw error;
  }
  const decision = settings.policy.evaluate({ namespace, serviceAccount, labels }, actionOf(operation));
  const lines = [
    decision.allowed ? 'allowed' : 'denied',
    `  principal:  ${values.as}${labels === undefined ? ` (${unknownNamespace})` : ` labels ${JSON.stringify(labels)}${labelOrigin}`}`,
    `  operation:  ${operation.spec.id} (${operation.methodName})`,
    `  permission: ${operation.spec.permission}`,
    `  groups:     ${operation.spec.groups.join(', ')}`,
    `  resource:   ${operation.resource}`,
    `  rule:       ${decision.ruleId ?? '(none: default deny)'} (${decision.reason})`,
    `  policy:     ${settings.policy.version.slice(0, 12)}`,
  ];
  // What the URL cannot settle, and the dry-run rules: shown apart, they do not change the answer above.
  const subject = { namespace, serviceAccount, labels };
  const jobKind = jobKindOf(operation.spec);
  const candidates = jobKind === undefined ? [] : allowCandidates(settings.policy, decision, subject, actionOf(operation));
  if (candidates.length > 0) {
    lines.push(
      `  conditions: only if the job in the request body satisfies the conditions.jobs of ` +
        candidates.map((r) => r.id).join(' or ') +
        `${candidates.at(-1)?.jobConditions === undefined ? ' (the last has none)' : ''}; can-i does not see a body`,
    );
  }
  const dryRun = dryRunByUrl(settings.policy, subject, actionOf(operation), jobKind);
  for (const outcome of dryRun?.outcomes ?? []) lines.push(`  dry-run:    ${outcome.rule} would ${outcome.outcome}`);
  for (const rule of dryRun?.needBody ?? [])
    lines.push(`  dry-run:    ${rule.id} would allow only if the job satisfies its conditions.jobs`);
  // The limits that would count this call (all of them apply; the first exhausted enforced one refuses).
  const limits = applicableLimits(settings.limits.rules, subject, actionOf(operation));
  if (limits.length === 0) lines.push('  limits:     (none)');
  limits.forEach((rule, i) => {
    const values = rule.limits.map((l) => `${l.kind} ${l.limit}`).join(', ');
    lines.push(
      `  ${i === 0 ? 'limits:    ' : '           '} ${rule.id} (${rule.enforce ? 'enforce' : 'dryRun'}, ` +
        `${bucketOf(rule, subject).text}: ${values})`,
    );
  });
  process.stdout.write(`${lines.join('\n')}\n`);
  return decision.allowed ? 0 : 1;
}
