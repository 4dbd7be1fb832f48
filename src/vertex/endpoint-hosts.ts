/**
 * Dedicated and private endpoints: an endpoint with a dedicated public
 * endpoint answers its prediction calls only on its own host
 * (`Endpoint.dedicatedEndpointDns`, e.g.
 * `1234.us-central1-123456789012.prediction.vertexai.goog`); the shared
 * regional host refuses them. A Private Service Connect endpoint is reached
 * at an address only the platform team knows.
 *
 * So, for the prediction calls of an endpoint (same path, other origin):
 * 1. `vertex.endpointHosts` pins an endpoint to an origin explicitly;
 * 2. else, with `vertex.endpointLookup.enabled`, the endpoint is looked up
 *    (EndpointService.GetEndpoint with the proxy's own identity, through the
 *    official client in REST mode) and its dedicated host used when it has
 *    one. Lookups are cached for `ttl`, refreshed in the background after 80%
 *    of it, bounded in number, de-duplicated while in flight; a call that
 *    finds no fresh answer waits for at most `timeout`, and a failed or slow
 *    lookup sends it to the regional host (which is where it would go without
 *    this feature: a lookup never widens what a caller may reach).
 *
 * https://cloud.google.com/vertex-ai/docs/predictions/choose-endpoint-type
 *
 * @module
 */
import type { v1 } from '@google-cloud/aiplatform';
import type { Operation } from './operation-types.js';

type EndpointServiceClient = InstanceType<typeof v1.EndpointServiceClient>;

/** What a lookup learns: the endpoint's dedicated DNS name, or undefined for a shared-host endpoint. */
export type EndpointLookup = (endpoint: string, location: string) => Promise<{ readonly dedicatedEndpointDns: string | undefined }>;

export type LookupResult = 'dedicated' | 'shared' | 'error';

export interface EndpointHostsOptions {
  /** `vertex.endpointHosts`: resource name → origin. */
  readonly pinned: ReadonlyMap<string, string>;
  readonly lookup?: EndpointLookup | undefined;
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly timeoutMs: number;
  /** `https:` in production; the scheme of `vertex.upstream` (so a plain-HTTP test upstream gets plain-HTTP dedicated hosts). */
  readonly protocol: 'http:' | 'https:';
  readonly onLookup?: (result: LookupResult, error?: unknown) => void;
  /**
   * Which looked-up hosts may receive calls (and with them the proxy's Google
   * token). Against Google: only `*.prediction.vertexai.goog`; default: any DNS name.
   */
  readonly allowedHost?: (host: string) => boolean;
  readonly now?: () => number;
}

/** Google's dedicated endpoint domain. */
export const DEDICATED_ENDPOINT_DOMAIN = '.prediction.vertexai.goog';

export interface EndpointHosts {
  /**
   * The origin for this operation when its endpoint has a host of its own;
   * undefined: the regional host. A promise only while a lookup is awaited.
   */
  originFor(operation: Operation): string | undefined | Promise<string | undefined>;
}

/** Operations that follow an endpoint to its dedicated host: the data plane, checked as `endpoints.predict` or `.explain`. */
export function isEndpointDataPlane(operation: Operation): boolean {
  const permission = operation.spec.permission;
  return (
    (permission === 'aiplatform.endpoints.predict' || permission === 'aiplatform.endpoints.explain') && ENDPOINT.test(operation.resource)
  );
}

