import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
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
    const source = loadKubeConfig(undefined, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, podFilesystem());
    expect(source).toMatchObject({ describe: 'in-cluster', server: 'https://10.96.0.1:443' });
    // An IPv6 service host is bracketed in the URL.
    expect(loadKubeConfig(undefined, { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, podFilesystem()).server).toBe(
      'https://[fd00::1]:443',
    );
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

function kubeconfigFile(user: string, cluster = 'server: "https://10.0.0.1:443"'): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvp-kc-'));
  const file = join(dir, 'config');
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { ${cluster} } }]
users: [{ name: u, user: ${user} }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`,
  );
  return file;
}

/** A plain-HTTP API server that records the Authorization header of each request. */
async function recordingServer(): Promise<{ url: string; headers: IncomingHttpHeaders[]; close: () => void }> {
  const headers: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    headers.push(req.headers);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ kind: 'NamespaceList', metadata: { resourceVersion: '7' }, items: [] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`, headers, close: () => server.close() };
}

describe('what a kubeconfig user may be', () => {
  it('refuses auth-provider and proxy-url by name instead of ignoring them', () => {
    expect(() => loadKubeConfig(kubeconfigFile('{ auth-provider: { name: gcp } }'))).toThrow(/auth-provider is not supported/);
    expect(() => loadKubeConfig(kubeconfigFile('{ token: t }', 'server: "https://10.0.0.1", proxy-url: "http://proxy:3128"'))).toThrow(
      /proxy-url is not supported/,
    );
  });

  it('says which part is missing when the current context names no cluster', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'kvp-kc-')), 'config');
    writeFileSync(file, 'apiVersion: v1\nkind: Config\ncontexts: []\ncurrent-context: x\n');
    expect(() => loadKubeConfig(file)).toThrow(/has no current cluster/);
  });

  it("sends the token, a tokenFile relative to the kubeconfig, basic credentials, or an exec plugin's token", async () => {
    const api = await recordingServer();
    try {
      const server = `server: "${api.url}"`;
      const dir = mkdtempSync(join(tmpdir(), 'kvp-kc-'));
      writeFileSync(join(dir, 'token-file'), 'from-file\n');
      const plugin = join(dir, 'plugin.sh');
      writeFileSync(
        plugin,
        '#!/bin/sh\necho ' +
          '"{\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",\\"kind\\":\\"ExecCredential\\",' +
          '\\"status\\":{\\"token\\":\\"from-$PLUGIN_NAME\\"}}"\n',
        { mode: 0o755 },
      );
      const cases: Array<[string, string]> = [
        ['{ token: plain }', 'Bearer plain'],
        [`{ tokenFile: ${join(dir, 'token-file')} }`, 'Bearer from-file'],
        ['{ username: u, password: p }', `Basic ${Buffer.from('u:p').toString('base64')}`],
        [
          `{ exec: { apiVersion: client.authentication.k8s.io/v1, command: ${plugin}, env: [{ name: PLUGIN_NAME, value: exec }] } }`,
          'Bearer from-exec',
        ],
      ];
      for (const [user, expected] of cases) {
        const { client } = loadKubeConfig(kubeconfigFile(user, server));
        await client.get('/api/v1/namespaces', 2000);
        await client.close();
        expect(api.headers.at(-1)?.authorization, user).toBe(expected);
      }
    } finally {
      api.close();
    }
  });
});
