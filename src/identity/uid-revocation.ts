/**
 * Revocation without TokenReview (`kubernetes.uidRevocation`). A bound
 * service-account token names the UIDs of its service account and pod; a
 * service account deleted and recreated under the same name gets a new UID,
 * so "the UID in the token is still the UID of that name" is exactly "the
 * token's binding still exists".
 *
 * Metadata-only informers (LIST as `PartialObjectMetadataList`, objects
 * reduced to namespace/name/uid) of ServiceAccounts and optionally Pods
 * answer that in memory on every request, cached token or not. A DELETED
 * event also evicts the matching tokens from the verified-token cache (in
 * one sweep per event-loop turn, however many deletions arrived).
 *
 * While a view has not synced yet the check refuses with 503 (fail closed;
 * /readyz is not ready then). Once synced, the last view keeps deciding
 * while the API server is unreachable.
 *
 * In: a KubeClient, mode, hooks. Out: `admit(principal)`, readiness, sizes.
 *
 * @module
 * @throws ProxyError (returned by admit) ERR_AUTHN_INVALID_TOKEN (401, reasons
 *   service-account-deleted, pod-deleted); ERR_AUTHN_VERIFIER_UNAVAILABLE (503,
 *   reason revocation-view-not-synced)
 */
import { ProxyError, unauthenticated } from '../errors.js';
import type { Principal } from '../authn/principal.js';
import { listMetadata, ResilientInformer } from './informer.js';
import type { KubeClient, KubeObject } from './kube-client.js';

/** Drops cached tokens whose principal matches; returns how many. */
export type Evict = (predicate: (principal: Principal) => boolean) => number;

export interface UidRevocationOptions {
  readonly client: KubeClient;
  readonly pods: boolean;
  readonly apiTimeoutMs: number;
  readonly onEvent?: (resource: string, type: string) => void;
  readonly onRestart?: (resource: string) => void;
  readonly onRelist?: (resource: string) => void;
  readonly onError?: (resource: string, error: unknown, restartInMs: number) => void;
  readonly onEvicted?: (count: number) => void;
  readonly backoffInitialMs?: number;
}

export interface UidRevocation {
  admit(principal: Principal): ProxyError | undefined;
  /** Starts the informers; deletions they see evict the matching tokens through `evict`. */
  start(evict: Evict): Promise<void>;
  stop(): void;
  ready(): boolean;
  describe(): Record<string, unknown>;
  /** Informers by resource, for age metrics. */
  readonly informers: ReadonlyArray<{ readonly resource: string; ageMs(): number | undefined; size(): number }>;
}

const stripMetadata = (o: KubeObject): KubeObject => ({
  metadata: {
    name: o.metadata?.name ?? '',
    namespace: o.metadata?.namespace ?? '',
    uid: o.metadata?.uid ?? '',
    ...(o.metadata?.resourceVersion === undefined ? {} : { resourceVersion: o.metadata.resourceVersion }),
  },
});

export function createUidRevocation(options: UidRevocationOptions): UidRevocation {
  const deletedServiceAccounts = new Set<string>();
  const deletedPods = new Set<string>();
  // Set by start(): no informer reports a deletion before it runs.
  let evict: Evict = () => 0;
  let sweepScheduled = false;
  const scheduleSweep = () => {
    if (sweepScheduled) return;
    sweepScheduled = true;
    setImmediate(() => {
      sweepScheduled = false;
      const sas = new Set(deletedServiceAccounts);
      const pods = new Set(deletedPods);
      deletedServiceAccounts.clear();
      deletedPods.clear();
      const count = evict(
        (p) => p.kind === 'kubernetes' && ((p.uid !== undefined && sas.has(p.uid)) || (p.pod !== undefined && pods.has(p.pod.uid))),
      );
      options.onEvicted?.(count);
    });
  };

  const make = (resource: 'serviceaccounts' | 'pods', deleted: Set<string>) =>
    new ResilientInformer<KubeObject>({
      resource,
      client: options.client,
      path: `/api/v1/${resource}`,
      list: () => listMetadata(options.client, `/api/v1/${resource}`, options.apiTimeoutMs),
      watchOpenTimeoutMs: options.apiTimeoutMs,
      strip: stripMetadata,
      onChange: (change, object) => {
        const uid = object.metadata?.uid;
        if (change === 'delete' && uid) {
          deleted.add(uid);
          scheduleSweep();
        }
      },
      ...(options.onEvent ? { onEvent: (type: string) => options.onEvent?.(resource, type) } : {}),
      ...(options.onRestart ? { onRestart: () => options.onRestart?.(resource) } : {}),
      ...(options.onRelist ? { onRelist: () => options.onRelist?.(resource) } : {}),
      ...(options.onError ? { onError: (error: unknown, delay: number) => options.onError?.(resource, error, delay) } : {}),
      ...(options.backoffInitialMs === undefined ? {} : { backoffInitialMs: options.backoffInitialMs }),
    });

  const serviceAccounts = make('serviceaccounts', deletedServiceAccounts);
  const pods = options.pods ? make('pods', deletedPods) : undefined;
  const all = pods ? [serviceAccounts, pods] : [serviceAccounts];

  const notSynced = () =>
    new ProxyError('ERR_AUTHN_VERIFIER_UNAVAILABLE', 'token revocation view not synced', {
      reason: 'revocation-view-not-synced',
    });
  const revoked = (what: 'service account' | 'pod', reason: string) =>
    unauthenticated('ERR_AUTHN_INVALID_TOKEN', `The token's ${what} no longer exists (it was deleted, or recreated with a new UID).`, {
      reason,
    });

  return {
    admit(principal) {
      if (principal.kind !== 'kubernetes') return undefined;
      if (!serviceAccounts.synced()) return notSynced();
      const sa = serviceAccounts.get(principal.serviceAccount, principal.namespace);
      if (sa === undefined || principal.uid === undefined || sa.metadata?.uid !== principal.uid)
        return revoked('service account', 'service-account-deleted');
      // Tokens not bound to a pod (kubectl create token, secret-bound) are checked on the service account only.
      if (pods !== undefined && principal.pod !== undefined) {
        if (!pods.synced()) return notSynced();
        const pod = pods.get(principal.pod.name, principal.namespace);
        if (pod === undefined || pod.metadata?.uid !== principal.pod.uid) return revoked('pod', 'pod-deleted');
      }
      return undefined;
    },
    async start(evictTokens) {
      evict = evictTokens;
      await Promise.all(all.map((i) => i.start()));
    },
    stop() {
      for (const i of all) i.stop();
    },
    ready: () => all.every((i) => i.synced()),
    describe: () =>
      Object.fromEntries(
        all.map((i, n) => {
          const age = i.ageMs();
          return [
            n === 0 ? 'serviceAccounts' : 'pods',
            {
              synced: i.synced(),
              watching: i.watching(),
              objects: i.size(),
              ageSeconds: age === undefined ? null : Math.round(age / 1000),
            },
          ];
        }),
      ),
    informers: all.map((i, n) => ({ resource: n === 0 ? 'serviceaccounts' : 'pods', ageMs: () => i.ageMs(), size: () => i.size() })),
  };
}
