/**
 * How the proxy reaches the Kubernetes API: an explicit kubeconfig file
 * (`kubernetes.kubeconfig`) when given; otherwise the in-cluster config when
 * running in a pod (KUBERNETES_SERVICE_HOST plus the mounted service-account
 * token and CA); otherwise $KUBECONFIG or ~/.kube/config.
 *
 * client-node's `loadFromDefault` would fall back to `http://localhost:8080`
 * when nothing is found; that silent guess is refused here.
 *
 * In: the configured path, the environment. Out: a KubeConfig.
 *
 * @module
 * @throws Error when no configuration is found or the file cannot be read (at start only).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConfigSource {
  readonly kubeConfig: KubeConfig;
  /** `file:PATH`, `in-cluster` or `default:PATH`, for logs and /readyz. */
  readonly describe: string;
  readonly server: string;
}

export function loadKubeConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env, inClusterPrefix = ''): KubeConfigSource {
  const kubeConfig = new KubeConfig();
  let describe: string;
  if (path !== undefined) {
    kubeConfig.loadFromFile(path);
    describe = `file:${path}`;
  } else if (env.KUBERNETES_SERVICE_HOST && existsSync(join(inClusterPrefix, SERVICE_ACCOUNT_DIR, 'token'))) {
    kubeConfig.loadFromCluster(inClusterPrefix);
    describe = 'in-cluster';
  } else {
    const file = env.KUBECONFIG?.split(':').find((p) => p !== '' && existsSync(p)) ?? join(env.HOME ?? homedir(), '.kube', 'config');
    if (!existsSync(file)) {
      throw new Error('no Kubernetes API configuration: not in a pod, no kubernetes.kubeconfig, no $KUBECONFIG, no ~/.kube/config');
    }
    kubeConfig.loadFromFile(file);
    describe = `file:${file}`;
  }
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error(`Kubernetes API configuration (${describe}) has no current cluster`);
  return { kubeConfig, describe, server: cluster.server };
}
