/**
 * Bearer JWT → Principal, for a set of trusted issuers.
 *
 * A verified token is cached under a hash of itself until its `exp`, so the
 * common case (a pod reusing its projected token) costs one SHA-256 and a Map
 * lookup, synchronously. A miss reads the unverified `iss` only to pick the
 * issuer, checks the algorithm against the issuer's allow-list (asymmetric
 * only), checks the signature with node:crypto on the key for the token's
 * `kid` (signature.ts: synchronous, no WebCrypto thread-pool round trip), then
 * iss/aud/exp/nbf/iat with the configured skew (jwt.ts, as jose's jwtVerify
 * checks them). jose selects and imports the issuer's keys (key-set.ts). Concurrent
 * misses for the same token share one verification; deterministic failures
 * are remembered briefly so a replayed bad token costs a lookup, not a
 * signature check.
 *
 * Two optional revocation hooks: a `reviewer` (TokenReview mode) is asked
 * once per cache miss, and the entry then lives at most `reviewTtlMs`; an
 * `admit` check (UID revocation) runs on every request, hit or miss, and a
 * refusal evicts the entry. `evict()` drops entries whose principal matches.
 *
 * @module
 * @throws ProxyError ERR_AUTHN_INVALID_TOKEN, ERR_AUTHN_UNTRUSTED_ISSUER,
 *   ERR_IDENTITY_INVALID_CLAIMS (401); ERR_AUTHN_VERIFIER_UNAVAILABLE (503)
 */
import { errors as joseErrors, type JWTPayload } from 'jose';
import { ProxyError, unauthenticated } from '../errors.js';
import type { IssuerSettings } from '../config/load.js';
import { toGooglePrincipal, toKubernetesPrincipal } from './claims.js';
import { IssuerKeySet, NO_KID_PREFIX, type KeySetFetchResult } from './key-set.js';
import type { Principal } from './principal.js';
import { checkRegisteredClaims, parseCompactJwt } from './jwt.js';
import { checkJwsSignature, type SignatureFailure } from './signature.js';
import { TokenCache, tokenKey } from './token-cache.js';
import type { TokenReviewer } from './token-review.js';
import { failureDescription, type TraceSpan } from '../tracing/tracing.js';

export interface VerifierOptions {
  readonly issuers: readonly IssuerSettings[];
  readonly clockSkewSec: number;
  readonly cacheMaxEntries: number;
  readonly negativeTtlMs: number;
  readonly jwksRefreshIntervalMs: number;
  readonly jwksMinRefreshIntervalMs: number;
  readonly jwksFetchTimeoutMs: number;
  readonly onJwksFetch?: (issuerName: string, result: KeySetFetchResult, error?: unknown) => void;
  /** After a refresh dropped keys: how many cached tokens they had signed were evicted. */
  readonly onRetiredKeys?: (issuerName: string, removedKeys: number, evictedTokens: number) => void;
  readonly now?: () => number;
  /**
   * TokenReview mode: every Kubernetes token not in the cache is also
   * reviewed by the API server; the outcome is cached with the token for at
   * most `reviewTtlMs` (never past `exp`).
   */
  readonly reviewer?: TokenReviewer;
  readonly reviewTtlMs?: number;
  /**
   * A check every request passes, cached or not (UID revocation): a refusal
   * evicts the token from the cache and is remembered like a bad token.
   */
  readonly admit?: (principal: Principal) => ProxyError | undefined;
}

/** Tokens above this size are refused outright (Envoy caps at 4 KiB; projected tokens are ~1 KiB). */
export const MAX_TOKEN_BYTES = 8192;
const NEGATIVE_CACHE_MAX = 10_000;
/** The signing-key name of a token whose header has no `kid`. */
const NO_KID = '';

interface TrustedIssuer {
  readonly settings: IssuerSettings;
  readonly keys: IssuerKeySet;
}

export interface VerifierStats {
  hits: number;
  misses: number;
  /** Verifications started (signature and claims): misses not answered by the bad-token memory or a concurrent one. */
  verifications: number;
}

