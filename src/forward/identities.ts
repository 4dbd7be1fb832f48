/**
 * A Google identity per team (`vertex.identities`): which Google service
 * account a caller's requests go upstream as, and that account's access
 * token, obtained by impersonation (IAM Credentials `generateAccessToken`,
 * through google-auth-library's `Impersonated` client, with the proxy's own
 * Application Default Credentials as the source).
 *
 * One token per account (the accounts are a bounded list from the config),
 * shared by every request of every caller mapped to it, refreshed in the
 * background ahead of expiry. A request never waits for a refresh of a valid
 * token; it waits only for the first token of an account, or after the token
 * expired. When no token can be had the answer is `undefined` and the request
 * is refused with 503: a request is never sent as the proxy's own identity
 * instead of the team's.
 *
 * @module
 */
import { GoogleAuth, Impersonated, type AuthClient } from 'google-auth-library';
import type { VertexIdentityConfig } from '../config/schema.js';
import { compilePolicy, type CompiledPolicy } from '../policy/compile.js';
import type { PolicyAction, PolicySubject } from '../policy/decision.js';

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
/** A token this close to expiry is not handed out: it could expire in flight. */
const SAFETY_MARGIN_MS = 10_000;
const MIN_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;
const TOKEN_LIFETIME_SEC = 3600;

export interface TeamIdentities {
  /** The account the subject's requests go out as; undefined: the proxy's own identity. Synchronous, allocation-free on a match. */
  serviceAccountFor(subject: PolicySubject): string | undefined;
  /**
   * `Bearer …` for the account: a string when a valid token is held, else a
   * promise of the first or next one (undefined when it cannot be had).
   */
  authorization(serviceAccount: string): string | undefined | Promise<string | undefined>;
  /** Fetches every account's first token in the background. */
  start(): void;
  stop(): void;
  describe(): Array<{ serviceAccount: string; ready: boolean; expiresInSec: number | undefined; lastError: string | undefined }>;
}

export interface TeamIdentitiesOptions {
  readonly identities: readonly VertexIdentityConfig[];
  /** IAM Credentials base URL (`https://iamcredentials.googleapis.com`). */
  readonly endpoint: string;
  /** Refresh this long before expiry. Default 5 min. */
  readonly refreshMarginMs?: number;
  /** The source credential; default: Application Default Credentials. */
  readonly sourceClient?: () => Promise<AuthClient>;
  readonly onRefresh?: (serviceAccount: string, result: 'success' | 'error', error?: unknown) => void;
  readonly now?: () => number;
}

/** The question a subject-only match asks of the policy evaluator: no operation at all. */
const ANY_ACTION: PolicyAction = { operationId: '', permission: 'kvp.identity', groups: [], resource: '', project: null, location: null };

/**
 * The identity list as a policy of allow rules (one per entry, in order): the
 * very same subject matching as policy rules, and "first match wins" is the
 * evaluator's "first matching allow rule in config order".
 */
export function compileIdentityMatcher(identities: readonly VertexIdentityConfig[]): (subject: PolicySubject) => string | undefined {
  if (identities.length === 0) return () => undefined;
  const rules = identities.map((identity, i) => ({
    id: `identity-${i}`,
    effect: 'allow' as const,
    subjects: identity.subjects,
    permissions: ['*'],
  }));
  const policy: CompiledPolicy = compilePolicy(rules, { knownPermissions: new Set(), projects: [], locations: [] }).policy;
  const byRule = new Map(identities.map((identity, i) => [`identity-${i}`, identity.serviceAccount]));
  return (subject) => {
    const decision = policy.evaluate(subject, ANY_ACTION);
    return decision.ruleId === null ? undefined : byRule.get(decision.ruleId);
  };
}

interface AccountToken {
  readonly serviceAccount: string;
  client: Impersonated | undefined;
  header: string | undefined;
  expiresAt: number;
  inflight: Promise<void> | undefined;
  /** After a failure, requests are refused at once until then (no storm of IAM calls). */
  failedUntil: number;
  failures: number;
  lastError: string | undefined;
  timer: NodeJS.Timeout | undefined;
}

