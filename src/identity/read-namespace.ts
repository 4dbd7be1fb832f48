/**
 * One namespace's labels, read once from the Kubernetes API
 * (`GET /api/v1/namespaces/NAME`): what `can-i` asks when the config says
 * `kubernetes.namespaceLabels: watch`, so it answers with the labels the
 * running proxy's informer holds.
 *
 * When the identity may not `get` namespaces but may `list` them (the
 * proxy's own role in `watch` mode), the same answer comes from a LIST
 * narrowed to that name.
 *
 * In: a KubeClient, the namespace, a deadline. Out: the labels ({} when it
 * has none), or undefined when the namespace does not exist.
 *
 * @module
 * @throws Error when the API server cannot be reached or refuses the read
 *   (message names the server and the HTTP status; no response body).
 */
import type { KubeClient, KubeList, KubeObject } from './kube-client.js';

export async function readNamespaceLabels(
  client: KubeClient,
  namespace: string,
  timeoutMs: number,
): Promise<Record<string, string> | undefined> {
  const server = client.server;
  try {
    const ns = await client.get<KubeObject>(`/api/v1/namespaces/${encodeURIComponent(namespace)}`, timeoutMs);
    return { ...ns.metadata?.labels };
  } catch (error) {
    const status = (error as { statusCode?: unknown }).statusCode;
    if (status === 404) return undefined;
    if (status === 403) {
      // The proxy's own role grants list (for its informer), not get: inside its pod, ask the way the informer does.
      const listed = await client
        .get<KubeList<KubeObject>>(`/api/v1/namespaces?fieldSelector=${encodeURIComponent(`metadata.name=${namespace}`)}`, timeoutMs)
        .catch(() => undefined);
      if (listed !== undefined) {
        const ns = listed.items[0];
        return ns === undefined ? undefined : { ...ns.metadata?.labels };
      }
    }
    // Keep the status and the cause's code only: no response body.
    const cause = (error as { cause?: { code?: unknown } }).cause?.code;
    const why =
      typeof status === 'number'
        ? `HTTP ${String(status)}` +
          (status === 401 ? ' (the credential was refused)' : status === 403 ? ' (this identity may neither get nor list namespaces)' : '')
        : ((error as Error).name === 'TimeoutError'
            ? 'no answer in time'
            : ((error as Error).message.split('\n')[0]?.slice(0, 200) ?? '')) + (typeof cause === 'string' ? ` (${cause})` : '');
    throw new Error(`cannot read namespace "${namespace}" from the Kubernetes API at ${server}: ${why}`, { cause: error });
  }
}
