/**
 * `kube-vertex-proxy check --config FILE`: validate without starting anything.
 *
 * @module
 */
import { loadOrReport, parse } from './args.js';

export async function runCheck(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: 'string', short: 'c' } });
  const settings = await loadOrReport(values.config);
  if (settings === undefined) return 1;
  process.stdout.write(
    `${settings.source}: OK (${settings.issuers.length} issuer${settings.issuers.length === 1 ? '' : 's'}, ` +
      `${settings.policy.ruleCount} rule${settings.policy.ruleCount === 1 ? '' : 's'}, policy version ` +
      `${settings.policy.version.slice(0, 12)})\n`,
  );
  return 0;
}
