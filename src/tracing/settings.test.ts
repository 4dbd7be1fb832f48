import { describe, expect, it } from 'vitest';
import type { TracingConfig } from '../config/schema.js';
import { DEFAULT_SAMPLE_RATIO, resolveTracingSettings, samplerFromEnv } from './settings.js';

const on = (extra: Partial<TracingConfig> = {}): TracingConfig => ({ enabled: true, resourceAttributes: {}, ...extra });

describe('resolveTracingSettings', () => {
  it('is off unless enabled, and OTEL_SDK_DISABLED=true turns it off', () => {
    expect(resolveTracingSettings({ enabled: false, resourceAttributes: {} }, {})).toBeUndefined();
    expect(resolveTracingSettings(on(), { OTEL_SDK_DISABLED: 'TRUE' })).toBeUndefined();
    expect(resolveTracingSettings(on(), { OTEL_SDK_DISABLED: 'false' })).toBeDefined();
  });

  it("appends /v1/traces to the configured endpoint; without one, leaves the URL to the exporter's OTEL_EXPORTER_OTLP_* resolution", () => {
    expect(resolveTracingSettings(on({ endpoint: 'http://collector:4318/' }), {})?.url).toBe('http://collector:4318/v1/traces');
    expect(resolveTracingSettings(on(), { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318' })?.url).toBeUndefined();
  });

  it('takes sampleRatio from the file over OTEL_TRACES_SAMPLER, parent-based', () => {
    expect(resolveTracingSettings(on({ sampleRatio: 0.3 }), { OTEL_TRACES_SAMPLER: 'always_on' })?.sampler).toEqual({
      parentBased: true,
      ratio: 0.3,
    });
    expect(resolveTracingSettings(on(), { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' })?.sampler).toEqual({
      parentBased: false,
      ratio: 0.5,
    });
  });

  it('reads the batch processor variables, ignoring invalid ones and keeping the batch within the queue', () => {
    const settings = resolveTracingSettings(on(), {
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OTEL_BSP_MAX_QUEUE_SIZE: '100',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '500',
      OTEL_BSP_EXPORT_TIMEOUT: 'soon',
    });
    expect(settings?.batch).toEqual({ scheduledDelayMillis: 50, maxQueueSize: 100, maxExportBatchSize: 100 });
  });
});

describe('samplerFromEnv', () => {
  it.each([
    [undefined, undefined, { parentBased: true, ratio: DEFAULT_SAMPLE_RATIO }],
    ['always_on', undefined, { parentBased: false, ratio: 1 }],
    ['always_off', undefined, { parentBased: false, ratio: 0 }],
    ['parentbased_always_on', undefined, { parentBased: true, ratio: 1 }],
    ['parentbased_always_off', undefined, { parentBased: true, ratio: 0 }],
    ['parentbased_traceidratio', '0.25', { parentBased: true, ratio: 0.25 }],
    ['traceidratio', '7', { parentBased: false, ratio: 1 }],
    ['jaeger_remote', undefined, { parentBased: true, ratio: DEFAULT_SAMPLE_RATIO }],
  ])('%s (arg %s)', (name, arg, expected) => {
    const env: NodeJS.ProcessEnv = {};
    if (name !== undefined) env.OTEL_TRACES_SAMPLER = name;
    if (arg !== undefined) env.OTEL_TRACES_SAMPLER_ARG = arg;
    expect(samplerFromEnv(env)).toEqual(expected);
  });
});
