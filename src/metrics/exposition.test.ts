import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createExposition, wantsOpenMetrics } from './exposition.js';

describe('wantsOpenMetrics', () => {
  it.each([
    [undefined, false],
    ['text/plain;version=0.0.4', false],
    ['application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5', true],
    ['text/plain;q=1, application/openmetrics-text; q=0.2', true],
    ['application/openmetrics-text;q=0', false],
    ['*/*', false],
  ])('%s → %s', (accept, expected) => {
    expect(wantsOpenMetrics(accept)).toBe(expected);
  });
});

describe('createExposition', () => {
  function setup() {
    const registry = new Registry();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
    const counter = new Counter({ name: 'x_requests_total', help: 'h', registers: [registry] });
    const histogram = new Histogram({ name: 'x_seconds', help: 'h', buckets: [1], registers: [registry], enableExemplars: true });
    counter.inc();
    histogram.observe({ value: 0.5, labels: {}, exemplarLabels: { trace_id: 'a'.repeat(32) } } as never);
    return { registry, render: createExposition(registry) };
  }

  it(
    'serves OpenMetrics with exemplars when asked, and Prometheus text with the counter names intact otherwise, even ' + 'interleaved',
    async () => {
      const { render } = setup();
      const [om, text, om2, text2] = await Promise.all([render(true), render(false), render(true), render(false)]);
      for (const r of [om, om2]) {
        expect(r.contentType).toBe(Registry.OPENMETRICS_CONTENT_TYPE);
        expect(r.body).toContain('# TYPE x_requests counter');
        expect(r.body).toContain('x_requests_total 1');
        expect(r.body).toMatch(/x_seconds_bucket\{le="1"\} 1 # \{trace_id="a{32}"\} 0\.5 /);
        expect(r.body.endsWith('# EOF\n')).toBe(true);
      }
      for (const r of [text, text2]) {
        expect(r.contentType).toBe(Registry.PROMETHEUS_CONTENT_TYPE);
        expect(r.body).toContain('# TYPE x_requests_total counter');
        expect(r.body).not.toContain('trace_id');
        expect(r.body).not.toContain('# EOF');
      }
    },
  );
});
