/**
 * `kube-vertex-proxy can-i --config FILE --as system:serviceaccount:NS:SA
 * [--namespace-labels k=v,...] METHOD PATH` — the decision the running proxy
 * would make, like `kubectl auth can-i`. Exit 0 allowed, 1 denied, 2 when the
 * question itself is malformed (bad path, bad flags).
 *
 * @module
 */
import { canICallback } from '../callbacks/can-i.js';
import { ProxyError } from '../errors.js';
import { createNoLabelSource, createStaticLabelSource } from '../identity/labels.js';
import { actionOf } from '../policy/decision.js';
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

export async function runCanI(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parse(
      argv,
      { config: { type: 'string', short: 'c' }, as: { type: 'string' }, 'as-google': { type: 'string' }, 'namespace-labels': { type: 'string' } },
      true,
    );
    // Callbacks: a Google caller (email or unique id) on a callback route.
    const asGoogle = values['as-google'];
    if (asGoogle !== undefined) {
      if (values.as !== undefined || values['namespace-labels'] !== undefined) throw new UsageError('--as-google cannot be combined with --as or --namespace-labels');
      if (positionals.length !== 2) throw new UsageError('expected METHOD PATH, e.g. POST /callbacks/training/jobs/1');
      const settings = await loadOrReport(values.config);
      if (settings === undefined) return 2;
      return canICallback(settings, asGoogle, (positionals[0] as string).toUpperCase(), positionals[1] as string, (text) => process.stdout.write(text));
    }
    if (values.as === undefined) throw new UsageError('--as system:serviceaccount:NAMESPACE:NAME (or --as-google EMAIL for a callback route) is required');
    const match = SA.exec(values.as);
    if (!match) throw new UsageError(`--as: "${values.as}" is not system:serviceaccount:NAMESPACE:NAME`);
    if (positionals.length !== 2) throw new UsageError('expected METHOD PATH, e.g. POST /v1/projects/P/locations/L/endpoints/E:predict');
    const [method, path] = positionals as [string, string];
    const settings = await loadOrReport(values.config);
    if (settings === undefined) return 2;

    const namespace = match[1] as string;
    const serviceAccount = match[3] as string;
    const source =
      settings.config.kubernetes.namespaceLabels === 'static' ? createStaticLabelSource(settings.config.kubernetes.static) : createNoLabelSource();
    const labels = values['namespace-labels'] !== undefined ? parseLabels(values['namespace-labels']) : source.labelsOf(namespace);

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
      `  principal:  ${values.as}${labels === undefined ? ' (namespace unknown to the label source)' : ` labels ${JSON.stringify(labels)}`}`,
      `  operation:  ${operation.spec.id} (${operation.methodName})`,
      `  permission: ${operation.spec.permission}`,
      `  resource:   ${operation.resource}`,
      `  rule:       ${decision.ruleId ?? '(none: default deny)'} (${decision.reason})`,
      `  policy:     ${settings.policy.version.slice(0, 12)}`,
    ];
    // The limits that would count this call (all of them apply; the first exhausted enforced one refuses).
    const subject = { namespace, serviceAccount, labels };
    const limits = applicableLimits(settings.limits.rules, subject, actionOf(operation));
    if (limits.length === 0) lines.push('  limits:     (none)');
    limits.forEach((rule, i) => {
      const values = rule.limits.map((l) => `${l.kind} ${l.limit}`).join(', ');
      lines.push(`  ${i === 0 ? 'limits:    ' : '           '} ${rule.id} (${rule.enforce ? 'enforce' : 'dryRun'}, ${bucketOf(rule, subject).text}: ${values})`);
    });
    process.stdout.write(`${lines.join('\n')}\n`);
    return decision.allowed ? 0 : 1;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`can-i: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}