export class TokenVerifier {
  readonly #issuers = new Map<string, TrustedIssuer>();
  readonly #cache: TokenCache<Principal>;
  readonly #negative: TokenCache<ProxyError>;
  readonly #inflight = new Map<string, Promise<Principal>>();
  /** Which issuer key signed each cached principal (weak: it goes with the cache entry). */
  readonly #signedBy = new WeakMap<Principal, { readonly issuer: string; readonly key: string }>();
  readonly #options: VerifierOptions;
  readonly #now: () => number;
  readonly stats: VerifierStats = { hits: 0, misses: 0, verifications: 0 };
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: VerifierOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#cache = new TokenCache(options.cacheMaxEntries);
    this.#negative = new TokenCache(options.negativeTtlMs > 0 ? NEGATIVE_CACHE_MAX : 0);
    for (const settings of options.issuers) {
      const keySetOptions = {
        issuerName: settings.name,
        issuer: settings.issuer,
        jwksUri: settings.jwksUri,
        refreshIntervalMs: options.jwksRefreshIntervalMs,
        minRefreshIntervalMs: options.jwksMinRefreshIntervalMs,
        fetchTimeoutMs: options.jwksFetchTimeoutMs,
        now: this.#now,
        ...(options.onJwksFetch ? { onFetch: options.onJwksFetch } : {}),
        onKeysRemoved: (removed: ReadonlySet<string>) => this.#evictRetired(settings.issuer, removed),
        ...(settings.ca === undefined ? {} : { ca: settings.ca }),
      };
      this.#issuers.set(settings.issuer, { settings, keys: new IssuerKeySet(keySetOptions) });
    }
  }

  async start(): Promise<void> {
    await Promise.all([...this.#issuers.values()].map((i) => i.keys.start()));
    this.#sweeper = setInterval(() => this.#cache.sweep(this.#now()), 60_000);
    this.#sweeper.unref();
  }

  stop(): void {
    for (const issuer of this.#issuers.values()) issuer.keys.stop();
    if (this.#sweeper) clearInterval(this.#sweeper);
  }

  /** Per issuer: whether its keys are loaded. */
  keyStatus(): Array<{ issuer: string; ready: boolean; ageMs: number | undefined; keyIds: readonly string[] }> {
    return [...this.#issuers.values()].map((i) => ({
      issuer: i.settings.name,
      ready: i.keys.ready,
      ageMs: i.keys.ageMs,
      keyIds: i.keys.keyIds,
    }));
  }

  get cacheSize(): number {
    return this.#cache.size;
  }

  /** Tokens remembered as bad (bounded, for the memory figures). */
  get negativeCacheSize(): number {
    return this.#negative.size;
  }

  /**
   * The cached principal for a token, or undefined. Synchronous on purpose: a
   * hit must not pay for a promise.
   */
  cached(token: string): Principal | undefined {
    const key = tokenKey(token);
    const principal = this.#cache.get(key, this.#now());
    if (principal === undefined) return undefined;
    if (this.#options.admit !== undefined && !this.#admitted(key, principal)) return undefined;
    this.stats.hits++;
    return principal;
  }

  /**
   * Drops every cached token whose principal matches (a deleted service
   * account or pod). Returns how many were dropped.
   */
  evict(predicate: (principal: Principal) => boolean): number {
    return this.#cache.deleteWhere(predicate);
  }

  /** Drops cached tokens signed by keys the issuer no longer publishes. */
  #evictRetired(issuer: string, removed: ReadonlySet<string>): void {
    const anyWithoutKid = [...removed].some((id) => id.startsWith(NO_KID_PREFIX));
    const evicted = this.#cache.deleteWhere((principal) => {
      const signer = this.#signedBy.get(principal);
      if (signer === undefined || signer.issuer !== issuer) return false;
      // Which key verified a token without `kid` is not recorded: any removed key without one retires them all.
      return signer.key === NO_KID ? anyWithoutKid : removed.has(signer.key);
    });
    const name = this.#issuers.get(issuer)?.settings.name ?? issuer;
    this.#options.onRetiredKeys?.(name, removed.size, evicted);
  }

  /** Runs the admit check on a cache hit; a refusal evicts and is remembered so `verify` rejects at once. */
  #admitted(key: string, principal: Principal): boolean {
    const refusal = this.#options.admit?.(principal);
    if (refusal === undefined) return true;
    this.#cache.delete(key);
    if (refusal.httpStatus === 401) this.#negative.set(key, remembered(refusal), this.#now() + this.#options.negativeTtlMs);
    return false;
  }

  /**
   * Full verification (with cache, singleflight and negative cache). `span`,
   * when tracing: the TokenReview call becomes its child (for the request
   * that started the verification; concurrent ones share its outcome).
   */
  verify(token: string, span?: TraceSpan): Promise<Principal> {
    const key = tokenKey(token);
    const now = this.#now();
    const hit = this.#cache.get(key, now);
    if (hit !== undefined) {
      if (this.#options.admit === undefined || this.#admitted(key, hit)) {
        this.stats.hits++;
        return Promise.resolve(hit);
      }
    }
    this.stats.misses++;
    const known = this.#negative.get(key, now);
    if (known !== undefined) return Promise.reject(known);
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      this.stats.verifications++;
      pending = this.#verifyUncached(token, key, span).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  async #verifyUncached(token: string, key: string, span: TraceSpan | undefined): Promise<Principal> {
    try {
      const principal = await this.#verifySignatureAndClaims(token);
      const refusal = this.#options.admit?.(principal);
      if (refusal !== undefined) throw refusal;
      let expiresAt = principal.expiresAt;
      const { reviewer } = this.#options;
      if (reviewer !== undefined && principal.kind === 'kubernetes') {
        const issuer = [...this.#issuers.values()].find((i) => i.settings.name === principal.issuer);
        const reviewSpan = span?.child('kvp.authn.token_review', 'client', { 'kvp.issuer': principal.issuer });
        try {
          await reviewer.review(token, issuer?.settings.audiences ?? [], principal);
        } catch (error) {
          reviewSpan?.fail(failureDescription(error));
          throw error;
        } finally {
          reviewSpan?.end();
        }
        // The review vouches for now, not for the token's whole life: review again after the TTL.
        expiresAt = Math.min(expiresAt, this.#now() + (this.#options.reviewTtlMs ?? 0));
      }
      this.#cache.set(key, principal, expiresAt);
      return principal;
    } catch (error) {
      const refusal = toRefusal(error);
      // Remember only failures that a retry cannot fix; an unknown kid or an
      // unreachable issuer may be fine a moment later.
      if (refusal.httpStatus === 401 && refusal.reason !== 'unknown-signing-key') {
        this.#negative.set(key, remembered(refusal), this.#now() + this.#options.negativeTtlMs);
      }
      throw refusal;
    }
  }

  async #verifySignatureAndClaims(token: string): Promise<Principal> {
    if (token.length > MAX_TOKEN_BYTES) {
      throw unauthenticated('ERR_AUTHN_INVALID_TOKEN', 'The token is too large.', { reason: 'token-too-large' });
    }
    const { header, claims: payload } = parseCompactJwt(token);
    const trusted = typeof payload.iss === 'string' ? this.#issuers.get(payload.iss) : undefined;
    if (!trusted) {
      throw unauthenticated('ERR_AUTHN_UNTRUSTED_ISSUER', 'The token issuer is not trusted by this proxy.', { reason: 'untrusted-issuer' });
    }
    const { settings } = trusted;
    const alg = typeof header.alg === 'string' ? header.alg : undefined;
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    if (alg === undefined || !settings.algorithms.includes(alg)) {
      throw unauthenticated('ERR_AUTHN_INVALID_TOKEN', `The token algorithm ${JSON.stringify(header.alg ?? null)} is not accepted.`, {
        reason: 'algorithm-not-allowed',
      });
    }
    // RFC 7515 §4.1.11: an extension this verifier does not implement must make the token invalid.
    if (header.crit !== undefined) {
      throw unauthenticated('ERR_AUTHN_INVALID_TOKEN', 'The token is not a valid JWT.', { reason: 'malformed-token' });
    }
    const key = await trusted.keys.verificationKey({ ...header, alg });
    const failure = checkJwsSignature(token, alg, key);
    if (failure !== undefined) throw signatureRefusal(failure);
    const nowSec = Math.floor(this.#now() / 1000);
    checkRegisteredClaims(payload, {
      issuer: settings.issuer,
      audiences: settings.audiences,
      clockSkewSec: this.#options.clockSkewSec,
      nowSec,
    });
    const verified = payload as JWTPayload;
    const iat = verified.iat as number;
    const exp = verified.exp as number;
    if (iat > nowSec + this.#options.clockSkewSec) {
      throw unauthenticated('ERR_AUTHN_INVALID_TOKEN', 'The token was issued in the future.', { reason: 'issued-in-future' });
    }
    if (exp - iat > settings.maxTokenLifetimeSec) {
      throw unauthenticated('ERR_AUTHN_INVALID_TOKEN', 'The token lifetime exceeds the accepted maximum.', { reason: 'lifetime-too-long' });
    }
    const principal =
      settings.type === 'kubernetes' ? toKubernetesPrincipal(verified, settings.name) : toGooglePrincipal(verified, settings.name);
    this.#signedBy.set(principal, { issuer: settings.issuer, key: kid ?? NO_KID });
    return principal;
  }
}

function signatureRefusal(failure: SignatureFailure): ProxyError {
  switch (failure) {
    case 'malformed':
      return unauthenticated('ERR_AUTHN_INVALID_TOKEN', 'The token is not a valid JWT.', { reason: 'malformed-token' });
    case 'unsupported-algorithm':
      return unauthenticated('ERR_AUTHN_INVALID_TOKEN', 'The token algorithm is not accepted.', { reason: 'algorithm-not-allowed' });
    case 'key-mismatch':
    case 'bad-signature':
      return unauthenticated('ERR_AUTHN_INVALID_TOKEN', 'The token signature is invalid.', { reason: 'bad-signature' });
  }
}

/** Shared refusals for the bad-token memory, one per distinct refusal (bounded). */
const REMEMBERED = new Map<string, ProxyError>();
const REMEMBERED_MAX = 256;

/**
 * The refusal as the bad-token memory keeps it: without its cause (a jose
 * error with its own stack) and shared between tokens that failed the same
 * way, so 10,000 remembered bad tokens cost their keys, not 10,000 errors
 * with stack traces (measured: ~2 KB each; scripts/abuse-memory.mjs).
 */
function remembered(refusal: ProxyError): ProxyError {
  const id = `${refusal.code}\u0000${refusal.reason}\u0000${refusal.message}`;
  let shared = REMEMBERED.get(id);
  if (shared === undefined) {
    shared = new ProxyError(refusal.code, refusal.message, {
      reason: refusal.reason,
      ...(refusal.headers === undefined ? {} : { headers: refusal.headers }),
      ...(refusal.metadata === undefined ? {} : { metadata: refusal.metadata }),
    });
    // Messages may quote a caller's value (an algorithm name): past the bound, copies are not kept shared.
    if (REMEMBERED.size < REMEMBERED_MAX) REMEMBERED.set(id, shared);
  }
  return shared;
}

/** Key-selection (jose) and fetch failures → the caller-facing refusal. */
function toRefusal(error: unknown): ProxyError {
  if (error instanceof ProxyError) return error;
  const invalid = (message: string, reason: string) => unauthenticated('ERR_AUTHN_INVALID_TOKEN', message, { reason, cause: error });
  // Registered claims are checked by jwt.ts (ProxyErrors above); jose now only selects and imports keys.
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return invalid('The token algorithm is not accepted.', 'algorithm-not-allowed');
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return invalid('The token signature is invalid.', 'bad-signature');
  if (error instanceof joseErrors.JWKSNoMatchingKey) return invalid('The token was signed with an unknown key.', 'unknown-signing-key');
  if (error instanceof joseErrors.JWKSMultipleMatchingKeys) return invalid('The token key id is ambiguous.', 'ambiguous-signing-key');
  if (error instanceof joseErrors.JOSEError) return invalid('The token is not a valid JWT.', 'malformed-token');
  return new ProxyError('ERR_AUTHN_VERIFIER_UNAVAILABLE', 'token verification unavailable', {
    cause: error,
    reason: 'verifier-unavailable',
  });
}
