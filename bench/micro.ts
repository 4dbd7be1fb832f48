/**
 * In-process micro-benchmarks of the hot-path pieces, with the real modules:
 * a token-cache hit through `TokenVerifier.cached`, a cache miss (RS256 and
 * ES256 signature checks with jose, through `TokenVerifier.verify`), policy
 * evaluation over 10,000 rules and 10,000 namespaces (`compilePolicy`), and
 * the heap taken by 100,000 cached principals (`TokenCache`).
 *
 * Run as its own process (`--expose-gc`, pinned by the orchestrator); prints
 * one JSON {@link MicroResults} line on stdout.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { parseArgs } from 'node:util';
import type { IssuerSettings } from '../src/config/load.js';
import { toKubernetesPrincipal } from '../src/authn/claims.js';
import type { Principal } from '../src/authn/principal.js';
import { TokenCache, tokenKey } from '../src/authn/token-cache.js';
import { TokenVerifier } from '../src/authn/verifier.js';
import { compilePolicy } from '../src/policy/compile.js';
import { actionOf } from '../src/policy/decision.js';
import { startIssuer, type IssuerAlgorithm } from '../src/standins/issuer.js';
import { classify } from '../src/vertex/classify.js';
import { KNOWN_PERMISSIONS } from '../src/vertex/operations.js';
import { generatePolicy, POLICY_LOCATION, POLICY_PROJECT } from './policy-fixture.js';
import { createUsageMeter } from '../src/usage/usage.js';
import { startVertexStandIn } from '../src/standins/vertex.js';

export interface MicroResult {
  readonly id: string;
  readonly title: string;
  /** Per operation, µs (median of the repetitions). */
  readonly perOpUs?: number;
  readonly ops?: number;
  readonly bytes?: number;
  readonly note?: string;
}

const AUDIENCE = 'kube-vertex-proxy';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Runs `body` `ops` times per repetition; the median per-op µs. */
function timeLoop(ops: number, repetitions: number, body: (i: number) => void): number {
  const per: number[] = [];
  for (let r = 0; r < repetitions; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) body(i);
    per.push(Number(process.hrtime.bigint() - t0) / 1000 / ops);
  }
  return Math.round(median(per) * 1000) / 1000;
}

function issuerSettings(issuer: string, jwksUri: string): IssuerSettings {
  return {
    name: 'cluster',
    type: 'kubernetes',
    issuer,
    audiences: [AUDIENCE],
    jwksUri,
    algorithms: ['RS256', 'ES256'],
    maxTokenLifetimeSec: 48 * 3600,
  } as unknown as IssuerSettings;
}

async function verifierFor(algorithm: IssuerAlgorithm) {
  const issuer = await startIssuer({ kind: 'kubernetes', algorithm });
  const verifier = new TokenVerifier({
    issuers: [issuerSettings(issuer.issuer, issuer.jwksUri)],
    clockSkewSec: 30,
    cacheMaxEntries: 100_000,
    negativeTtlMs: 10_000,
    jwksRefreshIntervalMs: 3_600_000,
    jwksMinRefreshIntervalMs: 30_000,
    jwksFetchTimeoutMs: 5_000,
  });
  await verifier.start();
  const mint = (i: number) => issuer.mintKubernetesToken({ namespace: 'ml', serviceAccount: `sa-${i % 50}`, audience: AUDIENCE, podName: `pod-${i}` });
  return {
    verifier,
    mint,
    async close() {
      verifier.stop();
      await issuer.close();
    },
  };
}

async function cacheHit(quick: boolean): Promise<MicroResult> {
  const { verifier, mint, close } = await verifierFor('RS256');
  const token = mint(0);
  await verifier.verify(token);
  const ops = quick ? 50_000 : 300_000;
  let misses = 0;
  const perOpUs = timeLoop(ops, 5, () => {
    if (verifier.cached(token) === undefined) misses++;
  });
  await close();
  if (misses > 0) throw new Error('cache hit benchmark missed the cache');
  return { id: 'token-cache-hit', title: 'Token-cache hit (SHA-256 of a ~1 KiB token + LRU lookup), TokenVerifier.cached', perOpUs, ops };
}

async function cacheMiss(algorithm: IssuerAlgorithm, quick: boolean): Promise<MicroResult> {
  const { verifier, mint, close } = await verifierFor(algorithm);
  const count = quick ? 200 : algorithm === 'RS256' ? 2000 : 4000;
  const tokens = Array.from({ length: count + 50 }, (_, i) => mint(i));
  // Warm jose and the key import on tokens that are not measured.
  for (const t of tokens.slice(count)) await verifier.verify(t);
  const per: number[] = [];
  const chunk = count / 5;
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = r * chunk; i < (r + 1) * chunk; i++) await verifier.verify(tokens[i] as string);
    per.push(Number(process.hrtime.bigint() - t0) / 1000 / chunk);
  }
  await close();
  return {
    id: `token-cache-miss-${algorithm.toLowerCase()}`,
    title: `Token-cache miss, ${algorithm}: full verification with jose (signature, claims, principal), TokenVerifier.verify`,
    perOpUs: Math.round(median(per) * 10) / 10,
    ops: count,
  };
}

