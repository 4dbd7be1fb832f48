/**
 * The `/metrics` body: Prometheus text format by default, OpenMetrics when
 * the scraper's `Accept` asks for it (Prometheus does when exemplar storage
 * or native OpenMetrics scraping is on). Only OpenMetrics carries exemplars.
 *
 * prom-client renders the format of the registry's content type and, for
 * OpenMetrics, renames counters in place (`x_total` → `x`); each scrape
 * therefore borrows the metrics into a registry of the asked-for type,
 * restores their names afterwards, and scrapes run one at a time so a
 * Prometheus-format scrape never sees the renamed counters.
 *
 * @module
 */
import { Registry } from 'prom-client';

export interface Exposition {
  readonly contentType: string;
  readonly body: string;
}

/** Whether an `Accept` header asks for OpenMetrics (at any non-zero quality). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    if (type !== 'application/openmetrics-text') continue;
    const q = params.find((p) => p.startsWith('q='));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}

export function createExposition(registry: Registry): (openMetrics: boolean) => Promise<Exposition> {
  let queue: Promise<unknown> = Promise.resolve();
  const render = async (openMetrics: boolean): Promise<Exposition> => {
    const contentType = openMetrics ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE;
    // A registry of the asked-for type, holding the very same metric objects.
    const view = new Registry<typeof contentType>();
    view.setContentType(contentType);
    const metrics = registry.getMetricsAsArray() as unknown as Array<{ name: string }>;
    const names = metrics.map((metric) => metric.name);
    for (const metric of metrics) view.registerMetric(metric as never);
    try {
      return { contentType, body: await view.metrics() };
    } finally {
      metrics.forEach((metric, i) => {
        metric.name = names[i] as string;
      });
    }
  };
  return (openMetrics) => {
    const next = queue.then(() => render(openMetrics));
    queue = next.catch(() => undefined);
    return next;
  };
}
