/**
 * The proxy's own Google credential, from Application Default Credentials
 * (on GKE: the metadata server through Workload Identity).
 *
 * The current access token is held here and refreshed in the background well
 * before it expires, so the hot path reads a string synchronously and never
 * waits on the metadata server. When no valid token is at hand the request is
 * refused with 503: the proxy never forwards without its own credential, and
 * never forwards the caller's.
 *
 * @module
 */
import { GoogleAuth } from 'google-auth-library';

export type RefreshResult = 'success' | 'error';

export interface UpstreamCredential {
  /** `Bearer …` header value, or undefined when no unexpired token is held. */
  authorization(): string | undefined;
  ready(): boolean;
  start(): Promise<void>;
  stop(): void;
  describe(): { ready: boolean; expiresInSec: number | undefined; lastError: string | undefined };
}

export interface GoogleCredentialOptions {
  readonly scopes?: readonly string[];
  /** Refresh this long before expiry (google-auth-library's default is 5 min). */
  readonly refreshMarginMs?: number;
  readonly onRefresh?: (result: RefreshResult, error?: unknown) => void;
  readonly now?: () => number;
}

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
/** A token this close to expiry is not handed out: it could expire in flight. */
const SAFETY_MARGIN_MS = 10_000;
const MIN_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;

export function createGoogleCredential(options: GoogleCredentialOptions = {}): UpstreamCredential {
  const now = options.now ?? Date.now;
  const refreshMarginMs = options.refreshMarginMs ?? 5 * 60_000;
  const auth = new GoogleAuth({
    scopes: [...(options.scopes ?? [CLOUD_PLATFORM])],
    clientOptions: { eagerRefreshThresholdMillis: refreshMarginMs },
  });
  let header: string | undefined;
  let expiresAt = 0;
  let lastError: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failures = 0;

  async function refresh(): Promise<void> {
    const client = await auth.getClient();
    const { token } = await client.getAccessToken();
    if (!token) throw new Error('Application Default Credentials returned no access token');
    const expiry = (client.credentials as { expiry_date?: number | null } | undefined)?.expiry_date;
    header = `Bearer ${token}`;
    // Without an expiry (unusual for ADC), assume the GKE metadata server's one-hour tokens.
    expiresAt = typeof expiry === 'number' ? expiry : now() + 3_600_000;
  }

  function schedule(delayMs: number): void {
    if (stopped) return;
    timer = setTimeout(run, Math.max(delayMs, 0));
    timer.unref();
  }

  function run(): void {
    refresh().then(
      () => {
        failures = 0;
        lastError = undefined;
        options.onRefresh?.('success');
        // Ahead of expiry: at the margin, or halfway through a token's life when
        // that is sooner (short-lived tokens), so a metadata-server outage shorter
        // than the remaining half goes unnoticed by callers.
        const remaining = expiresAt - now();
        schedule(remaining > 2 * refreshMarginMs ? remaining - refreshMarginMs : remaining / 2);
      },
      (error: unknown) => {
        failures++;
        lastError = error instanceof Error ? error.message : String(error);
        options.onRefresh?.('error', error);
        // The GKE metadata server can take seconds to serve a new pod: retry with backoff.
        schedule(Math.min(MIN_RETRY_MS * 2 ** (failures - 1), MAX_RETRY_MS));
      },
    );
  }

  return {
    authorization() {
      return header !== undefined && now() < expiresAt - SAFETY_MARGIN_MS ? header : undefined;
    },
    ready() {
      return header !== undefined && now() < expiresAt - SAFETY_MARGIN_MS;
    },
    start() {
      run();
      // Start does not wait for the token: /readyz reports it, requests get 503 until then.
      return Promise.resolve();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
    describe() {
      return {
        ready: this.ready(),
        expiresInSec: header === undefined ? undefined : Math.max(0, Math.floor((expiresAt - now()) / 1000)),
        lastError,
      };
    },
  };
}
