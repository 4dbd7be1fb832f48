/**
 * Limits shared across replicas on a real Redis (Debian's redis-server,
 * started here on a free loopback port): two proxy processes hold one limit
 * at its configured total, not twice it; with Redis stopped mid-run,
 * `failClosed` refuses (503) and `failOpen` admits, each says so once in the
 * log and in `kube_vertex_proxy_limit_store_available`, and enforcement
 * resumes by itself when Redis is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataEnv } from '../../dev/standins/metadata.js';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { awayFromMinuteEdge, expectLimitRefusal, metricValue, WAITS_FOR_MINUTE_EDGE } from '../helpers/limits.js';
import { LOCATION, PROJECT, startWorld, type World } from '../helpers/world.js';

const MODEL = `/v1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.5-flash`;
const PROMPT = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'one two three four' }] }] });

let redis: TestRedis;
let world: World;
let second: ProxyProcess | undefined;
let worldConfig: Record<string, unknown>;

function limitsConfig(onUnavailable: 'failClosed' | 'failOpen', keyPrefix: string) {
  return {
    store: { type: 'redis', url: redis.url, keyPrefix, onUnavailable, timeout: '200ms' },
    rules: [
      { id: 'shared-rpm', subjects: { namespaces: ['ml'] }, permissions: ['generate'], requestsPerMinute: 10 },
      { id: 'shared-tokens', subjects: { namespaces: ['ml'] }, permissions: ['generate'], tokensPerMinute: 1_000_000 },
    ],
  };
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const storeAvailable = async (proxy: ProxyProcess) =>
  metricValue(await (await fetch(`${proxy.adminUrl}/metrics`)).text(), 'kube_vertex_proxy_limit_store_available');

beforeAll(async () => {
  redis = await startTestRedis();
  world = await startWorld({
    config: (defaults) => {
      worldConfig = { ...defaults, limits: limitsConfig('failClosed', 'kvp-test-shared:') };
      return worldConfig;
    },
  });
  // The second replica: the same config, the same stand-ins, the same Redis.
  second = await startProxyProcess({ config: worldConfig, env: metadataEnv(world.metadata) });
});
afterAll(async () => {
  await second?.stop();
  await world?.close();
  await redis?.stop();
});

describe('a limit shared by two proxy processes on one Redis', () => {
  it('admits the configured total across both replicas, not twice it', WAITS_FOR_MINUTE_EDGE, async () => {
    await waitFor(
      async () => (await storeAvailable(world.proxy)) === 1 && (await storeAvailable(second as ProxyProcess)) === 1,
      'both replicas connected to Redis',
    );
    await awayFromMinuteEdge();
    const token = world.token();
    const call = (proxy: ProxyProcess) =>
      fetch(`${proxy.dataUrl}${MODEL}:generateContent`, {
        method: 'POST',
        body: PROMPT,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      });
    // 20 calls at once, alternating replicas: each replica alone would admit 10.
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => call(i % 2 === 0 ? world.proxy : (second as ProxyProcess))));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10);
    const refusal = responses.find((r) => r.status === 429) as Response;
    await expectLimitRefusal(refusal, 'shared-rpm', 'namespace ml', 'requestsPerMinute 10');
    for (const r of responses) if (!r.bodyUsed) await r.arrayBuffer();
    // Tokens were charged in Redis by both replicas: 10 answers of 15 tokens.
    await waitFor(async () => {
      const keys = await redis.command('KEYS', 'kvp-test-shared:shared-tokens:*');
      return keys !== '';
    }, 'the token counter');
    const minute = Math.floor(Date.now() / 60_000);
    await waitFor(
      async () => (await redis.command('GET', `kvp-test-shared:shared-tokens:ns/ml:tpm:m${minute}`)) === '150',
      'all tokens charged',
    );
  });
});

describe('Redis stopped mid-run', () => {
  it('failClosed: requests under a limit get 503, logged once; enforcement resumes when Redis is back', WAITS_FOR_MINUTE_EDGE, async () => {
    await awayFromMinuteEdge(30);
    await redis.command('FLUSHALL');
    await redis.pause();
    await waitFor(async () => (await storeAvailable(world.proxy)) === 0, 'the outage to show in the metric');
    for (let i = 0; i < 3; i++) {
      const response = await world.call(`${MODEL}:generateContent`, { body: PROMPT });
      expect(response.status).toBe(503);
      expect(
        ((await response.json()) as { error: { details: Array<{ metadata?: { code?: string } }> } }).error.details[0]?.metadata?.code,
      ).toBe('ERR_LIMIT_STORE_UNAVAILABLE');
    }
    // Calls no limit applies to are not affected.
    expect(
      (
        await world.call(`/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890:predict`, {
          body: JSON.stringify({ instances: [1] }),
        })
      ).status,
    ).toBe(200);
    const outageLines = world.proxy.lines.filter((l) => typeof l.message === 'string' && l.message.startsWith('limit store unavailable'));
    expect(outageLines).toHaveLength(1);
    await redis.start();
    await waitFor(async () => (await storeAvailable(world.proxy)) === 1, 'Redis to be seen again');
    expect((await world.call(`${MODEL}:generateContent`, { body: PROMPT })).status).toBe(200);
    expect(world.proxy.lines.some((l) => l.message === 'limit store available again; limits enforced')).toBe(true);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.errorCode === 'ERR_LIMIT_STORE_UNAVAILABLE');
    expect(entry.kubeVertexProxy.limitRules).toEqual(['shared-rpm', 'shared-tokens']);
  });

  it(
    'failOpen: requests are admitted uncounted while Redis is down, and counted again once it is back',
    WAITS_FOR_MINUTE_EDGE,
    async () => {
      await (second as ProxyProcess).stop();
      second = await startProxyProcess({
        config: { ...worldConfig, limits: limitsConfig('failOpen', 'kvp-test-open:') },
        env: metadataEnv(world.metadata),
      });
      const open = second;
      await waitFor(async () => (await storeAvailable(open)) === 1, 'the failOpen replica connected');
      await awayFromMinuteEdge(30);
      await redis.pause();
      await waitFor(async () => (await storeAvailable(open)) === 0, 'the outage to show in the metric');
      const token = world.token();
      const call = () =>
        fetch(`${open.dataUrl}${MODEL}:generateContent`, {
          method: 'POST',
          body: PROMPT,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        });
      // More than the limit, all admitted: nothing can count them.
      for (let i = 0; i < 12; i++) expect((await call()).status).toBe(200);
      expect(open.lines.filter((l) => typeof l.message === 'string' && l.message.startsWith('limit store unavailable'))).toHaveLength(1);
      const metrics = await (await fetch(`${open.adminUrl}/metrics`)).text();
      expect(metricValue(metrics, 'kube_vertex_proxy_limit_decisions_total{rule="shared-rpm",result="store_unavailable"}')).toBe(12);
      await redis.start();
      await waitFor(async () => (await storeAvailable(open)) === 1, 'Redis to be seen again');
      // Counting resumes: the limit of 10 holds again.
      const statuses: number[] = [];
      for (let i = 0; i < 11; i++) statuses.push((await call()).status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(10);
      expect(statuses[10]).toBe(429);
    },
  );
});
