/**
 * The byte-moving scenarios (`body-1mib`, `sse-200`) side by side with nginx
 * doing the same work: the same requests, through nginx's `proxy_pass`
 * (buffering off both ways) to the same Vertex AI stand-in, so a ratio of
 * CPU per request compares moving the same bytes. Their targets (issue 17,
 * "bytes at the speed of bytes") are checked here too.
 *
 * Each also has a tuned-passthrough twin (the project's own forwarding on
 * fastify, no checks: bench/passthrough.ts `--mode tuned`) moving the same
 * bytes: the Node.js floor the full path is compared with (`×tuned`), since
 * much of what a Node.js process spends per byte (socket reads, buffers, the
 * garbage collector) is there with no check at all.
 *
 * @module
 */
import type { ScenarioSummary, TargetCheck } from './report.js';

/** The byte-moving scenarios, each with the id of its nginx twin. */
export const NGINX_TWINS: ReadonlyMap<string, string> = new Map([
  ['body-1mib', 'nginx-body-1mib'],
  ['sse-200', 'nginx-sse-200'],
]);

/**
 * Streams per second of the SSE scenarios' fixed-rate twins (`<id>-at50`):
 * closed loop, a stream's time to first byte is mostly the time it waits
 * behind the other connections' streams (it follows CPU per stream); at a
 * fixed rate well below every target's capacity it is what the target adds
 * to the first byte.
 */
export const SSE_FIXED_RATE = 50;

/** The SSE scenarios that also run at {@link SSE_FIXED_RATE} (open loop), each as `<id>-at50`. */
export const SSE_FIXED_RATE_OF: readonly string[] = ['sse-200', 'nginx-sse-200', 'passthrough-tuned-sse-200'];

/** The id of a scenario's fixed-rate twin. */
export function fixedRateId(id: string): string {
  return `${id}-at${SSE_FIXED_RATE}`;
}

/**
 * The twin (in `twins`) a scenario compares with: a `--baseline` build's
 * `<id>@base` compares with the same twin as `<id>`, a fixed-rate `<id>-at50`
 * with the twin's own fixed-rate run.
 */
export function twinOf(twins: ReadonlyMap<string, string>, id: string): string | undefined {
  const base = id.replace(/@base$/, '');
  const suffix = `-at${SSE_FIXED_RATE}`;
  if (base.endsWith(suffix)) {
    const twin = twins.get(base.slice(0, -suffix.length));
    return twin === undefined ? undefined : fixedRateId(twin);
  }
  return twins.get(base);
}

/** The byte-moving scenarios, each with the id of its tuned-passthrough twin. */
export const PASSTHROUGH_TWINS: ReadonlyMap<string, string> = new Map([
  ['body-1mib', 'passthrough-tuned-body-1mib'],
  ['sse-200', 'passthrough-tuned-sse-200'],
]);

interface TwinnableScenario {
  readonly id: string;
  readonly title: string;
  readonly load: unknown;
}

/**
 * nginx's twins of the byte-moving scenarios: the `nginx` scenario's target,
 * each twin with the load of the scenario it mirrors. Empty when a scenario is missing.
 */
export function nginxTwins<S extends TwinnableScenario>(nginx: S | undefined, byId: ReadonlyMap<string, S>): S[] {
  return twinsOf(nginx, byId, NGINX_TWINS, 'nginx proxy_pass');
}

/** The tuned passthrough's twins of the byte-moving scenarios (see the module comment). */
export function passthroughTwins<S extends TwinnableScenario>(tuned: S | undefined, byId: ReadonlyMap<string, S>): S[] {
  return twinsOf(tuned, byId, PASSTHROUGH_TWINS, 'Tuned passthrough (no checks)');
}

function twinsOf<S extends TwinnableScenario>(
  target: S | undefined,
  byId: ReadonlyMap<string, S>,
  ids: ReadonlyMap<string, string>,
  name: string,
): S[] {
  if (target === undefined) return [];
  const twins: S[] = [];
  for (const [id, twin] of ids) {
    const mirrored = byId.get(id);
    if (mirrored === undefined) continue;
    twins.push({ ...target, id: twin, title: `${name}, the same work as ${id}`, load: mirrored.load });
  }
  return twins;
}

const round2 = (v: number) => Math.round(v * 100) / 100;

/** Issue 17's byte-moving targets, each against its nginx twin (null: not measured in this run). */
export function bytesTargets(get: (id: string) => ScenarioSummary | undefined): TargetCheck[] {
  const out: TargetCheck[] = [];
  const add = (target: string, limit: string, value: number | undefined, ok: (v: number) => boolean, format: (v: number) => string) =>
    out.push({
      target,
      limit,
      measured: value === undefined || !Number.isFinite(value) ? 'not measured' : format(value),
      met: value === undefined || !Number.isFinite(value) ? null : ok(value),
      issue: 17,
    });
  const times = (v: number) => `${String(round2(v))}×`;
  const cpuRatio = (id: string) => {
    const ours = get(id);
    const nginx = get(NGINX_TWINS.get(id) as string);
    return ours && nginx && nginx.cpuUsPerRequest > 0 ? ours.cpuUsPerRequest / nginx.cpuUsPerRequest : undefined;
  };
  add('1 MiB request echoed back (body-1mib) ÷ nginx, CPU per request', '≤ 3×', cpuRatio('body-1mib'), (v) => v <= 3, times);
  add('SSE stream of 200 events (sse-200) ÷ nginx, CPU per stream', '≤ 3×', cpuRatio('sse-200'), (v) => v <= 3, times);
  const ttfbGap = (ours: string, theirs: string) => {
    const a = get(ours);
    const b = get(theirs);
    return a?.ttfbUs && b?.ttfbUs ? (a.ttfbUs.p50 - b.ttfbUs.p50) / 1000 : undefined;
  };
  add(
    'SSE time to first byte p50 − nginx p50 (sse-200)',
    '≤ 1 ms',
    ttfbGap('sse-200', 'nginx-sse-200'),
    (v) => v <= 1,
    (v) => `${String(round2(v))} ms`,
  );
  add(
    `SSE time to first byte p50 − nginx p50, open loop at ${SSE_FIXED_RATE} streams/s (${fixedRateId('sse-200')})`,
    '≤ 1 ms',
    ttfbGap(fixedRateId('sse-200'), fixedRateId('nginx-sse-200')),
    (v) => v <= 1,
    (v) => `${String(round2(v))} ms`,
  );
  return out;
}
