/**
 * Requests over time, split by decision: a stacked bar chart drawn as SVG on
 * the server. No chart library and no script: the page stays within its
 * Content-Security-Policy, and the same numbers are in a table beside it
 * for screen readers. Colours come from the stylesheet (classes), since the
 * policy forbids inline styles. Pure.
 *
 * @module
 */
import { html, type SafeHtml } from './html.js';

export interface TimeBucket {
  /** Epoch ms, inclusive. */
  readonly from: number;
  /** Epoch ms, exclusive. */
  readonly to: number;
  readonly allow: number;
  readonly deny: number;
}

const WIDTH = 720;
const HEIGHT = 220;
const LEFT = 48;
const BOTTOM = 28;
const TOP = 12;

/** A "nice" axis maximum (1, 2 or 5 × 10^n) at or above `value`. */
export function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function label(ms: number, spanMs: number): string {
  const iso = new Date(ms).toISOString();
  return spanMs > 2 * 86_400_000 ? iso.slice(5, 10) : iso.slice(11, 16);
}

export function renderTimeline(buckets: readonly TimeBucket[], titleId: string): SafeHtml {
  const plotWidth = WIDTH - LEFT - 8;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const max = niceMax(Math.max(0, ...buckets.map((b) => b.allow + b.deny)));
  const slot = buckets.length === 0 ? plotWidth : plotWidth / buckets.length;
  const barWidth = Math.max(1, slot * 0.8);
  const span = buckets.length === 0 ? 0 : (buckets[buckets.length - 1] as TimeBucket).to - (buckets[0] as TimeBucket).from;
  const y = (count: number) => TOP + plotHeight - (count / max) * plotHeight;
  /* eslint-disable max-len -- the SVG markup in the html`` templates below is what the console serves, kept as written */
  const bars = buckets.map((b, i) => {
    const x = (LEFT + i * slot + (slot - barWidth) / 2).toFixed(1);
    const allowTop = y(b.allow);
    const denyTop = y(b.allow + b.deny);
    return html`<g><title>${label(b.from, span)}–${label(b.to, span)} UTC: ${b.allow} allowed, ${b.deny} denied</title>${
      b.allow > 0
        ? html`<rect class="bar-allow" x="${x}" y="${allowTop.toFixed(1)}" width="${barWidth.toFixed(1)}" height="${(TOP + plotHeight - allowTop).toFixed(1)}"/>`
        : ''
    }${b.deny > 0 ? html`<rect class="bar-deny" x="${x}" y="${denyTop.toFixed(1)}" width="${barWidth.toFixed(1)}" height="${(allowTop - denyTop).toFixed(1)}"/>` : ''}</g>`;
  });
  const ticks = [0, max / 2, max].map(
    (v) =>
      html`<line class="grid" x1="${LEFT}" x2="${WIDTH - 8}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/><text class="axis" x="${LEFT - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v}</text>`,
  );
  const every = Math.max(1, Math.ceil(buckets.length / 6));
  const xLabels = buckets.map((b, i) =>
    i % every === 0
      ? html`<text class="axis" x="${(LEFT + i * slot + slot / 2).toFixed(1)}" y="${HEIGHT - 8}" text-anchor="middle">${label(b.from, span)}</text>`
      : '',
  );
  return html`<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-labelledby="${titleId}" xmlns="http://www.w3.org/2000/svg">${ticks}${bars}${xLabels}</svg>`;
  /* eslint-enable max-len */
}
