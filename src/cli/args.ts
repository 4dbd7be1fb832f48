/**
 * Shared argument handling for the subcommands.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfigFile, type Settings } from '../config/load.js';
import { UsageError } from './usage-error.js';

export { UsageError };

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Runs a parser shared with the HTTP API, whose TypeErrors (a bad filter value) are, on the command line, usage errors. */
export function usageOf<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw error instanceof TypeError ? new UsageError(error.message) : error;
  }
}

/** Loads `--config`; on problems prints them all to stderr and returns undefined. */
export async function loadOrReport(
  path: string | undefined,
  { warnings = true }: { readonly warnings?: boolean } = {},
): Promise<Settings | undefined> {
  if (path === undefined) throw new UsageError('--config FILE is required');
  try {
    const settings = await loadConfigFile(path);
    // `serve` logs them as structured WARNING lines instead.
    if (warnings && settings.warnings.length > 0) process.stderr.write(`${new ConfigError(settings.source, settings.warnings).format()}\n`);
    return settings;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(
        `invalid configuration (${error.problems.length} problem${error.problems.length === 1 ? '' : 's'}):\n${error.format()}\n`,
      );
      return undefined;
    }
    throw error;
  }
}
