/**
 * One issuer's signing keys: discovered (OIDC) or configured JWKS URL, fetched
 * at start, refreshed in the background, refetched on an unknown `kid` at most
 * once per `minRefreshIntervalMs`, and kept as last-good when the issuer is
 * unreachable.
 *
 * jose's `createRemoteJWKSet` is not used because when its cache goes stale and
 * the issuer is down it rejects every token (the Istio "fake JWKS" failure); here
 * a failed refresh never drops keys that verified tokens a moment ago.
 *
 * @module
 */
import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose';
import { Agent, fetch as fetchWithAgent } from 'undici';
import { ProxyError } from '../errors.js';

export type KeySetFetchResult = 'success' | 'error';

export interface KeySetOptions {
  readonly issuerName: string;
  readonly issuer: string;
  readonly jwksUri: string | undefined;
  readonly refreshIntervalMs: number;
  readonly minRefreshIntervalMs: number;
  readonly fetchTimeoutMs: number;
  readonly onFetch?: (issuerName: string, result: KeySetFetchResult, error?: unknown) => void;
  /**
   * After a successful fetch that no longer lists keys the previous set had:
   * their ids (a key without `kid` is named by {@link keyIdentity}).
   */
  readonly onKeysRemoved?: (removed: ReadonlySet<string>) => void;
  readonly now?: () => number;
  /**
   * PEM CAs trusted for this issuer's fetches only (`issuers[].caFile`), in
   * place of the system CAs: a self-managed cluster serves discovery and JWKS
   * from its API server under a private CA.
   */
  readonly ca?: string;
}

export const NO_KID_PREFIX = 'nokid:';

/** How a key is named for retirement: its `kid`, or for a key without one, its public material. */
export function keyIdentity(key: Pick<JWK, 'kid' | 'kty' | 'n' | 'x' | 'y'>): string {
  return typeof key.kid === 'string' ? key.kid : `${NO_KID_PREFIX}${key.kty ?? ''}:${key.n ?? ''}${key.x ?? ''}${key.y ?? ''}`;
}

const MAX_DOCUMENT_BYTES = 512 * 1024;
/** Only asymmetric key types are ever put in a key set; an `oct` key in a JWKS is dropped. */
const ASYMMETRIC_KTY = new Set(['RSA', 'EC', 'OKP']);

export class IssuerKeySet {
  readonly #options: KeySetOptions;
  readonly #now: () => number;
  #resolver: ReturnType<typeof createLocalJWKSet> | undefined;
  #kids = new Set<string>();
  #identities = new Set<string>();
  #jwksUri: string | undefined;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  /** `#lastAttemptAt` of the last fetch that failed. */
  #lastFailedAt: number | undefined;
  #lastSuccessAt: number | undefined;
  #inflight: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #nextRefreshMs: number;
  #stopped = false;
  readonly #agent: Agent | undefined;

  constructor(options: KeySetOptions) {
    this.#options = options;
    this.#agent = options.ca === undefined ? undefined : new Agent({ connect: { ca: options.ca } });
    this.#now = options.now ?? Date.now;
    this.#jwksUri = options.jwksUri;
    this.#nextRefreshMs = options.refreshIntervalMs;
  }

  /** True once keys have been loaded at least once. */
  get ready(): boolean {
    return this.#resolver !== undefined;
  }

  /** Age of the key set in ms, or undefined before the first successful fetch. */
  get ageMs(): number | undefined {
    return this.#lastSuccessAt === undefined ? undefined : this.#now() - this.#lastSuccessAt;
  }

