/**
 * TokenReview (`authentication.k8s.io/v1`): asks the API server whether a
 * Kubernetes token is still good. The API server also checks that the
 * service account, and the pod the token is bound to, still exist with the
 * UIDs in the token, so a token whose pod was deleted is refused.
 *
 * Always sends `spec.audiences` (the issuer's configured audiences): without
 * them the API server checks its own audience and every custom-audience
 * token fails.
 *
 * At most `maxConcurrent` reviews are in flight (a cold cache in a large
 * cluster would otherwise send one per distinct token at once, against the
 * API server every pod depends on); further ones wait up to `timeoutMs` for a
 * slot, and past that or past a bounded line they are refused (fail closed).
 *
 * In: the token, the audiences, the locally verified principal. Out: accept,
 * or a refusal. The token goes to the API server only; it is never logged.
 *
 * @module
 * @throws ProxyError ERR_AUTHN_INVALID_TOKEN (401, reason token-review-rejected);
 *   ERR_AUTHN_VERIFIER_UNAVAILABLE (503, reasons token-review-unavailable, token-review-busy)
 */
import { ProxyError, unauthenticated } from '../errors.js';
import { ConcurrencyLimit, LimitExceeded } from '../lib/concurrency-limit.js';
import type { KubeClient } from '../identity/kube-client.js';
import type { KubernetesPrincipal } from './principal.js';

export interface TokenReviewer {
  /** Resolves when the API server accepts the token for this principal; rejects with a ProxyError otherwise. */
  review(token: string, audiences: readonly string[], principal: KubernetesPrincipal): Promise<void>;
}

export type TokenReviewResult = 'accepted' | 'rejected' | 'error' | 'busy';

export interface TokenReviewerOptions {
  readonly client: KubeClient;
  readonly timeoutMs: number;
  /** Reviews in flight at once. */
  readonly maxConcurrent: number;
  /** Outcome counter; `busy`: refused without a call, no slot free in time. */
  readonly onReview?: (result: TokenReviewResult) => void;
  /** The API server answered 403: the proxy's identity may not create TokenReviews (the permission check names it). */
  readonly onForbidden?: () => void;
}

/** How many reviews may wait for a slot, per slot: enough for a burst, bounded all the same. */
const WAITING_PER_SLOT = 64;

const POD_UID = 'authentication.kubernetes.io/pod-uid';

/**
 * The fields of a TokenReview answer the verdict reads:
 * https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-review-v1/
 */
export interface TokenReviewAnswer {
  readonly status?: {
    readonly authenticated?: boolean;
    readonly error?: string;
    readonly user?: { readonly username?: string; readonly extra?: Readonly<Record<string, readonly string[]>> };
  };
}

export function createTokenReviewer(options: TokenReviewerOptions): TokenReviewer {
  const slots = new ConcurrencyLimit({
    limit: options.maxConcurrent,
    maxWaiting: options.maxConcurrent * WAITING_PER_SLOT,
    maxWaitMs: options.timeoutMs,
  });
  return {
    async review(token, audiences, principal) {
      let result: TokenReviewAnswer;
      try {
        result = await slots.run(() =>
          options.client.post<TokenReviewAnswer>(
            '/apis/authentication.k8s.io/v1/tokenreviews',
            { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [...audiences] } },
            options.timeoutMs,
          ),
        );
      } catch (cause) {
        if (cause instanceof LimitExceeded) {
          options.onReview?.('busy');
          throw new ProxyError('ERR_AUTHN_VERIFIER_UNAVAILABLE', 'token review unavailable', {
            cause,
            reason: 'token-review-busy',
          });
        }
        options.onReview?.('error');
        // The answer's body echoes the token: keep only the status (KubeApiError carries nothing else).
        const status = (cause as { statusCode?: unknown }).statusCode;
        if (status === 403) options.onForbidden?.();
        throw new ProxyError('ERR_AUTHN_VERIFIER_UNAVAILABLE', 'token review unavailable', {
          cause: new Error(`TokenReview failed${typeof status === 'number' ? ` (HTTP ${String(status)})` : ''}: ${(cause as Error).name}`),
          reason: 'token-review-unavailable',
        });
      }
      const refusal = check(result, principal);
      options.onReview?.(refusal === undefined ? 'accepted' : 'rejected');
      if (refusal !== undefined) throw refusal;
    },
  };
}

/** The review's verdict for this principal; undefined = accepted. */
export function check(result: TokenReviewAnswer, principal: KubernetesPrincipal): ProxyError | undefined {
  const status = result.status;
  const reject = (why: string) =>
    unauthenticated(
      'ERR_AUTHN_INVALID_TOKEN',
      'The Kubernetes API server no longer accepts this token (its pod or service account may have been deleted).',
      {
        reason: 'token-review-rejected',
        cause: new Error(why),
      },
    );
  // On failure the API server omits `authenticated` (Go omitempty), so anything but a literal true refuses.
  if (status?.authenticated !== true) return reject(`TokenReview: not authenticated: ${status?.error ?? 'no error given'}`);
  if (status.user?.username !== principal.subject) return reject('TokenReview: user differs from the token subject');
  const podUid = status.user.extra?.[POD_UID]?.[0];
  if (principal.pod !== undefined && podUid !== undefined && podUid !== principal.pod.uid)
    return reject('TokenReview: pod UID differs from the token');
  return undefined;
}
