/**
 * Request tracing, as the rest of the proxy sees it: a small interface with
 * no OpenTelemetry types in it. When `tracing.enabled` is false (the default)
 * the OpenTelemetry SDK is never imported, no request gets a span, and every
 * step's tracing code is behind one `request.kvp.span !== undefined` check.
 *
 * In: the `tracing` config and the process environment. Out: a
 * {@link Tracing} whose `startRequest` gives each request its server span.
 *
 * @module
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import type { TracingConfig } from '../config/schema.js';
import { resolveTracingSettings } from './settings.js';

export type SpanAttributeValue = string | number | boolean;
export type SpanAttributes = Readonly<Record<string, SpanAttributeValue | undefined>>;

/** One span. Ending it twice is harmless. */
export interface TraceSpan {
  /** 32 lower-case hex digits. */
  readonly traceId: string;
  /** 16 lower-case hex digits. */
  readonly spanId: string;
  /** Whether this trace is recorded and exported. */
  readonly sampled: boolean;
  setAttributes(attributes: SpanAttributes): void;
  /** Marks the span as failed (status ERROR), with a short description (never a token or body). */
  fail(description: string): void;
  /** A child: `internal` for work inside the proxy, `client` for a call out of it. */
  child(name: string, kind: 'internal' | 'client', attributes?: SpanAttributes): TraceSpan;
  /** Writes W3C `traceparent` (and `tracestate`) naming this span as the parent of an outgoing request. */
  inject(headers: OutgoingHttpHeaders): void;
  /** Renames the span (the server span learns its operation only after classification). */
  rename(name: string): void;
  end(): void;
}

export interface Tracing {
  readonly enabled: boolean;
  /** The server span of one request; the caller's `traceparent`, when valid, is its parent. */
  startRequest(headers: IncomingHttpHeaders, name: string): TraceSpan;
  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void>;
}

export const TRACING_OFF: Tracing = Object.freeze({
  enabled: false,
  startRequest(): TraceSpan {
    throw new TypeError('tracing is off: startRequest must not be called');
  },
  shutdown: () => Promise.resolve(),
});

/**
 * Tracing for a config: {@link TRACING_OFF} unless enabled (and not turned
 * off by `OTEL_SDK_DISABLED=true`); otherwise the OpenTelemetry SDK, loaded
 * only now.
 */
export async function createTracing(config: TracingConfig, env: NodeJS.ProcessEnv, logger: Logger): Promise<Tracing> {
  const settings = resolveTracingSettings(config, env);
  if (settings === undefined) return TRACING_OFF;
  const { createOtelTracing } = await import('./otel.js');
  return createOtelTracing(settings, logger);
}

/** A refusal's stable code (or the error's name): never its message, which may quote input. */
export function failureDescription(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string') return name;
  }
  return 'error';
}
