/**
 * Micro-benchmarks of a token-cache miss (issue 17, "cheaper misses"): where
 * the time of a never-seen token goes, and what concurrent misses of one token
 * cost. Run by micro.ts, in its process.
 *
 * - `token-cache-miss-rs256` / `-es256`: the whole miss through
 *   `TokenVerifier.verify` (parse, KeyObject for the `kid`, signature, claims,
 *   principal, cache insert), one token after the other; wall-clock µs per
 *   token, with the process CPU per token in the note (the thread pool
 *   included, where WebCrypto would run).
 * - `jwt-verify-jose-*`: jose's `jwtVerify` with the key already imported
 *   (signature through WebCrypto, then claims): what a miss cost before the
 *   signature moved to node:crypto.
 * - `signature-crypto-*`: `checkJwsSignature` alone (node:crypto on a cached
 *   KeyObject): the floor of any miss.
 * - `token-cache-miss-rs256-concurrent-32`: 32 concurrent `verify` calls of
 *   one new token (a cold start: one pod's requests, all with the same
 *   rotated token), µs per request; single-flight makes it one verification.
 *
 * @module
 */
import { createPublicKey } from 'node:crypto';
import { jwtVerify } from 'jose';
import type { IssuerSettings } from '../src/config/load.js';
import { checkJwsSignature } from '../src/authn/signature.js';
import { TokenVerifier } from '../src/authn/verifier.js';
import { startIssuer, type IssuerAlgorithm, type IssuerStandIn } from '../dev/standins/issuer.js';
import type { MicroResult } from './micro.js';

const AUDIENCE = 'kube-vertex-proxy';
const CONCURRENCY = 32;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

const round1 = (v: number) => Math.round(v * 10) / 10;

function issuerSettings(issuer: IssuerStandIn): IssuerSettings {
  return {
    name: 'cluster',
    type: 'kubernetes',
    issuer: issuer.issuer,
    audiences: [AUDIENCE],
    jwksUri: issuer.jwksUri,
    algorithms: ['RS256', 'ES256'],
    maxTokenLifetimeSec: 48 * 3600,
  } as unknown as IssuerSettings;
}

async function withVerifier<T>(
  algorithm: IssuerAlgorithm,
  body: (verifier: TokenVerifier, issuer: IssuerStandIn, mint: (i: number) => string) => Promise<T>,
): Promise<T> {
  const issuer = await startIssuer({ kind: 'kubernetes', algorithm });
  const verifier = new TokenVerifier({
    issuers: [issuerSettings(issuer)],
    clockSkewSec: 30,
    cacheMaxEntries: 100_000,
    negativeTtlMs: 10_000,
    jwksRefreshIntervalMs: 3_600_000,
    jwksMinRefreshIntervalMs: 30_000,
    jwksFetchTimeoutMs: 5_000,
  });
  await verifier.start();
  const mint = (i: number) =>
    issuer.mintKubernetesToken({
      namespace: 'ml',
      serviceAccount: `sa-${String(i % 50)}`,
      audience: AUDIENCE,
      podName: `pod-${String(i)}`,
    });
  try {
    return await body(verifier, issuer, mint);
  } finally {
    verifier.stop();
    await issuer.close();
  }
}

/**
 * Runs `op` over `items` in 5 chunks, awaiting each; the median chunk's wall
 * and CPU µs per item (after a warm-up on items that are not measured).
 */
async function measure<T>(items: readonly T[], warmup: number, op: (item: T) => unknown): Promise<{ wallUs: number; cpuUs: number }> {
  for (const item of items.slice(0, warmup)) await op(item);
  const measured = items.slice(warmup);
  const chunk = Math.floor(measured.length / 5);
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < 5; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (const item of measured.slice(r * chunk, (r + 1) * chunk)) await op(item);
    wall.push(Number(process.hrtime.bigint() - t0) / 1000 / chunk);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / chunk);
  }
  return { wallUs: round1(median(wall)), cpuUs: round1(median(cpu)) };
}

