/**
 * Structured JSON logs in Cloud Logging's format: `severity` instead of a
 * numeric level, `message`, RFC 3339 `time`, so GKE's logging agent lifts them
 * into LogEntry fields. Credentials are redacted by path as a second line of
 * defence; the code never logs them in the first place.
 *
 * @module
 */
import { pino, type Logger, type DestinationStream } from 'pino';

const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'access_token',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      messageKey: 'message',
      base: null,
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
      redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

type LogFn = (...args: unknown[]) => void;

/**
 * fastify makes a child logger for every request (bindings: the request id),
 * and pino's `child` with redaction costs microseconds a request on the hot
 * path even when nothing is logged. This defers it to the first log call.
 */
class LazyChildLogger {
  readonly #parent: Logger;
  readonly #bindings: Record<string, unknown>;
  readonly #options: Record<string, unknown>;
  #logger: Logger | undefined;

  constructor(parent: Logger, bindings: Record<string, unknown>, options: Record<string, unknown>) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  #real(): Logger {
    this.#logger ??= this.#parent.child(this.#bindings, this.#options);
    return this.#logger;
  }

  get level(): string {
    return this.#logger?.level ?? (this.#options['level'] as string | undefined) ?? this.#parent.level;
  }
  set level(level: string) {
    this.#real().level = level;
  }
  /* eslint-disable @typescript-eslint/no-unnecessary-type-assertion -- without the casts tsc rejects spreading into pino's overloads */
  fatal(...args: unknown[]): void {
    (this.#real().fatal as LogFn)(...args);
  }
  error(...args: unknown[]): void {
    (this.#real().error as LogFn)(...args);
  }
  warn(...args: unknown[]): void {
    (this.#real().warn as LogFn)(...args);
  }
  info(...args: unknown[]): void {
    (this.#real().info as LogFn)(...args);
  }
  debug(...args: unknown[]): void {
    (this.#real().debug as LogFn)(...args);
  }
  trace(...args: unknown[]): void {
    (this.#real().trace as LogFn)(...args);
  }
  /* eslint-enable @typescript-eslint/no-unnecessary-type-assertion */
  silent(): void {}
  child(bindings: Record<string, unknown>, options?: Record<string, unknown>): Logger {
    return this.#real().child(bindings, options);
  }
}

/** A fastify `childLoggerFactory` whose per-request child logger is created only when the request logs. */
export function lazyChildLoggerFactory(logger: Logger, bindings: Record<string, unknown>, options: Record<string, unknown>): Logger {
  return new LazyChildLogger(logger, bindings, options) as unknown as Logger;
}
