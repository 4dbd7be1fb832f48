/**
 * The `callbacks` config section → semantic checks and runtime settings.
 * Called by `config/load.ts`: problems are appended to the one list of config
 * problems (with their paths), and the settings are derived once, units
 * converted. Pure.
 *
 * @module
 */
import { resolve } from 'node:path';
import type { CallbacksConfig, Config } from '../config/schema.js';
import { parseDuration, parseSize } from '../config/units.js';
import { compileCallers } from './callers.js';
import { checkCallbackPath } from './paths.js';
import { RouteTable, type CallbackRoute } from './routes.js';

export interface CallbackSettings {
  readonly assertion: {
    readonly header: string;
    readonly keyFile: string | undefined;
    readonly issuer: string;
    readonly lifetimeSec: number;
  };
  readonly routes: RouteTable;
}

type AddProblem = (path: (string | number)[], message: string) => void;

/** Paths other route families of the data port own; a callback prefix may not sit on, under or above them. */
export const RESERVED_PREFIXES = ['/v1', '/v1beta1', '/ui', '/audit', '/.well-known', '/healthz', '/readyz', '/metrics'] as const;
/** Request headers a backend must be able to trust; the assertion header cannot be one a client could confuse with them. */
const RESERVED_HEADERS = new Set(['x-kvp-caller-email', 'x-kvp-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);
const MAX_LIFETIME_MS = 10 * 60_000;

function segmentsOverlap(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

/** Parses an upstream URL; returns a problem message or its parts. */
function parseUpstream(text: string): { origin: string; basePath: string } | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'must be an http(s) URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http(s) URL';
  if (url.username !== '' || url.password !== '') return 'must not carry credentials';
  if (url.search !== '' || url.hash !== '' || text.includes('?') || text.includes('#')) return 'must not have a query or fragment';
  const basePath = url.pathname.replace(/\/+$/, '');
  if (basePath !== '') {
    try {
      checkCallbackPath(basePath);
    } catch (error) {
      return `has an unusable path: ${(error as Error).message}`;
    }
  }
  return { origin: url.origin, basePath };
}

/** Semantic checks on `callbacks` (the schema has checked shapes). */
export function checkCallbacks(config: Config, add: AddProblem): void {
  const callbacks = config.callbacks;
  const googleAudiences = new Set(config.issuers.filter((i) => i.type === 'google').flatMap((i) => i.audiences));
  if (callbacks.routes.length > 0 && !config.issuers.some((i) => i.type === 'google')) {
    add(['callbacks', 'routes'], 'callback routes need an issuer of type "google" (callers authenticate with Google ID tokens)');
  }
  if (RESERVED_HEADERS.has(callbacks.assertion.header))
    add(['callbacks', 'assertion', 'header'], `"${callbacks.assertion.header}" is set by the proxy for another purpose`);
  const lifetimeMs = parseDuration(callbacks.assertion.lifetime);
  if (lifetimeMs < 1000 || lifetimeMs > MAX_LIFETIME_MS) add(['callbacks', 'assertion', 'lifetime'], 'must be between 1s and 10m');

  const seen = new Map<string, number>();
  const audiences = new Map<string, number>();
  callbacks.routes.forEach((route, i) => {
    const at = (...rest: (string | number)[]) => ['callbacks', 'routes', i, ...rest];
    const earlier = seen.get(route.prefix);
    if (earlier !== undefined) add(at('prefix'), `duplicate prefix "${route.prefix}" (also routes[${earlier}])`);
    else seen.set(route.prefix, i);
    const reserved = RESERVED_PREFIXES.find((r) => segmentsOverlap(route.prefix, r));
    if (reserved !== undefined) add(at('prefix'), `collides with ${reserved}/, which another part of the proxy serves`);
    try {
      checkCallbackPath(route.prefix);
    } catch (error) {
      add(at('prefix'), (error as Error).message);
    }
    if (route.rewritePrefix !== undefined && route.rewritePrefix !== '/') {
      try {
        checkCallbackPath(route.rewritePrefix);
      } catch (error) {
        add(at('rewritePrefix'), (error as Error).message);
      }
    }
    const upstream = parseUpstream(route.upstream);
    if (typeof upstream === 'string') add(at('upstream'), upstream);
    for (const problem of compileCallers(route.callers).problems) add(at('callers', problem.index), problem.message);
    route.tokenAudiences?.forEach((audience, j) => {
      if (!googleAudiences.has(audience))
        add(at('tokenAudiences', j), `"${audience}" is not among the audiences of a google issuer, so no token could carry it`);
    });
    if (new Set(route.methods).size !== route.methods.length) add(at('methods'), 'lists a method twice');
    if (route.audience === undefined) {
      const audience = defaultAudience(route.upstream, route.prefix);
      const other = audiences.get(audience);
      if (other !== undefined)
        add(at('prefix'), `its default assertion audience "${audience}" is also routes[${other}]'s; set \`audience\` on one of them`);
      else audiences.set(audience, i);
    }
  });
}

/** The assertion `aud` of a route that names none: its upstream followed by its prefix. */
export function defaultAudience(upstream: string, prefix: string): string {
  return `${upstream.replace(/\/+$/, '')}${prefix}`;
}

/**
 * Runtime settings; call only after {@link checkCallbacks} found no problem.
 * A relative `keyFile` is resolved against `baseDir` (the config file's directory).
 */
export function deriveCallbackSettings(callbacks: CallbacksConfig, baseDir: string): CallbackSettings {
  const routes: CallbackRoute[] = callbacks.routes.map((r) => {
    const upstream = parseUpstream(r.upstream);
    if (typeof upstream === 'string') throw new TypeError(`callbacks: unchecked upstream ${r.upstream}`);
    const configured = r.upstream.replace(/\/+$/, '');
    return {
      prefix: r.prefix,
      upstream: configured,
      upstreamOrigin: upstream.origin,
      upstreamBasePath: upstream.basePath,
      rewritePrefix: r.rewritePrefix ?? r.prefix,
      methods: new Set(r.methods),
      callers: compileCallers(r.callers).matcher,
      callerEntries: [...r.callers],
      bodyLimitBytes: parseSize(r.bodyLimit),
      timeoutMs: parseDuration(r.timeout),
      // Each route its own audience: an assertion for one route is no pass for another route on the same backend.
      audience: r.audience ?? defaultAudience(configured, r.prefix),
      tokenAudiences: r.tokenAudiences === undefined ? undefined : new Set(r.tokenAudiences),
    };
  });
  return {
    assertion: {
      header: callbacks.assertion.header,
      keyFile: callbacks.assertion.keyFile === undefined ? undefined : resolve(baseDir, callbacks.assertion.keyFile),
      issuer: callbacks.assertion.issuer,
      lifetimeSec: Math.floor(parseDuration(callbacks.assertion.lifetime) / 1000),
    },
    routes: new RouteTable(routes),
  };
}
