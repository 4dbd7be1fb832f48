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
