import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../audit/record.js';
import { createUsageMetrics } from './metrics.js';

const record = (namespace: string, model: string | undefined, tokens?: AuditRecord['tokens'], status = 200) =>
  ({ namespace, serviceAccount: 'bot', model, tokens, status }) as unknown as AuditRecord;

async function lines(registry: Registry, prefix: string): Promise<string[]> {
  return (await registry.metrics())
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .sort();
}

describe('usage metrics', () => {
  it('count tokens by model and type and model requests by code, without identity labels by default', async () => {
    const registry = new Registry();
    const metrics = createUsageMetrics(registry, { metricLabels: [], maxSeries: 500 });
    metrics.observe(record('ml', 'google/gemini-2.5-flash', { prompt: 4, candidates: 11, total: 15 }));
    metrics.observe(record('web', 'google/gemini-2.5-flash', { prompt: 1, total: 1 }));
    metrics.observe(record('web', 'google/gemini-2.5-flash', undefined, 429));
    metrics.observe(record('web', undefined, undefined));
    expect(await lines(registry, 'kube_vertex_proxy_model_')).toEqual([
      'kube_vertex_proxy_model_requests_total{model="google/gemini-2.5-flash",code="200"} 2',
      'kube_vertex_proxy_model_requests_total{model="google/gemini-2.5-flash",code="429"} 1',
      'kube_vertex_proxy_model_tokens_total{model="google/gemini-2.5-flash",type="candidates"} 11',
      'kube_vertex_proxy_model_tokens_total{model="google/gemini-2.5-flash",type="prompt"} 5',
      'kube_vertex_proxy_model_tokens_total{model="google/gemini-2.5-flash",type="total"} 16',
    ]);
  });

  it('with identity labels, folds identities beyond maxSeries into "other" (then the model too) and counts the folds', async () => {
    const registry = new Registry();
    const metrics = createUsageMetrics(registry, { metricLabels: ['namespace'], maxSeries: 2 });
    for (const ns of ['a', 'b', 'c', 'd']) metrics.observe(record(ns, 'm1', undefined));
    metrics.observe(record('e', 'm2', undefined));
    metrics.observe(record('f', 'm3', undefined));
    expect(await lines(registry, 'kube_vertex_proxy_model_requests_total')).toEqual([
      'kube_vertex_proxy_model_requests_total{model="m1",code="200",namespace="a"} 1',
      'kube_vertex_proxy_model_requests_total{model="m1",code="200",namespace="b"} 1',
      'kube_vertex_proxy_model_requests_total{model="m1",code="200",namespace="other"} 2',
      'kube_vertex_proxy_model_requests_total{model="m2",code="200",namespace="other"} 1',
      'kube_vertex_proxy_model_requests_total{model="other",code="200",namespace="other"} 1',
    ]);
    expect(await lines(registry, 'kube_vertex_proxy_usage_series_folded_total')).toEqual(['kube_vertex_proxy_usage_series_folded_total 4']);
  });
});
