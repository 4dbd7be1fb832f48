import { describe, expect, it } from 'vitest';
import { niceMax, renderTimeline } from './chart.js';
import { html } from './html.js';

describe('timeline chart', () => {
  it('rounds the axis up to 1, 2 or 5 × 10^n', () => {
    expect([0, 1, 3, 7, 10, 11, 240, 5001].map(niceMax)).toEqual([1, 1, 5, 10, 10, 20, 500, 10000]);
  });

  it('stacks denied on allowed, scaled to the axis, with a text alternative per bar', () => {
    const hour = 3_600_000;
    const from = Date.parse('2026-12-04T00:00:00Z');
    const svg = renderTimeline(
      [
        { from, to: from + hour, allow: 6, deny: 4 },
        { from: from + hour, to: from + 2 * hour, allow: 0, deny: 0 },
      ],
      'title-id',
    ).text;
    expect(svg).toContain('role="img" aria-labelledby="title-id"');
    // Axis max 10, plot height 180: 6 allowed are 108 high from the baseline at 192, 4 denied 72 above them.
    expect(svg).toContain('<rect class="bar-allow" x="');
    expect(svg).toMatch(/class="bar-allow" x="[\d.]+" y="84\.0" width="[\d.]+" height="108\.0"/);
    expect(svg).toMatch(/class="bar-deny" x="[\d.]+" y="12\.0" width="[\d.]+" height="72\.0"/);
    expect(svg).toContain('<title>00:00–01:00 UTC: 6 allowed, 4 denied</title>');
    // An empty interval draws no bar.
    expect(svg.match(/<rect/g)).toHaveLength(2);
    expect(svg).not.toContain('style=');
  });
});

describe('html', () => {
  it('escapes every interpolated value unless it is already html', () => {
    const name = '<script>alert("x")</script>';
    expect(html`<p title="${name}">${name}${html`<b>ok</b>`}${[1, html`<i>2</i>`]}${undefined}</p>`.text).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;">' +
        '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;<b>ok</b>1<i>2</i></p>',
    );
  });
});
