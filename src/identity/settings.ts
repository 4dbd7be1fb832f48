/**
 * The `kubernetes` and `reload` config sections → {@link KubernetesSettings}
 * and {@link ReloadSettings}: units converted once, the kubeconfig path
 * resolved against the config file's directory, semantic problems reported
 * through the loader's `add`.
 *
 * In: the validated sections and the config file's directory.
 * Out: plain settings objects. Throws nothing; problems go to `add`.
 *
 * @module
 */
import { isAbsolute, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/units.js';

export interface KubernetesSettings {
  readonly namespaceLabels: 'static' | 'off' | 'watch';
  /** Absolute path, or undefined for in-cluster / $KUBECONFIG. */
  readonly kubeconfig: string | undefined;
  readonly maxStalenessMs: number;
  readonly apiTimeoutMs: number;
  readonly tokenReview: boolean;
  readonly tokenReviewTtlMs: number;
  readonly tokenReviewConcurrency: number;
  readonly uidRevocation: 'off' | 'serviceAccounts' | 'serviceAccountsAndPods';
  /** True when any mode talks to the API server. */
  readonly usesApi: boolean;
  /** `kubernetes.static`: namespace → labels, used when namespaceLabels is `static` (reloads with the policy). */
  readonly static: Config['kubernetes']['static'];
}

export interface ReloadSettings {
  readonly watch: boolean;
  readonly debounceMs: number;
}

export function deriveKubernetesSettings(
  kubernetes: Config['kubernetes'],
  configDir: string,
  add: (path: (string | number)[], message: string) => void,
): KubernetesSettings {
  const maxStalenessMs = parseDuration(kubernetes.maxStaleness);
  const apiTimeoutMs = parseDuration(kubernetes.apiTimeout);
  const tokenReviewTtlMs = parseDuration(kubernetes.tokenReviewTtl);
  if (maxStalenessMs === 0) add(['kubernetes', 'maxStaleness'], 'must be greater than 0');
  if (apiTimeoutMs === 0) add(['kubernetes', 'apiTimeout'], 'must be greater than 0');
  if (kubernetes.tokenReview && tokenReviewTtlMs === 0)
    add(['kubernetes', 'tokenReviewTtl'], 'must be greater than 0 when tokenReview is on');
  const usesApi = kubernetes.namespaceLabels === 'watch' || kubernetes.tokenReview || kubernetes.uidRevocation !== 'off';
  const kubeconfig =
    kubernetes.kubeconfig === undefined
      ? undefined
      : isAbsolute(kubernetes.kubeconfig)
        ? kubernetes.kubeconfig
        : resolve(configDir, kubernetes.kubeconfig);
  return {
    namespaceLabels: kubernetes.namespaceLabels,
    kubeconfig,
    maxStalenessMs,
    apiTimeoutMs,
    tokenReview: kubernetes.tokenReview,
    tokenReviewTtlMs,
    tokenReviewConcurrency: kubernetes.tokenReviewConcurrency,
    uidRevocation: kubernetes.uidRevocation,
    usesApi,
    static: kubernetes.static,
  };
}

export function deriveReloadSettings(reload: Config['reload']): ReloadSettings {
  return { watch: reload.watch, debounceMs: parseDuration(reload.debounce) };
}