const ENDPOINT = /^projects\/[^/]+\/locations\/[^/]+\/endpoints\/[^/]+$/;
/** A DNS name with an optional port: what may become the host of an origin. */
const DNS_NAME = /^(?=.{1,253}(?::|$))[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?$/;

/** The origin of a `dedicatedEndpointDns` value (Google documents it with and without `https://`); undefined when it is not a host name. */
export function dedicatedOrigin(dns: string, protocol: 'http:' | 'https:'): string | undefined {
  const host = dns
    .replace(/^https:\/\//, '')
    .replace(/\/$/, '')
    .toLowerCase();
  return DNS_NAME.test(host) ? `${protocol}//${host}` : undefined;
}

interface Entry {
  /** Origin, or undefined for "the regional host". */
  origin: string | undefined;
  fetchedAt: number;
  refreshing: boolean;
}

export function createEndpointHosts(options: EndpointHostsOptions): EndpointHosts {
  const now = options.now ?? Date.now;
  const cache = new Map<string, Entry>();
  const inflight = new Map<string, Promise<string | undefined>>();
  const { lookup } = options;

  function remember(resource: string, origin: string | undefined): void {
    cache.delete(resource);
    cache.set(resource, { origin, fetchedAt: now(), refreshing: false });
    // Map keeps insertion order: the first key is the oldest entry.
    while (cache.size > options.maxEntries) cache.delete(cache.keys().next().value as string);
  }

  function fetchOrigin(resource: string, location: string): Promise<string | undefined> {
    let pending = inflight.get(resource);
    if (pending !== undefined) return pending;
    pending = (lookup as EndpointLookup)(resource, location).then(
      ({ dedicatedEndpointDns }) => {
        inflight.delete(resource);
        const origin =
          dedicatedEndpointDns === undefined || dedicatedEndpointDns === ''
            ? undefined
            : dedicatedOrigin(dedicatedEndpointDns, options.protocol);
        if (origin !== undefined && options.allowedHost !== undefined && !options.allowedHost(new URL(origin).hostname)) {
          // Never send the proxy's token to a host outside the expected domain: the regional host refuses, loudly.
          options.onLookup?.('error', new Error(`dedicatedEndpointDns of ${resource} is outside the allowed domain`));
          remember(resource, undefined);
          return undefined;
        }
        options.onLookup?.(origin === undefined ? 'shared' : 'dedicated');
        remember(resource, origin);
        return origin;
      },
      (error: unknown) => {
        inflight.delete(resource);
        options.onLookup?.('error', error);
        // The last answer, if any, stays in use until its entry is replaced; a miss goes to the regional host.
        const entry = cache.get(resource);
        if (entry !== undefined) entry.refreshing = false;
        return entry?.origin;
      },
    );
    inflight.set(resource, pending);
    return pending;
  }

  return {
    originFor(operation) {
      if (!isEndpointDataPlane(operation)) return undefined;
      const pinned = options.pinned.get(operation.resource);
      if (pinned !== undefined) return pinned;
      if (lookup === undefined || operation.location === null) return undefined;
      const entry = cache.get(operation.resource);
      const age = entry === undefined ? Infinity : now() - entry.fetchedAt;
      if (entry !== undefined && age < options.ttlMs) {
        if (age >= options.ttlMs * 0.8 && !entry.refreshing) {
          entry.refreshing = true;
          void fetchOrigin(operation.resource, operation.location);
        }
        return entry.origin;
      }
      const answer = fetchOrigin(operation.resource, operation.location);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<string | undefined>((resolve) => {
        timer = setTimeout(() => resolve(entry?.origin), options.timeoutMs);
        timer.unref();
      });
      return Promise.race([answer, timeout]).finally(() => clearTimeout(timer));
    },
  };
}

/** A lookup backed by a client library that takes a while to load. */
export interface LoadedEndpointLookup {
  readonly lookup: EndpointLookup;
  /** Starts loading the library and building the clients (seconds on a busy machine). */
  start(): void;
  /** Whether the clients are built (readiness waits for it, so the first calls do not wait on it). */
  ready(): boolean;
}

/**
 * EndpointService.GetEndpoint through `@google-cloud/aiplatform` in REST mode,
 * one client per served location's upstream origin, with the proxy's own
 * Application Default Credentials. The library is imported only here, and
 * only when lookups are enabled.
 */
export function aiplatformEndpointLookup(
  locations: readonly string[],
  upstreamFor: (location: string) => string | undefined,
): LoadedEndpointLookup {
  let clients: Promise<Map<string, EndpointServiceClient>> | undefined;
  let loaded = false;
  const load = (): Promise<Map<string, EndpointServiceClient>> => {
    clients ??= import('@google-cloud/aiplatform').then(({ v1 }) => {
      const byOrigin = new Map<string, EndpointServiceClient>();
      for (const location of locations) {
        const origin = upstreamFor(location);
        if (origin === undefined || byOrigin.has(origin)) continue;
        const url = new URL(origin);
        byOrigin.set(
          origin,
          new v1.EndpointServiceClient({
            apiEndpoint: url.hostname,
            port: url.port === '' ? (url.protocol === 'http:' ? 80 : 443) : Number(url.port),
            protocol: url.protocol === 'http:' ? 'http' : 'https',
            fallback: true,
          }),
        );
      }
      loaded = true;
      return byOrigin;
    });
    return clients;
  };
  return {
    start() {
      load().catch(() => {
        clients = undefined;
      });
    },
    ready: () => loaded,
    async lookup(endpoint, location) {
      const origin = upstreamFor(location);
      const client = origin === undefined ? undefined : (await load()).get(origin);
      if (client === undefined) throw new Error(`location ${location} is not served`);
      const [answer] = await client.getEndpoint({ name: endpoint });
      return { dedicatedEndpointDns: answer.dedicatedEndpointDns ?? undefined };
    },
  };
}
