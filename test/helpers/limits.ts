/**
 * Helpers for limit tests: calendar windows are real (the proxy's clock), so
 * a test that counts within one minute first waits out the last seconds of
 * the current minute; and the 429 body is checked in one place.
 */
import { expect } from 'vitest';

/**
 * The options of a test that calls {@link awayFromMinuteEdge}: the wait alone can take up to `needSeconds`, which
 * the default test timeout (30 s) does not leave room for. Without it, the failOpen Redis test timed out whenever
 * it started in the last 30 s of a minute and its other steps took a few seconds more.
 */
export const WAITS_FOR_MINUTE_EDGE = { timeout: 90_000 } as const;

/** Returns at the start of a minute when fewer than `needSeconds` are left in this one. */
export async function awayFromMinuteEdge(needSeconds = 20): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (60_000 - intoMinute < needSeconds * 1000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 50));
}

interface GoogleError {
  error: { code: number; status: string; message: string; details: Array<Record<string, unknown>> };
}

/** A limit refusal: 429 RESOURCE_EXHAUSTED, QuotaFailure naming rule and bucket, RetryInfo agreeing with Retry-After. */
export async function expectLimitRefusal(
  response: Response,
  rule: string,
  bucket: string,
  kind: string,
): Promise<{ retryAfter: number; body: GoogleError }> {
  expect(response.status).toBe(429);
  const body = (await response.json()) as GoogleError;
  expect(body.error.status).toBe('RESOURCE_EXHAUSTED');
  const retryAfter = Number(response.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
  const quota = body.error.details.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.QuotaFailure');
  expect(quota).toEqual({
    '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
    violations: [{ subject: `limit ${rule}, ${bucket}`, description: expect.stringContaining(kind) as unknown }],
  });
  const retry = body.error.details.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.RetryInfo');
  expect(retry).toEqual({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${retryAfter}s` });
  return { retryAfter, body };
}

/** One sample of a metric from the exposition text (undefined when absent). */
export function metricValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
