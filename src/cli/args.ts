/**
 * Shared argument handling for the subcommands.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfigFile, type Settings } from '../config/load.js';

export class UsageError extends Error {}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
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