function policyEvaluation(quick: boolean): MicroResult[] {
  const { rules, namespaces } = generatePolicy(10_000, 10_000);
  const t0 = process.hrtime.bigint();
  const { policy, problems } = compilePolicy(rules, { knownPermissions: KNOWN_PERMISSIONS, projects: [POLICY_PROJECT], locations: [POLICY_LOCATION] });
  const compileMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (problems.length > 0) throw new Error(`generated policy has problems: ${problems[0]?.message}`);
  const names = Object.keys(namespaces);
  const subjects = names.map((ns) => ({ namespace: ns, serviceAccount: 'trainer', labels: namespaces[ns] }));
  const operation = classify('POST', `/v1/projects/${POLICY_PROJECT}/locations/${POLICY_LOCATION}/endpoints/1234567890:predict`);
  const action = actionOf(operation);
  let allowed = 0;
  const ops = quick ? 50_000 : 500_000;
  const perOpUs = timeLoop(ops, 5, (i) => {
    if (policy.evaluate(subjects[i % subjects.length] as (typeof subjects)[number], action).allowed) allowed++;
  });
  return [
    {
      id: 'policy-evaluate-10k',
      title: 'Policy evaluation, 10,000 rules × 10,000 namespaces (compilePolicy → evaluate), subjects cycling',
      perOpUs,
      ops,
      note: `${allowed > 0 ? 'allows and denies' : 'denies only'}; compile ${Math.round(compileMs)} ms`,
    },
  ];
}

function cachedTokensMemory(): MicroResult {
  const entries = 100_000;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return { id: 'token-cache-memory-100k', title: '100,000 cached tokens: heap', note: 'needs --expose-gc' };
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const cache = new TokenCache<Principal>(entries);
  const now = Date.now();
  // Distinct, realistic entries: a SHA-256 key and the principal a real token's claims would give.
  for (let i = 0; i < entries; i++) {
    const ns = `ns-${i % 1000}`;
    const sa = `sa-${i % 37}`;
    // Claims arrive as JSON.parse output of the token payload (flat strings), as jose hands them over.
    const claims = JSON.parse(
      JSON.stringify({
        sub: `system:serviceaccount:${ns}:${sa}`,
        exp: Math.floor(now / 1000) + 3600,
        jti: randomUUID(),
        'kubernetes.io': { namespace: ns, serviceaccount: { name: sa, uid: randomUUID() }, pod: { name: `${sa}-${i}`, uid: randomUUID() } },
      }),
    ) as JWTPayload;
    const principal = toKubernetesPrincipal(claims, 'cluster');
    cache.set(tokenKey(`${randomUUID()}.${i}.${randomUUID()}`), principal, principal.expiresAt);
  }
  gc();
  gc();
  const bytes = process.memoryUsage().heapUsed - before;
  return { id: 'token-cache-memory-100k', title: '100,000 cached tokens (keys + principals + LRU map): heap', bytes, ops: cache.size };
}

/**
 * Streaming accounting: the usage meter over exactly what the sse-200
 * scenario streams (a 200-message streamGenerateContent?alt=sse answer of
 * the stand-in, captured chunk by chunk as it arrives), per stream. Measured
 * in CPU time (process.cpuUsage), like the scenarios' CPU per request, so the
 * two compare on a busy machine.
 */
async function usageMeterSse(quick: boolean): Promise<MicroResult> {
  const standIn = await startVertexStandIn({ streamChunks: 200 });
  const chunks: Buffer[] = [];
  try {
    const response = await fetch(`${standIn.url}/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, {
      method: 'POST',
      headers: { authorization: 'Bearer x', 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Stream two hundred chunks.' }] }] }),
    });
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
  } finally {
    await standIn.close();
  }
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  const ops = quick ? 300 : 3000;
  const once = () => {
    const meter = createUsageMeter('gemini-sse');
    for (const chunk of chunks) meter.push(chunk);
    if (meter.finish().tokens?.total === undefined) throw new Error('usage meter lost the usage');
  };
  for (let i = 0; i < ops / 3; i++) once();
  const per: number[] = [];
  for (let r = 0; r < 5; r++) {
    const before = process.cpuUsage();
    for (let i = 0; i < ops; i++) once();
    const used = process.cpuUsage(before);
    per.push((used.user + used.system) / ops);
  }
  const perOpUs = Math.round(median(per) * 10) / 10;
  return { id: 'usage-meter-sse-200', title: `Usage accounting of the sse-200 stream (${chunks.length} chunks, ${Math.round(bytes / 1024)} KiB), CPU µs per stream`, perOpUs, ops, bytes };
}

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick ?? false;
const results: MicroResult[] = [];
results.push(await cacheHit(quick));
results.push(await cacheMiss('RS256', quick));
results.push(await cacheMiss('ES256', quick));
results.push(...policyEvaluation(quick));
results.push(cachedTokensMemory());
results.push(await usageMeterSse(quick));
process.stdout.write(`${JSON.stringify(results)}\n`);