export function createTeamIdentities(options: TeamIdentitiesOptions): TeamIdentities {
  const now = options.now ?? Date.now;
  const refreshMarginMs = options.refreshMarginMs ?? 5 * 60_000;
  const match = compileIdentityMatcher(options.identities);
  let source: Promise<AuthClient> | undefined;
  const sourceClient = (): Promise<AuthClient> => {
    source ??= options.sourceClient?.() ?? new GoogleAuth({ scopes: [CLOUD_PLATFORM] }).getClient();
    // A failed ADC lookup is retried on the next refresh, not remembered forever.
    source.catch(() => {
      source = undefined;
    });
    return source;
  };
  const tokens = new Map<string, AccountToken>();
  for (const { serviceAccount } of options.identities) {
    if (!tokens.has(serviceAccount)) {
      tokens.set(serviceAccount, {
        serviceAccount,
        client: undefined,
        header: undefined,
        expiresAt: 0,
        inflight: undefined,
        failedUntil: 0,
        failures: 0,
        lastError: undefined,
        timer: undefined,
      });
    }
  }
  let stopped = false;

  const valid = (token: AccountToken): boolean => token.header !== undefined && now() < token.expiresAt - SAFETY_MARGIN_MS;

  async function fetchToken(token: AccountToken): Promise<void> {
    token.client ??= new Impersonated({
      sourceClient: await sourceClient(),
      targetPrincipal: token.serviceAccount,
      targetScopes: [CLOUD_PLATFORM],
      delegates: [],
      lifetime: TOKEN_LIFETIME_SEC,
      endpoint: options.endpoint,
      eagerRefreshThresholdMillis: refreshMarginMs,
    });
    const { token: accessToken } = await token.client.getAccessToken();
    if (!accessToken) throw new Error('IAM Credentials returned no access token');
    const expiry = token.client.credentials.expiry_date;
    token.header = `Bearer ${accessToken}`;
    token.expiresAt = typeof expiry === 'number' && Number.isFinite(expiry) ? expiry : now() + TOKEN_LIFETIME_SEC * 1000;
  }

  function refresh(token: AccountToken): Promise<void> {
    token.inflight ??= fetchToken(token).then(
      () => {
        token.inflight = undefined;
        token.failures = 0;
        token.failedUntil = 0;
        token.lastError = undefined;
        options.onRefresh?.(token.serviceAccount, 'success');
        schedule(token, token.expiresAt - now() - refreshMarginMs);
      },
      (error: unknown) => {
        token.inflight = undefined;
        token.failures++;
        token.lastError = error instanceof Error ? error.message : String(error);
        const backoff = Math.min(MIN_RETRY_MS * 2 ** (token.failures - 1), MAX_RETRY_MS);
        token.failedUntil = now() + backoff;
        options.onRefresh?.(token.serviceAccount, 'error', error);
        // Keep trying in the background while the current token (if any) is still good.
        if (valid(token)) schedule(token, backoff);
      },
    );
    return token.inflight;
  }

  function schedule(token: AccountToken, delayMs: number): void {
    if (stopped) return;
    if (token.timer !== undefined) clearTimeout(token.timer);
    token.timer = setTimeout(
      () => {
        token.timer = undefined;
        void refresh(token);
      },
      Math.max(delayMs, 0),
    );
    token.timer.unref();
  }

  return {
    serviceAccountFor: match,
    authorization(serviceAccount) {
      const token = tokens.get(serviceAccount);
      if (token === undefined) return undefined;
      if (valid(token)) return token.header;
      if (now() < token.failedUntil && token.inflight === undefined) return undefined;
      return refresh(token).then(() => (valid(token) ? token.header : undefined));
    },
    start() {
      for (const token of tokens.values()) void refresh(token);
    },
    stop() {
      stopped = true;
      for (const token of tokens.values()) if (token.timer !== undefined) clearTimeout(token.timer);
    },
    describe() {
      return [...tokens.values()].map((token) => ({
        serviceAccount: token.serviceAccount,
        ready: valid(token),
        expiresInSec: token.header === undefined ? undefined : Math.max(0, Math.floor((token.expiresAt - now()) / 1000)),
        lastError: token.lastError,
      }));
    },
  };
}
