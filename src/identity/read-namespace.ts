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
 * In: a KubeConfig, the namespace, a deadline. Out: the labels ({} when it
 * has none), or undefined when the namespace does not exist.
 *
 * @module
 * @throws Error when the API server cannot be reached or refuses the read
 *   (message names the server and the HTTP status; no response body).
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { withTimeout } from '../lib/with-timeout.js';

export async function readNamespaceLabels(
  kubeConfig: KubeConfig,
  namespace: string,
  timeoutMs: number,
): Promise<Record<string, string> | undefined> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const server = kubeConfig.getCurrentCluster()?.server ?? '(no server)';
  try {
    const ns = await withTimeout(core.readNamespace({ name: namespace }), timeoutMs, `GET /api/v1/namespaces/${namespace}`);
    return { ...ns.metadata?.labels };
  } catch (error) {
    const status = (error as { code?: unknown }).code;
    if (status === 404) return undefined;
    if (status === 403) {
      // The proxy's own role grants list (for its informer), not get: inside its pod, ask the way the informer does.
      const listed = await withTimeout(
        core.listNamespace({ fieldSelector: `metadata.name=${namespace}` }),
        timeoutMs,
        'LIST /api/v1/namespaces',
      ).catch(() => undefined);
      if (listed !== undefined) {
        const ns = listed.items[0];
        return ns === undefined ? undefined : { ...ns.metadata?.labels };
      }
    }
    // ApiException messages carry the whole response body: keep the status and the cause's code only.
    const cause = (error as { cause?: { code?: unknown } }).cause?.code;
    const why =
      typeof status === 'number'
        ? `HTTP ${status}${status === 401 ? ' (the credential was refused)' : status === 403 ? ' (this identity may neither get nor list namespaces)' : ''}`
        : `${(error as Error).name === 'TimeoutError' ? 'no answer in time' : ((error as Error).message.split('\n')[0]?.slice(0, 200) ?? '')}${typeof cause === 'string' ? ` (${cause})` : ''}`;
    throw new Error(`cannot read namespace "${namespace}" from the Kubernetes API at ${server}: ${why}`, { cause: error });
  }
}
