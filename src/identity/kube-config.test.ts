import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadKubeConfig } from './kube-config.js';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://10.0.0.1:443" } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`;

function podFilesystem(): string {
  const root = mkdtempSync(join(tmpdir(), 'kvp-pod-'));
  const dir = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'token'), 'projected-token');
  writeFileSync(join(dir, 'namespace'), 'vertex-system');
  writeFileSync(join(dir, 'ca.crt'), '');
  return root;
}

describe('where the Kubernetes API configuration comes from', () => {
  it('in a pod: the in-cluster config (service host and port, mounted token)', () => {
    // client-node's loadFromCluster reads process.env itself.
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    process.env.KUBERNETES_SERVICE_HOST = '10.96.0.1';
    process.env.KUBERNETES_SERVICE_PORT = '443';
    try {
      const source = loadKubeConfig(undefined, process.env, podFilesystem());
      expect(source).toMatchObject({ describe: 'in-cluster', server: 'https://10.96.0.1:443' });
    } finally {
      if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
      else process.env.KUBERNETES_SERVICE_HOST = saved.host;
      if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
      else process.env.KUBERNETES_SERVICE_PORT = saved.port;
    }
  });

  it('an explicit kubeconfig wins over the in-cluster config', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'kvp-kc-')), 'config');
    writeFileSync(file, KUBECONFIG);
    const source = loadKubeConfig(file, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, podFilesystem());
    expect(source).toMatchObject({ describe: `file:${file}`, server: 'https://10.0.0.1:443' });
  });

  it('outside a pod: $KUBECONFIG', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'kvp-kc-')), 'config');
    writeFileSync(file, KUBECONFIG);
    expect(loadKubeConfig(undefined, { KUBECONFIG: file, HOME: '/nonexistent' })).toMatchObject({ describe: `file:${file}` });
  });

  it('refuses to guess http://localhost:8080 when nothing is configured', () => {
    expect(() => loadKubeConfig(undefined, { HOME: mkdtempSync(join(tmpdir(), 'kvp-home-')) })).toThrow(/no Kubernetes API configuration/);
  });
});
