/**
 * The tracing config plus the standard OpenTelemetry environment variables
 * → what the SDK is built with. Pure. The config file wins where it says
 * something; the environment fills the gaps; then the defaults.
 *
 * Variables read here (the SDK package reads none itself):
 * `OTEL_SDK_DISABLED`, `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`,
 * `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`,
 * `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_EXPORT_TIMEOUT`
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
 * The OTLP exporter reads `OTEL_EXPORTER_OTLP_*` and the resource detector
 * `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` themselves.
 *
 * @module
 */
import type { TracingConfig } from '../config/schema.js';

export const DEFAULT_SAMPLE_RATIO = 0.01;

export interface SamplerSettings {
  /** Follow a caller's sampled flag (parent-based), or decide every trace here. */
  readonly parentBased: boolean;
  /** Share of root traces sampled, 0..1. */
  readonly ratio: number;
}

export interface TracingSettings {
  /** Full OTLP/HTTP traces URL, or undefined: the exporter's own `OTEL_EXPORTER_OTLP_*` resolution. */
  readonly url: string | undefined;
  readonly sampler: SamplerSettings;
  /** From the config file, applied over the environment's. */
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly batch: {
    readonly scheduledDelayMillis?: number;
    readonly maxQueueSize?: number;
    readonly maxExportBatchSize?: number;
    readonly exportTimeoutMillis?: number;
  };
}

/** Undefined when tracing is off. */
export function resolveTracingSettings(config: TracingConfig, env: NodeJS.ProcessEnv): TracingSettings | undefined {
  if (!config.enabled || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  const batch: { -readonly [K in keyof TracingSettings['batch']]: number } = {};
  const set = (key: keyof TracingSettings['batch'], name: string, min: number) => {
    const value = positiveInteger(env[name], min);
    if (value !== undefined) batch[key] = value;
  };
  set('scheduledDelayMillis', 'OTEL_BSP_SCHEDULE_DELAY', 0);
  set('maxQueueSize', 'OTEL_BSP_MAX_QUEUE_SIZE', 1);
  set('maxExportBatchSize', 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1);
  set('exportTimeoutMillis', 'OTEL_BSP_EXPORT_TIMEOUT', 1);
  if (batch.maxExportBatchSize !== undefined && batch.maxQueueSize !== undefined && batch.maxExportBatchSize > batch.maxQueueSize) {
    batch.maxExportBatchSize = batch.maxQueueSize;
  }
  return {
    url: config.endpoint === undefined ? undefined : `${config.endpoint.replace(/\/+$/, '')}/v1/traces`,
    sampler: config.sampleRatio !== undefined ? { parentBased: true, ratio: config.sampleRatio } : samplerFromEnv(env),
    resourceAttributes: config.resourceAttributes,
    batch,
  };
}

/** `OTEL_TRACES_SAMPLER` (+ `_ARG`); unknown values fall back to the default, as the specification asks. */
export function samplerFromEnv(env: NodeJS.ProcessEnv): SamplerSettings {
  const name = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase();
  const arg = env.OTEL_TRACES_SAMPLER_ARG === undefined ? Number.NaN : Number(env.OTEL_TRACES_SAMPLER_ARG);
  const ratio = Number.isFinite(arg) && arg >= 0 && arg <= 1 ? arg : 1;
  switch (name) {
    case 'always_on':
      return { parentBased: false, ratio: 1 };
    case 'always_off':
      return { parentBased: false, ratio: 0 };
    case 'traceidratio':
      return { parentBased: false, ratio };
    case 'parentbased_always_on':
      return { parentBased: true, ratio: 1 };
    case 'parentbased_always_off':
      return { parentBased: true, ratio: 0 };
    case 'parentbased_traceidratio':
      return { parentBased: true, ratio };
    default:
      return { parentBased: true, ratio: DEFAULT_SAMPLE_RATIO };
  }
}

function positiveInteger(text: string | undefined, min: number): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isInteger(value) && value >= min ? value : undefined;
}
