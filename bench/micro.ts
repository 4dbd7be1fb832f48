/**
 * In-process micro-benchmarks of the hot-path pieces, with the real modules:
 * a token-cache hit through `TokenVerifier.cached`, a cache miss (RS256 and
 * ES256, through `TokenVerifier.verify`, with its parts and concurrent misses:
 * micro-authn.ts), policy
 * evaluation over 10,000 rules and 10,000 namespaces (`compilePolicy`), the
 * heap taken by 100,000 cached principals (`TokenCache`), request
 * classification over the whole generated operation table (`classify`), the
 * per-request work of tracing at ratio 0.01 (the OpenTelemetry SDK), and the
 * job conditions on a 64 KiB CustomJob body (`extractJobFacts`, `checkJobConditions`).
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
import { startIssuer, type IssuerAlgorithm } from '../dev/standins/issuer.js';
import { classify } from '../src/vertex/classify.js';
import { KNOWN_PERMISSIONS, OPERATIONS, OPERATION_BINDINGS } from '../src/vertex/operation-table.js';
import { checkJobConditions, compileJobConditions } from '../src/policy/job-conditions.js';
import { extractJobFacts } from '../src/policy/job-spec.js';
import { generatePolicy, POLICY_LOCATION, POLICY_PROJECT } from './policy-fixture.js';
import { cacheMiss, concurrentMiss, signatureBreakdown } from './micro-authn.js';
import { pino } from 'pino';
import { createOtelTracing } from '../src/tracing/otel.js';
import { resolveTracingSettings, type TracingSettings } from '../src/tracing/settings.js';
import { createUsageMeter } from '../src/usage/usage.js';
import { readTopLevelMembers } from '../src/inspect/top-level.js';
import { startVertexStandIn } from '../dev/standins/vertex.js';

export interface MicroResult {
  readonly id: string;
  readonly title: string;
  /** Per operation, µs (median of the repetitions). */
  readonly perOpUs?: number;
  readonly ops?: number;
  readonly bytes?: number;
  readonly note?: string;
  /**
   * Per operation, µs of process CPU (user + system, every thread: the libuv
   * pool included), median of the repetitions. Robust on a busy machine,
   * where wall-clock per operation also counts waiting for a core.
   */
  readonly cpuUsPerOp?: number;
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
  const mint = (i: number) =>
    issuer.mintKubernetesToken({ namespace: 'ml', serviceAccount: `sa-${i % 50}`, audience: AUDIENCE, podName: `pod-${i}` });
  return {
    verifier,
    mint,
    close: async () => {
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

function policyEvaluation(quick: boolean): MicroResult[] {
  const { rules, namespaces } = generatePolicy(10_000, 10_000);
  const t0 = process.hrtime.bigint();
  const { policy, problems } = compilePolicy(rules, {
    knownPermissions: KNOWN_PERMISSIONS,
    projects: [POLICY_PROJECT],
    locations: [POLICY_LOCATION],
  });
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

/**
 * `classify` over the whole generated table: a request path from every
 * binding of both versions (short predicts and deep tensorboard, feature
 * store and long-running-operation paths alike), cycling.
 */
function classification(quick: boolean): MicroResult {
  const requests = OPERATION_BINDINGS.flatMap((binding) =>
    binding.versions.map((version) => {
      const resource = binding.resource.replace(/\{([a-zA-Z]+)\}/g, (_, name: string) =>
        name === 'project' ? POLICY_PROJECT : name === 'location' ? POLICY_LOCATION : `${name}-1234567890`,
      );
      const path =
        `/${version}${resource === '' ? '' : '/'}${resource}${binding.suffix === undefined ? '' : `/${binding.suffix}`}` +
        (binding.verb === undefined ? '' : `:${binding.verb}`);
      return [binding.spec.httpMethod, binding.verb === 'streamGenerateContent' ? `${path}?alt=sse` : path] as const;
    }),
  );
  let classified = 0;
  const ops = quick ? 50_000 : 500_000;
  // CPU time beside the wall clock: on a shared machine the wall clock mostly measures the other processes.
  const cpuBefore = process.cpuUsage();
  const perOpUs = timeLoop(ops, 5, (i) => {
    const [method, url] = requests[i % requests.length] as (typeof requests)[number];
    classify(method, url);
    classified++;
  });
  const cpu = process.cpuUsage(cpuBefore);
  const cpuPerOpUs = Math.round(((cpu.user + cpu.system) / (ops * 5)) * 1000) / 1000;
  return {
    id: 'classify-table',
    title: `Request classification (classify) over every binding of the generated table, ${requests.length} paths cycling`,
    perOpUs,
    ops,
    note: `${OPERATIONS.length} operations; ${classified === ops * 5 ? 'all classified' : 'some refused'}; CPU ${cpuPerOpUs} µs/op`,
  };
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

/** What tracing on at ratio 0.01 adds to a request: its server span, the upstream span (when sampled), the traceparent. */
async function tracingPerRequest(quick: boolean): Promise<MicroResult> {
  const logger = pino({ level: 'silent' });
  const settings = resolveTracingSettings(
    { enabled: true, endpoint: 'http://127.0.0.1:9', sampleRatio: 0.01, resourceAttributes: {} },
    {},
  ) as TracingSettings;
  const tracing = createOtelTracing(settings, logger);
  const headers = { host: 'proxy', 'content-type': 'application/json', 'content-length': '97' };
  const perOpUs = timeLoop(quick ? 50_000 : 300_000, 5, () => {
    const span = tracing.startRequest(headers, 'POST');
    const upstream = span.sampled ? span.child('POST endpoints.predict', 'client', { 'http.request.method': 'POST' }) : span;
    upstream.inject({ host: 'vertex' });
    if (span.sampled) {
      upstream.end();
      span.end();
    }
  });
  await tracing.shutdown();
  return {
    id: 'tracing-1pct',
    title: 'Tracing on, sampleRatio 0.01: server span, upstream span when sampled, traceparent injected (per request)',
    perOpUs,
  };
}

/**
 * What a job-creating request costs the job-conditions step: a 64 KiB CustomJob
 * (four worker pools with long argument and environment lists, as real
 * training jobs carry) parsed once (`JSON.parse`, as the inspect step does),
 * its facts extracted and a rule's nine conditions checked.
 */
function jobBodyCheck(quick: boolean): MicroResult {
  const env = (p: number) =>
    Array.from({ length: 40 }, (_, i) => ({
      name: `TRAINING_SETTING_${p}_${i}`,
      value: `gs://bucket-${p}/datasets/part-${i}/shard-${'0'.repeat(20)}`,
    }));
  const args = (p: number) => Array.from({ length: 120 }, (_, i) => `--hyperparameter-${p}-${i}=${i * 0.001}`);
  const pool = (p: number) => ({
    machineSpec: { machineType: 'g2-standard-8', acceleratorType: 'NVIDIA_L4', acceleratorCount: 1 },
    replicaCount: '1',
    diskSpec: { bootDiskType: 'pd-ssd', bootDiskSizeGb: 100 },
    containerSpec: {
      imageUri: 'us-docker.pkg.dev/my-proj/training/trainer@sha256:' + 'a'.repeat(64),
      command: ['python', '-m', 'trainer.task'],
      args: args(p),
      env: env(p),
    },
  });
  const job = {
    displayName: 'bench-job',
    jobSpec: {
      workerPoolSpecs: [pool(0), pool(1), pool(2), pool(3)],
      serviceAccount: 'trainer@my-proj.iam.gserviceaccount.com',
      network: 'projects/123456789012/global/networks/ml',
    },
    labels: { team: 'ml' },
    encryptionSpec: { kmsKeyName: 'projects/my-proj/locations/us-central1/keyRings/r/cryptoKeys/k' },
  };
  let text = JSON.stringify(job);
  // Pad to exactly 64 KiB with a long description, so the size is what the title says.
  text = JSON.stringify({ ...job, description: '' }).replace(
    '"description":""',
    `"description":"${'x'.repeat(64 * 1024 - text.length - '"description":"",'.length)}"`,
  );
  const bytes = Buffer.from(text);
  if (bytes.length !== 64 * 1024) throw new Error(`bench job is ${bytes.length} bytes, not 64 KiB`);
  const conditions = compileJobConditions({
    serviceAccounts: ['trainer@my-proj.iam.gserviceaccount.com'],
    machineTypes: ['g2-standard-*'],
    acceleratorTypes: ['NVIDIA_L4'],
    maxAccelerators: 4,
    maxReplicas: 10,
    images: ['us-docker.pkg.dev/my-proj/training/*'],
    networks: ['projects/123456789012/global/networks/ml'],
    requireEncryptionSpec: true,
    requireLabels: ['team'],
  });
  let violations = 0;
  // Quick mode only shows the step works: a few hundred bodies.
  const ops = quick ? 300 : 20_000;
  const perOpUs = timeLoop(ops, 5, () => {
    violations += checkJobConditions(conditions, extractJobFacts('customJob', JSON.parse(bytes.toString('utf8'))), 'ml-training').length;
  });
  // Wall-clock time counts other processes' turns on a shared machine; CPU time of this process does not.
  const cpuBefore = process.cpuUsage();
  for (let i = 0; i < ops; i++)
    violations += checkJobConditions(conditions, extractJobFacts('customJob', JSON.parse(bytes.toString('utf8'))), 'ml-training').length;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuUs = Math.round(((cpu.user + cpu.system) / ops) * 1000) / 1000;
  const parsed: unknown = JSON.parse(text);
  const extractUs = timeLoop(quick ? ops : ops * 10, 5, () => {
    violations += checkJobConditions(conditions, extractJobFacts('customJob', parsed), 'ml-training').length;
  });
  if (violations !== 0) throw new Error('the bench job should pass its conditions');
  return {
    id: 'job-body-64k',
    title: 'Job conditions on a 64 KiB CustomJob: JSON.parse + job facts + 9 conditions',
    perOpUs,
    ops,
    bytes: bytes.length,
    note: `CPU time ${cpuUs} µs per body (wall-clock above); facts + conditions alone, body already parsed: ${extractUs} µs`,
  };
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
    const response = await fetch(
      `${standIn.url}/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse`,
      {
        method: 'POST',
        headers: { authorization: 'Bearer x', 'content-type': 'application/json' },
        body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Stream two hundred chunks.' }] }] }),
      },
    );
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
  return {
    id: 'usage-meter-sse-200',
    title: `Usage accounting of the sse-200 stream (${chunks.length} chunks, ${Math.round(bytes / 1024)} KiB), CPU µs per stream`,
    perOpUs,
    ops,
    bytes,
  };
}

/**
 * The inspect step on a 1 MiB generateContent body (one inline image) whose
 * only rule is the body-resource check of `cachedContent`: what it costs now
 * (top-level.ts: the body checked byte by byte, only `cachedContent` parsed)
 * and what `JSON.parse` of the whole body cost before, in CPU time per body.
 */
function inspectBigBody(quick: boolean): MicroResult {
  const bytes = Buffer.from(
    JSON.stringify({
      contents: [
        { role: 'user', parts: [{ text: 'Describe this.' }, { inlineData: { mimeType: 'image/png', data: 'QUJD'.repeat(256 * 1024) } }] },
      ],
      cachedContent: 'cachedContents/c1',
    }),
  );
  const members = new Set(['model', 'cachedContent', 'baseModel', 'deployedModel']);
  const ops = quick ? 20 : 400;
  const cpuPer = (body: () => unknown): number => {
    for (let i = 0; i < ops / 4; i++) body();
    const per: number[] = [];
    for (let r = 0; r < 3; r++) {
      const before = process.cpuUsage();
      for (let i = 0; i < ops; i++) body();
      const used = process.cpuUsage(before);
      per.push((used.user + used.system) / ops);
    }
    return Math.round(median(per));
  };
  const read = () => {
    if (readTopLevelMembers(bytes, members)?.cachedContent !== 'cachedContents/c1') throw new Error('cachedContent not read');
  };
  const perOpUs = cpuPer(read);
  const parseUs = cpuPer(() => (JSON.parse(bytes.toString('utf8')) as { cachedContent: string }).cachedContent);
  return {
    id: 'inspect-body-1mib',
    title: 'Inspect step, 1 MiB generateContent body, body-resource rule: top-level members read (CPU µs per body)',
    perOpUs,
    ops,
    bytes: bytes.length,
    note: `JSON.parse of the whole body, as before: ${parseUs} µs`,
  };
}

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick;
const results: MicroResult[] = [];
results.push(await cacheHit(quick));
results.push(await cacheMiss('RS256', quick));
results.push(await cacheMiss('ES256', quick));
results.push(await concurrentMiss(quick));
results.push(...(await signatureBreakdown('RS256', quick)));
results.push(...(await signatureBreakdown('ES256', quick)));
results.push(...policyEvaluation(quick));
results.push(cachedTokensMemory());
results.push(classification(quick));
results.push(await tracingPerRequest(quick));
results.push(jobBodyCheck(quick));
results.push(await usageMeterSse(quick));
results.push(inspectBigBody(quick));
process.stdout.write(`${JSON.stringify(results)}\n`);
