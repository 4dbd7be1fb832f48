// Measures what the proxy's informers hold in memory: the namespace-label
// view for N namespaces, and the UID-revocation views for N pods (plus their
// service accounts). One process: the Kubernetes API stand-in is filled
// first, the heap is measured after a full GC, the informer is started and
// synced through the proxy's Kubernetes client, and the heap is measured
// again; the difference is the informer's cost.
//
//   npm run build && npm run build:dev && node_modules/.bin/node --expose-gc scripts/informer-memory.mjs [N]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeConfig } from '../dist/identity/kube-config.js';
import { createWatchLabelSource } from '../dist/identity/namespace-watch.js';
import { createUidRevocation } from '../dist/identity/uid-revocation.js';
import { startKubeApiStandIn } from '../dist-dev/dev/standins/kube-api.js';

if (typeof globalThis.gc !== 'function') {
  console.error('run with --expose-gc');
  process.exit(2);
}
const n = Number(process.argv[2] ?? 10_000);

async function settledHeap() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}
async function until(check) {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}
const mib = (bytes) => (bytes / 1024 / 1024).toFixed(2);

const api = await startKubeApiStandIn();
const { client } = loadKubeConfig(api.writeKubeconfig(mkdtempSync(join(tmpdir(), 'kvp-mem-'))), {});

// Namespaces: three labels each besides kubernetes.io/metadata.name, like a labelled tenant namespace.
for (let i = 0; i < n; i++)
  api.setNamespace(`tenant-${i}`, { team: `team-${i % 50}`, env: i % 3 === 0 ? 'prod' : 'dev', 'cost-center': `cc-${i % 200}` });
let before = await settledHeap();
const labels = createWatchLabelSource({ client, maxStalenessMs: 300_000, apiTimeoutMs: 60_000 });
await labels.start();
await until(() => labels.ready() && labels.size === n);
let after = await settledHeap();
const nsBytes = after - before;
console.log(`namespaces: ${n} in view; informer heap ${mib(nsBytes)} MiB (${Math.round(nsBytes / n)} B per namespace)`);
labels.stop();

// Pods (and one service account per 10 pods) for UID revocation.
for (let i = 0; i < n / 10; i++) api.addServiceAccount(`tenant-${i % 1000}`, `sa-${i}`);
for (let i = 0; i < n; i++) api.addPod(`tenant-${i % 1000}`, `app-${i}-x7k2p`, `sa-${Math.floor(i / 10)}`);
before = await settledHeap();
const revocation = createUidRevocation({ client, pods: true, apiTimeoutMs: 60_000, evict: () => 0 });
await revocation.start();
await until(() => revocation.ready() && revocation.describe().pods.objects === n);
after = await settledHeap();
const podBytes = after - before;
console.log(
  `uidRevocation serviceAccountsAndPods: ${n} pods + ${n / 10} service accounts; informer heap ${mib(podBytes)} MiB (` +
    `${Math.round(podBytes / n)} B per pod, service accounts included)`,
);
revocation.stop();
console.log(`rss at end ${mib(process.memoryUsage().rss)} MiB (includes the stand-in and its event history)`);
await api.close();
process.exit(0);
