/**
 * {@link Tracing} on the OpenTelemetry SDK: spans batched and exported over
 * OTLP/HTTP, W3C Trace Context in and out. Imported only when tracing is on
 * (see tracing.ts), so a proxy without tracing never loads any of this.
 *
 * No global tracer provider, context manager or propagator is registered:
 * parents are passed explicitly (the request's span lives on
 * `request.kvp.span`), which costs no AsyncLocalStorage on the hot path and
 * leaves libraries' own instrumentation, if any, untouched.
 *
 * @module
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { setGlobalErrorHandler, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  defaultResource,
  detectResources,
  resourceAttributesEnvDetector,
  resourceFromAttributes,
  serviceNameEnvDetector,
} from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace';
import type { Logger } from 'pino';
import type { TracingSettings } from './settings.js';
import type { SpanAttributes, TraceSpan, Tracing } from './tracing.js';

const SERVICE_NAME = 'kube-vertex-proxy';
const EXPORT_ERROR_LOG_INTERVAL_MS = 60_000;
const SHUTDOWN_TIMEOUT_MS = 5_000;

const propagator = new W3CTraceContextPropagator();
const headerGetter = {
  keys: (carrier: IncomingHttpHeaders) => Object.keys(carrier),
  get: (carrier: IncomingHttpHeaders, key: string) => carrier[key],
};
const headerSetter = {
  set: (carrier: OutgoingHttpHeaders, key: string, value: string) => {
    carrier[key] = value;
  },
};

export function createOtelTracing(settings: TracingSettings, logger: Logger): Tracing {
  let lastExportError = 0;
  // The SDK reports failed exports here (it has no logger of its own); a collector outage must not flood the log.
  setGlobalErrorHandler((error) => {
    const now = Date.now();
    if (now - lastExportError < EXPORT_ERROR_LOG_INTERVAL_MS) return;
    lastExportError = now;
    logger.warn(
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- whatever the exporter rejected with; String() is the fallback
      { error: error instanceof Error ? error.message : String(error) },
      'trace export failed; spans are dropped until the collector answers',
    );
  });

  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': SERVICE_NAME }))
    .merge(detectResources({ detectors: [resourceAttributesEnvDetector, serviceNameEnvDetector] }))
    .merge(resourceFromAttributes({ ...settings.resourceAttributes }));
  const exporter = new OTLPTraceExporter(settings.url === undefined ? {} : { url: settings.url });
  const provider = new TracerProvider({
    resource,
    sampler: samplerOf(settings.sampler),
    spanProcessors: [new BatchSpanProcessor({ exporter, ...settings.batch })],
  });
  const tracer = provider.getTracer(SERVICE_NAME);
  logger.info(
    {
      endpoint: settings.url ?? 'from OTEL_EXPORTER_OTLP_* (default http://localhost:4318/v1/traces)',
      sampleRatio: settings.sampler.ratio,
      parentBased: settings.sampler.parentBased,
    },
    'OpenTelemetry tracing on',
  );

  return {
    enabled: true,
    startRequest(headers, name) {
      const parent = propagator.extract(ROOT_CONTEXT, headers, headerGetter);
      return new OtelSpan(tracer, tracer.startSpan(name, { kind: SpanKind.SERVER }, parent));
    },
    async shutdown() {
      // Bounded: a collector that does not answer must not hold the process past its termination grace period.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), SHUTDOWN_TIMEOUT_MS);
        timer.unref();
      });
      const done = provider.shutdown().then(
        () => 'done' as const,
        (error: unknown) => {
          logger.warn({ error: (error as Error).message }, 'trace exporter shutdown failed');
          return 'done' as const;
        },
      );
      if ((await Promise.race([done, late])) === 'late')
        logger.warn({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'trace export at shutdown timed out; buffered spans are dropped');
      clearTimeout(timer);
    },
  };
}

function samplerOf({ parentBased, ratio }: TracingSettings['sampler']): Sampler {
  const root = ratio >= 1 ? new AlwaysOnSampler() : ratio <= 0 ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio);
  return parentBased ? new ParentBasedSampler({ root }) : root;
}

class OtelSpan implements TraceSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  readonly #tracer: Tracer;
  readonly #span: Span;

  constructor(tracer: Tracer, span: Span) {
    this.#tracer = tracer;
    this.#span = span;
    const context = span.spanContext();
    this.traceId = context.traceId;
    this.spanId = context.spanId;
    this.sampled = span.isRecording();
  }

  setAttributes(attributes: SpanAttributes): void {
    if (this.sampled) this.#span.setAttributes(attributes);
  }

  fail(description: string): void {
    if (this.sampled) this.#span.setStatus({ code: SpanStatusCode.ERROR, message: description });
  }

  child(name: string, kind: 'internal' | 'client', attributes?: SpanAttributes): TraceSpan {
    // Nothing of an unsampled trace is recorded: its children would only be more ids. The request's own span
    // stands in (outgoing calls then name it as their parent, with the not-sampled flag).
    if (!this.sampled) return this;
    const context = trace.setSpan(ROOT_CONTEXT, this.#span);
    const span = this.#tracer.startSpan(
      name,
      { kind: kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL, ...(attributes ? { attributes: attributes } : {}) },
      context,
    );
    return new OtelSpan(this.#tracer, span);
  }

  inject(headers: OutgoingHttpHeaders): void {
    delete headers.tracestate;
    propagator.inject(trace.setSpan(ROOT_CONTEXT, this.#span), headers, headerSetter);
  }

  rename(name: string): void {
    if (this.sampled) this.#span.updateName(name);
  }

  end(): void {
    // An unsampled child is its parent (see `child`): ending it is the parent's business, and a no-op for the SDK anyway.
    if (this.sampled) this.#span.end();
  }
}
