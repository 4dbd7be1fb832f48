/**
 * Just enough PromQL reading for the dashboard and alert checks: the metric
 * names an expression selects. Strings, label matchers, ranges and grouping
 * label lists are removed first; what is left that is an identifier not
 * followed by `(` and not a keyword is a metric name.
 */
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'inf',
  'nan',
]);

export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = match[0];
    const calledAsFunction = /^\s*\(/.test(stripped.slice((match.index ?? 0) + name.length));
    if (!calledAsFunction && !KEYWORDS.has(name.toLowerCase())) names.add(name);
  }
  return [...names].sort();
}

/** Every sample name a Prometheus text exposition can have, from its `# TYPE` lines (histograms and summaries expanded). */
export function exposedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name as string);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}
