/**
 * Where namespace labels come from. The policy asks only `labelsOf`, which is
 * in-memory and synchronous: a request never waits for the Kubernetes API.
 *
 * @module
 */

export interface NamespaceLabelSource {
  /** Labels of a namespace, or undefined when the namespace is unknown to this source. */
  labelsOf(namespace: string): Readonly<Record<string, string>> | undefined;
  /** Whether the source has a usable view (for /readyz). */
  ready(): boolean;
  /** Short description for /readyz and logs. */
  readonly kind: 'static' | 'off' | 'watch';
  /**
   * Undefined while the view can be trusted; otherwise how old it is (null:
   * never synced). Sources without a remote view (static, off) omit it.
   */
  stale?(): { readonly ageSeconds: number | null } | undefined;
}

/** Labels from the config file (`kubernetes.static`). */
export function createStaticLabelSource(map: Readonly<Record<string, Readonly<Record<string, string>>>>): NamespaceLabelSource {
  const labels = new Map<string, Readonly<Record<string, string>>>();
  for (const [namespace, nsLabels] of Object.entries(map)) {
    // The API server adds this label to every namespace (Kubernetes ≥ 1.21); mirror it so selectors written for a cluster work here too.
    labels.set(namespace, Object.freeze({ 'kubernetes.io/metadata.name': namespace, ...nsLabels }));
  }
  return { kind: 'static', labelsOf: (namespace) => labels.get(namespace), ready: () => true };
}

/** No labels at all: label selectors never match. */
export function createNoLabelSource(): NamespaceLabelSource {
  return { kind: 'off', labelsOf: () => undefined, ready: () => true };
}