  get keyIds(): readonly string[] {
    return [...this.#kids];
  }

  /** Fetches once (errors are reported, not thrown) and starts background refresh. */
  async start(): Promise<void> {
    await this.refresh().catch(() => undefined);
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    void this.#agent?.close();
  }

  /** The jose key resolver: known kid → key; unknown kid → one rate-limited refetch, then refusal. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (!this.#resolver) {
      await this.#refreshIfAllowed();
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the await above may set it
      if (!this.#resolver) {
        throw new ProxyError('ERR_AUTHN_VERIFIER_UNAVAILABLE', 'UNAVAILABLE', 'issuer keys unavailable', {
          reason: 'issuer-keys-unavailable',
        });
      }
    }
    try {
      return await this.#resolver(header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
      // A new kid usually means the issuer rotated its keys: look once, but not
      // more often than minRefreshInterval, so random kids cannot drive a fetch storm.
      const refetched = await this.#refreshIfAllowed();
      // The issuer's latest answer was a failure (this refetch, one already in flight, or one within
      // minRefreshInterval, as the background refresh makes likely): the key cannot be checked. Not the
      // caller's fault, so not 401 — fail closed with 503. Whether this request got to ask does not matter.
      if (this.#lastFailedAt === this.#lastAttemptAt) {
        throw new ProxyError('ERR_AUTHN_VERIFIER_UNAVAILABLE', 'UNAVAILABLE', 'issuer keys unavailable', {
          reason: 'issuer-keys-unavailable',
          cause: error,
        });
      }
      if (!refetched) throw error;
      return this.#resolver(header, token);
    }
  };

  async #refreshIfAllowed(): Promise<boolean> {
    if (this.#inflight) {
      await this.#inflight.catch(() => undefined);
      return true;
    }
    if (this.#now() - this.#lastAttemptAt < this.#options.minRefreshIntervalMs) return false;
    await this.refresh().catch(() => undefined);
    return true;
  }

  /** Fetches the key set now (de-duplicated). Keeps the previous keys on any failure. */
  refresh(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    this.#lastAttemptAt = this.#now();
    this.#inflight = this.#fetch()
      .then(
        () => this.#options.onFetch?.(this.#options.issuerName, 'success'),
        (error: unknown) => {
          this.#lastFailedAt = this.#lastAttemptAt;
          this.#options.onFetch?.(this.#options.issuerName, 'error', error);
          throw error;
        },
      )
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  async #fetch(): Promise<void> {
    if (this.#jwksUri === undefined) {
      const discoveryUrl = `${this.#options.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const { body } = await this.#getJson(discoveryUrl);
      const document = body as { issuer?: unknown; jwks_uri?: unknown };
      // OIDC Discovery 1.0 §4.3: the document must name exactly the issuer we asked.
      if (document.issuer !== this.#options.issuer) {
        throw new Error(`discovery document issuer ${JSON.stringify(document.issuer)} does not match the configured issuer`);
      }
      if (typeof document.jwks_uri !== 'string' || !/^https?:\/\//.test(document.jwks_uri)) {
        throw new Error('discovery document has no usable jwks_uri');
      }
      this.#jwksUri = document.jwks_uri;
    }
    const { body, maxAgeMs } = await this.#getJson(this.#jwksUri);
    const keys = (body as { keys?: unknown }).keys;
    if (!Array.isArray(keys)) throw new Error('JWKS has no keys array');
    const usable = (keys as Array<JWK | null>).filter(
      (k): k is JWK => k !== null && typeof k === 'object' && ASYMMETRIC_KTY.has(k.kty ?? '') && (k.use === undefined || k.use === 'sig'),
    );
    if (usable.length === 0) throw new Error('JWKS has no usable asymmetric signing keys');
    const jwks: JSONWebKeySet = { keys: usable };
    this.#resolver = createLocalJWKSet(jwks);
    this.#kids = new Set(usable.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
    const identities = new Set(usable.map(keyIdentity));
    const removed = new Set([...this.#identities].filter((id) => !identities.has(id)));
    this.#identities = identities;
    // A key the issuer withdrew may have been compromised: tokens it signed must not live on in a cache.
    if (removed.size > 0) this.#options.onKeysRemoved?.(removed);
    this.#lastSuccessAt = this.#now();
    this.#nextRefreshMs = clamp(
      maxAgeMs ?? this.#options.refreshIntervalMs,
      this.#options.minRefreshIntervalMs,
      this.#options.refreshIntervalMs,
    );
  }

  async #getJson(url: string): Promise<{ body: unknown; maxAgeMs: number | undefined }> {
    const init = {
      headers: { accept: 'application/json, application/jwk-set+json' },
      redirect: 'error',
      signal: AbortSignal.timeout(this.#options.fetchTimeoutMs),
    } as const;
    const response = this.#agent ? await fetchWithAgent(url, { ...init, dispatcher: this.#agent }) : await fetch(url, init);
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`GET ${url}: HTTP ${response.status}`);
    }
    const length = Number(response.headers.get('content-length') ?? '0');
    if (length > MAX_DOCUMENT_BYTES) {
      await response.body?.cancel();
      throw new Error(`GET ${url}: document too large`);
    }
    const text = await response.text();
    if (text.length > MAX_DOCUMENT_BYTES) throw new Error(`GET ${url}: document too large`);
    const maxAge = /max-age=(\d+)/.exec(response.headers.get('cache-control') ?? '');
    return { body: JSON.parse(text) as unknown, maxAgeMs: maxAge ? Number(maxAge[1]) * 1000 : undefined };
  }

  #schedule(): void {
    if (this.#stopped) return;
    // Retry sooner while the issuer is failing and we have nothing; otherwise follow the key set's max-age.
    const delay = this.#resolver ? this.#nextRefreshMs : this.#options.minRefreshIntervalMs;
    this.#timer = setTimeout(() => {
      this.refresh()
        .catch(() => undefined)
        .finally(() => this.#schedule());
    }, delay);
    this.#timer.unref();
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}
