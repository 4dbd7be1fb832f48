/**
 * `kube-vertex-proxy serve --config FILE`: the service. An invalid config
 * stops it before anything listens. SIGTERM/SIGINT drain gracefully.
 *
 * @module
 */
import { tuneGarbageCollector } from '../lib/gc-flags.js';
import { createLineWriter } from '../lib/line-writer.js';
import { createLogger } from '../lib/logger.js';
import { startProxy } from '../server.js';
import { loadOrReport, parse } from './args.js';

export async function runServe(argv: string[]): Promise<number> {
  // Before the config is loaded and anything listens: see the module for why (NODE_OPTIONS cannot carry V8 flags).
  tuneGarbageCollector();
  const configPath = parse(argv, { config: { type: 'string', short: 'c' } }).values.config;
  const settings = await loadOrReport(configPath ?? process.env.KVP_CONFIG, { warnings: false });
  if (settings === undefined) return 1;
  // Log and audit lines share one batched writer: one write(2) per event-loop turn, not one per line.
  const stdout = createLineWriter(1);
  const logger = createLogger(settings.logging.level, stdout);
  for (const warning of settings.warnings) logger.warn({ path: warning.path, line: warning.line }, `config: ${warning.message}`);
  const running = await startProxy(settings, { logger, writeAuditLine: (line) => stdout.write(line) });
  logger.info(
    {
      dataPort: running.dataAddress.port,
      adminPort: running.adminAddress.port,
      policyVersion: settings.policy.version,
      rules: settings.policy.ruleCount,
    },
    'kube-vertex-proxy listening',
  );

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      running.close().then(
        () => {
          // Every audit line of the drained requests is out before the exit code is.
          stdout.flush();
          resolve(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // SIGHUP re-reads the config file; an invalid one is refused and the old policy keeps serving.
    process.on('SIGHUP', () => {
      if (!stopping) void running.reload();
    });
  });
}
