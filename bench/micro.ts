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
 * Streaming accounting: the usage meter over a 200-event streamGenerateContent
 * SSE answer, one chunk per event as the stand-in sends it, usage in the last
 * event (what the forwarder's tap does for every such stream).
 */
function usageMeterSse(quick: boolean): MicroResult {
  const text = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. '.repeat(2);
  const chunks = Array.from({ length: 200 }, (_, i) =>
    Buffer.from(
      `data: ${JSON.stringify({
        candidates: [{ content: { role: 'model', parts: [{ text }] }, ...(i === 199 ? { finishReason: 'STOP' } : {}) }],
        ...(i === 199 ? { usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 3000, totalTokenCount: 3005, trafficType: 'ON_DEMAND' } } : {}),
        modelVersion: 'gemini-2.5-flash',
        createTime: '2026-12-04T10:00:00.000000Z',
        responseId: 'abcdefghijklmnopqrstuvw',
      })}\r\n\r\n`,
    ),
  );
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  const ops = quick ? 200 : 2000;
  const perOpUs = timeLoop(ops, 5, () => {
    const meter = createUsageMeter('gemini-sse');
    for (const chunk of chunks) meter.push(chunk);
    if (meter.finish().tokens?.total !== 3005) throw new Error('usage meter lost the usage');
  });
  return { id: 'usage-meter-sse-200', title: `Usage accounting of one 200-event SSE stream (${Math.round(bytes / 1024)} KiB), per stream`, perOpUs, ops, bytes };
}

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick ?? false;
const results: MicroResult[] = [];
results.push(await cacheHit(quick));
results.push(await cacheMiss('RS256', quick));
results.push(await cacheMiss('ES256', quick));
results.push(...policyEvaluation(quick));
results.push(cachedTokensMemory());
results.push(usageMeterSse(quick));
process.stdout.write(`${JSON.stringify(results)}\n`);
