// Memory under token abuse (issue 15): what the verifier holds after
//   1. N distinct valid tokens (the verified-token cache: bounded by
//      authentication.tokenCache.maxEntries),
//   2. N distinct invalid tokens (bad signatures: the bad-token memory,
//      bounded at 10,000 entries),
//   3. N tokens naming random key ids (refetches rate-limited by
//      jwks.minRefreshInterval; nothing cached).
// One process, the real TokenVerifier from dist/ against the loopback issuer
// (ES256, so minting 3N tokens takes seconds, not minutes). The heap is
// measured after full GCs before and after each phase.
//
//   npm run build && npm run build:dev && node_modules/.bin/node --expose-gc scripts/abuse-memory.mjs [N] [cacheMaxEntries]
import { randomUUID } from 'node:crypto';
import { TokenVerifier } from '../dist/authn/verifier.js';
import { startIssuer } from '../dist-dev/dev/standins/issuer.js';

if (typeof globalThis.gc !== 'function') {
  console.error('run with --expose-gc');
  process.exit(2);
}
const n = Number(process.argv[2] ?? 100_000);
const cacheMaxEntries = Number(process.argv[3] ?? 100_000);
const AUDIENCE = 'kube-vertex-proxy';

async function settledHeap() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}
const mib = (bytes) => Number((bytes / 1024 / 1024).toFixed(2));

const issuer = await startIssuer({ kind: 'kubernetes', algorithm: 'ES256' });
const verifier = new TokenVerifier({
  issuers: [
    {
      name: 'cluster',
      type: 'kubernetes',
      issuer: issuer.issuer,
      audiences: [AUDIENCE],
      jwksUri: undefined,
      algorithms: ['ES256'],
      maxTokenLifetimeSec: 48 * 3600,
    },
  ],
  clockSkewSec: 30,
  cacheMaxEntries,
  negativeTtlMs: 10_000,
  jwksRefreshIntervalMs: 600_000,
  jwksMinRefreshIntervalMs: 30_000,
  jwksFetchTimeoutMs: 5_000,
});
await verifier.start();

const outcomes = new Map();
async function run(label, mint) {
  const before = await settledHeap();
  const fetchesBefore = issuer.jwksRequests;
  const started = Date.now();
  outcomes.clear();
  // Batches, so the test itself never holds more than a batch of tokens.
  for (let done = 0; done < n; done += 500) {
    const batch = Array.from({ length: Math.min(500, n - done) }, (_, i) => mint(done + i));
    const results = await Promise.allSettled(batch.map((t) => verifier.verify(t)));
    for (const r of results) {
      const key = r.status === 'fulfilled' ? 'accepted' : `${r.reason.httpStatus} ${r.reason.reason}`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
  }
  const after = await settledHeap();
  const row = {
    phase: label,
    tokens: n,
    seconds: Number(((Date.now() - started) / 1000).toFixed(1)),
    heapBeforeMiB: mib(before),
    heapAfterMiB: mib(after),
    heapDeltaMiB: mib(after - before),
    cacheEntries: verifier.cacheSize,
    badTokenEntries: verifier.negativeCacheSize,
    jwksFetches: issuer.jwksRequests - fetchesBefore,
    outcomes: Object.fromEntries(outcomes),
  };
  console.log(JSON.stringify(row));
  return row;
}

const baseline = await settledHeap();
console.log(JSON.stringify({ n, cacheMaxEntries, baselineHeapMiB: mib(baseline) }));
// One service account per phase: every token is still distinct (a random jti each), and the
// stand-in issuer does not grow a per-account table that would be counted as the verifier's.
await run('valid', () => issuer.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'valid', audience: AUDIENCE }));
await run('invalid-signature', () => issuer.mintWithForeignKey({ namespace: 'ml', serviceAccount: 'forged', audience: AUDIENCE }));
await run('random-kid', () =>
  issuer.mintKubernetesToken({ namespace: 'ml', serviceAccount: 'random-kid', audience: AUDIENCE, header: { kid: randomUUID() } }),
);
const end = await settledHeap();
console.log(
  JSON.stringify({ totalHeapDeltaMiB: mib(end - baseline), cacheEntries: verifier.cacheSize, badTokenEntries: verifier.negativeCacheSize }),
);
verifier.stop();
await issuer.close();
