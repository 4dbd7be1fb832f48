/**
 * The callback route table: a raw request (method, URL) → the route it
 * belongs to and the exact URL it is forwarded to. Longest prefix wins; a
 * prefix matches whole segments only (`/cb/train` never matches
 * `/cb/training`). Shared by the data path and `can-i --as-google`, so both
 * refuse the same things. Pure.
 *
 * Matching is on the decoded path (what a backend sees after it decodes),
 * and the forwarded path is the raw path that decodes to it: the paths
 * checks refuse every escape that would change segment structure or spell
 * a prefix character differently, so the two agree. A path that matches a
 * longer route when letter case is ignored is refused rather than sent to
 * the shorter route (a case-insensitive backend would read it as the longer one).
 *
 * @module
 * @throws ProxyError ERR_REQUEST_INVALID_PATH (400), ERR_REQUEST_UNKNOWN_ROUTE (404),
 *   ERR_REQUEST_METHOD_NOT_ALLOWED (405)
 */
import { ProxyError } from '../errors.js';
import type { CallerMatcher } from './callers.js';
import { checkCallbackPath } from './paths.js';

export interface CallbackRoute {
  readonly prefix: string;
  /** The upstream as configured (no trailing "/"). */
  readonly upstream: string;
  /** `http(s)://host:port` of the upstream. */
  readonly upstreamOrigin: string;
  /** The upstream's base path, `''` or `/base`. */
  readonly upstreamBasePath: string;
  /** What replaces `prefix` in the forwarded path (`/` removes it). */
  readonly rewritePrefix: string;
  readonly methods: ReadonlySet<string>;
  readonly callers: CallerMatcher;
  readonly callerEntries: readonly string[];
  readonly bodyLimitBytes: number;
  readonly timeoutMs: number;
  /** `aud` of the identity assertion. */
  readonly audience: string;
  /** `aud` values a caller's token must carry here; undefined: any the issuer accepts. */
  readonly tokenAudiences: ReadonlySet<string> | undefined;
}

export interface RouteMatch {
  readonly route: CallbackRoute;
  /** Absolute URL the request goes to, without the query (the caller's query is appended as sent). */
  readonly target: string;
}

export class RouteTable {
  /** Longest prefix first, so the first hit is the longest match. */
  readonly #routes: readonly CallbackRoute[];
  /** The same routes with lower-cased prefixes, same order. */
  readonly #folded: readonly string[];

  constructor(routes: readonly CallbackRoute[]) {
    this.#routes = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);
    this.#folded = this.#routes.map((r) => r.prefix.toLowerCase());
  }

  get routes(): readonly CallbackRoute[] {
    return this.#routes;
  }

  get size(): number {
    return this.#routes.length;
  }

  /** The route a raw path (query allowed) falls under, or undefined. Does not check the path. */
  lookup(rawUrl: string): CallbackRoute | undefined {
    const path = pathOf(rawUrl);
    return this.#routes.find((r) => path === r.prefix || path.startsWith(`${r.prefix}/`));
  }

  /**
   * Checks the path, finds the route, checks the method.
   * `onRoute` sees the route even when the method check then refuses (for the audit record).
   */
  match(method: string, rawUrl: string, onRoute?: (route: CallbackRoute) => void): RouteMatch {
    const path = pathOf(rawUrl);
    checkCallbackPath(path);
    // checkCallbackPath guarantees the escapes left decode to valid UTF-8 and to no "/", "%", "." or unreserved character.
    const decoded = path.includes('%') ? decodeURIComponent(path) : path;
    const route = this.lookup(decoded);
    if (route === undefined) {
      throw new ProxyError('ERR_REQUEST_UNKNOWN_ROUTE', 'No callback route serves this path.', { reason: 'unknown-route' });
    }
    // The raw path must carry the matched prefix literally: what is forwarded is what was matched.
    if (!(path === route.prefix || path.startsWith(`${route.prefix}/`)))
      throw ambiguous(`the path does not spell the prefix of callback route ${route.prefix} literally`);
    const folded = decoded.toLowerCase();
    const index = this.#folded.findIndex((p) => folded === p || folded.startsWith(`${p}/`));
    const caseless = this.#routes[index];
    if (caseless !== undefined && caseless !== route) {
      throw ambiguous(`it differs only in letter case from callback route ${caseless.prefix}; send the route's exact spelling`);
    }
    onRoute?.(route);
    if (!route.methods.has(method)) {
      const allow = [...route.methods].join(', ');
      throw new ProxyError(
        'ERR_REQUEST_METHOD_NOT_ALLOWED',
        `Method ${method} is not allowed on callback route ${route.prefix} (allowed: ${allow}).`,
        {
          reason: 'method-not-allowed',
          headers: { allow },
        },
      );
    }
    return { route, target: `${route.upstreamOrigin}${forwardedPath(route, path.slice(route.prefix.length))}` };
  }
}

function ambiguous(why: string): ProxyError {
  return new ProxyError('ERR_REQUEST_INVALID_PATH', `The request path is ambiguous: ${why}.`, {
    reason: 'ambiguous-path',
  });
}

function pathOf(rawUrl: string): string {
  const q = rawUrl.indexOf('?');
  return q === -1 ? rawUrl : rawUrl.slice(0, q);
}

/** base path + rewritten prefix + the rest of the request path (`''` or `/…`). */
export function forwardedPath(route: Pick<CallbackRoute, 'upstreamBasePath' | 'rewritePrefix'>, rest: string): string {
  const prefix = route.rewritePrefix === '/' ? '' : route.rewritePrefix;
  const path = `${route.upstreamBasePath}${prefix}${rest}`;
  return path === '' ? '/' : path;
}