/** The whole miss through TokenVerifier.verify. */
export async function cacheMiss(algorithm: IssuerAlgorithm, quick: boolean): Promise<MicroResult> {
  return withVerifier(algorithm, async (verifier, _issuer, mint) => {
    const count = quick ? 200 : algorithm === 'RS256' ? 2000 : 4000;
    const tokens = Array.from({ length: count + 50 }, (_, i) => mint(i));
    const { wallUs, cpuUs } = await measure(tokens, 50, (t) => verifier.verify(t));
    return {
      id: `token-cache-miss-${algorithm.toLowerCase()}`,
      title:
        `Token-cache miss, ${algorithm}: full verification (node:crypto signature on the kid's KeyObject, claims, ` +
        `principal), TokenVerifier.verify`,
      perOpUs: wallUs,
      cpuUsPerOp: cpuUs,
      ops: count,
      note: `process CPU ${String(cpuUs)} µs per token`,
    };
  });
}

/** jose's jwtVerify vs node:crypto alone, on the same tokens and key. */
export async function signatureBreakdown(algorithm: IssuerAlgorithm, quick: boolean): Promise<MicroResult[]> {
  return withVerifier(algorithm, async (_verifier, issuer, mint) => {
    const count = quick ? 200 : 2000;
    const tokens = Array.from({ length: count + 50 }, (_, i) => mint(i));
    const key = createPublicKey({ key: issuer.currentKey.jwk, format: 'jwk' });
    const options = {
      issuer: issuer.issuer,
      audience: [AUDIENCE],
      algorithms: [algorithm],
      clockTolerance: 30,
      requiredClaims: ['exp', 'iat', 'sub', 'aud'],
    };
    const jose = await measure(tokens, 50, (t) => jwtVerify(t, key, options));
    const crypto = await measure(tokens, 50, (t) => {
      if (checkJwsSignature(t, algorithm, key) !== undefined) throw new Error('signature-crypto benchmark: a valid token failed');
    });
    const a = algorithm.toLowerCase();
    return [
      {
        id: `jwt-verify-jose-${a}`,
        title: `jose jwtVerify, ${algorithm}, key imported (WebCrypto signature + claims): the signature check before issue 17`,
        perOpUs: jose.wallUs,
        cpuUsPerOp: jose.cpuUs,
        ops: count,
        note: `process CPU ${String(jose.cpuUs)} µs per token`,
      },
      {
        id: `signature-crypto-${a}`,
        title: `node:crypto verify, ${algorithm}, cached KeyObject (checkJwsSignature): the floor of a miss`,
        perOpUs: crypto.wallUs,
        cpuUsPerOp: crypto.cpuUs,
        ops: count,
        note: `process CPU ${String(crypto.cpuUs)} µs per token`,
      },
    ];
  });
}

/** 32 concurrent verify() calls of one new token, per request. */
export async function concurrentMiss(quick: boolean): Promise<MicroResult> {
  return withVerifier('RS256', async (verifier, _issuer, mint) => {
    const count = quick ? 50 : 500;
    const tokens = Array.from({ length: count + 10 }, (_, i) => mint(i));
    const before = verifier.stats.verifications;
    const { wallUs, cpuUs } = await measure(tokens, 10, (t) => Promise.all(Array.from({ length: CONCURRENCY }, () => verifier.verify(t))));
    const verifications = verifier.stats.verifications - before;
    if (verifications !== tokens.length)
      throw new Error(`concurrent-miss benchmark: ${String(verifications)} verifications for ${String(tokens.length)} tokens`);
    return {
      id: `token-cache-miss-rs256-concurrent-${String(CONCURRENCY)}`,
      title: `Token-cache miss, RS256, ${String(CONCURRENCY)} concurrent requests with the same new token (single-flight), per request`,
      perOpUs: round1(wallUs / CONCURRENCY),
      cpuUsPerOp: round1(cpuUs / CONCURRENCY),
      ops: count * CONCURRENCY,
      note: `one verification per token; process CPU ${String(round1(cpuUs / CONCURRENCY))} µs per request`,
    };
  });
}
