/**
 * Limit rules on one replica (memory store): each kind of limit refuses with
 * 429 RESOURCE_EXHAUSTED, QuotaFailure, RetryInfo and Retry-After; the refusal
 * is audited with the rule; dry-run rules count but refuse nothing; buckets
 * are per namespace or per service account; scopes follow policy syntax.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCATION, PROJECT, startWorld, type World } from '../helpers/world.js';
import { awayFromMinuteEdge, expectLimitRefusal, metricValue, WAITS_FOR_MINUTE_EDGE } from '../helpers/limits.js';
import { runCli, writeConfig } from '../helpers/proxy-process.js';

const MODEL = `/v1/projects/${PROJECT}/locations/${LOCATION}/publishers/google/models`;
const PROMPT = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'one two three four' }] }] });
const PREDICT = `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890:predict`;

let world: World;
beforeAll(async () => {
  world = await startWorld({
    config: (defaults) => ({
      ...defaults,
      kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' }, web: { team: 'web' }, labs: { team: 'ml' } } },
      limits: {
        rules: [
          // Per service account, predict only: 3 requests a minute.
          { id: 'predict-rpm', subjects: { namespaces: ['ml'] }, permissions: ['predict'], per: 'serviceAccount', requestsPerMinute: 3 },
          // Tokens per namespace, on one model only: each answer is 15 tokens (4 prompt + 11 candidates).
          {
            id: 'flash-tokens',
            subjects: { namespaces: ['ml'] },
            permissions: ['generate'],
            resources: [`projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.5-flash`],
            tokensPerDay: 40,
          },
          // One request in flight per namespace on the pro model.
          {
            id: 'pro-concurrency',
            subjects: { namespaces: ['ml'] },
            resources: [`projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.5-pro`],
            concurrentRequests: 1,
          },
          // Dry-run: would allow 1 token a day on the whole namespace labs.
          {
            id: 'labs-dry',
            mode: 'dryRun',
            subjects: { namespaceSelector: { matchLabels: { team: 'ml' } } },
            permissions: ['generate'],
            tokensPerDay: 1,
            requestsPerMinute: 1,
          },
        ],
      },
    }),
  });
});
afterAll(async () => {
  await world?.close();
});

describe('limits on one replica', () => {
  it(
    'requestsPerMinute per service account: the fourth predict in a minute is refused, another service account is not',
    WAITS_FOR_MINUTE_EDGE,
    async () => {
      await awayFromMinuteEdge();
      const predict = (sa: string) => world.call(PREDICT, { body: JSON.stringify({ instances: [1] }), token: world.token('ml', sa) });
      for (let i = 0; i < 3; i++) expect((await predict('trainer')).status).toBe(200);
      const refused = await predict('trainer');
      const { retryAfter } = await expectLimitRefusal(refused, 'predict-rpm', 'service account ml/trainer', 'requestsPerMinute 3');
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect((await predict('scorer')).status).toBe(200);
      const entry = await world.proxy.waitForAudit(
        (e) => e.kubeVertexProxy.status === 429 && e.kubeVertexProxy.limitRule === 'predict-rpm',
      );
      expect(entry.kubeVertexProxy.errorCode).toBe('ERR_LIMIT_EXCEEDED');
      expect(entry.kubeVertexProxy.decision).toBe('allow');
      expect(entry.kubeVertexProxy.limitRules).toEqual(['predict-rpm']);
      // Nothing refused was forwarded: 3 + 1 predicts reached the stand-in.
      expect(world.vertex.requests.filter((r) => r.url === PREDICT)).toHaveLength(4);
    },
  );

  it('tokensPerDay: charged when each response ends, checked before the next; another model is not counted', async () => {
    const flash = () => world.call(`${MODEL}/gemini-2.5-flash:generateContent`, { body: PROMPT });
    expect((await flash()).status).toBe(200); // 15 charged
    expect((await flash()).status).toBe(200); // 30
    // 45: admitted at 30, never cut
    expect((await world.call(`${MODEL}/gemini-2.5-flash:streamGenerateContent?alt=sse`, { body: PROMPT })).status).toBe(200);
    await world.proxy.waitForAudit(
      (e) => e.kubeVertexProxy.operation === 'publisherModels.streamGenerateContent' && e.kubeVertexProxy.tokens?.total === 15,
    );
    const refused = await flash();
    const { retryAfter } = await expectLimitRefusal(refused, 'flash-tokens', 'namespace ml', 'tokensPerDay 40');
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    // Same namespace, another service account: one bucket per namespace.
    expect(
      (await world.call(`${MODEL}/gemini-2.5-flash:generateContent`, { body: PROMPT, token: world.token('ml', 'scorer') })).status,
    ).toBe(429);
    // The limit's scope is one model.
    expect((await world.call(`${MODEL}/gemini-2.5-flash-lite:generateContent`, { body: PROMPT })).status).toBe(200);
  });

  it('concurrentRequests: a second call while one is in flight is refused; the slot is freed when the first ends', async () => {
    world.vertex.hangNext();
    const abort = new AbortController();
    const first = world.call(`${MODEL}/gemini-2.5-pro:generateContent`, { body: PROMPT, signal: abort.signal }).catch(() => undefined);
    // Wait until the hung request reached the stand-in (so it holds the slot).
    const deadline = Date.now() + 5000;
    while (!world.vertex.requests.some((r) => r.url.includes('gemini-2.5-pro')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const refused = await world.call(`${MODEL}/gemini-2.5-pro:generateContent`, { body: PROMPT });
    await expectLimitRefusal(refused, 'pro-concurrency', 'namespace ml', 'concurrentRequests 1');
    abort.abort();
    await first;
    await world.proxy.waitForAudit((e) => e.kubeVertexProxy.path.includes('gemini-2.5-pro') && e.kubeVertexProxy.status !== 429);
    expect((await world.call(`${MODEL}/gemini-2.5-pro:generateContent`, { body: PROMPT })).status).toBe(200);
  });

  it('dry-run rules refuse nothing, but their decisions and the audit record say they would have', WAITS_FOR_MINUTE_EDGE, async () => {
    await awayFromMinuteEdge();
    for (let i = 0; i < 3; i++)
      expect(
        (await world.call(`${MODEL}/gemini-2.5-flash-lite:generateContent`, { body: PROMPT, token: world.token('labs', 'bot') })).status,
      ).toBe(200);
    const entry = await world.proxy.waitForAudit(
      (e) => e.kubeVertexProxy.namespace === 'labs' && (e.kubeVertexProxy.limitDryRun?.length ?? 0) > 0,
    );
    expect(entry.kubeVertexProxy.limitDryRun).toEqual(['labs-dry']);
    expect(entry.kubeVertexProxy.status).toBe(200);
    const metrics = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
    expect(
      metricValue(metrics, 'kube_vertex_proxy_limit_decisions_total{rule="labs-dry",result="dry_run_refused"}'),
    ).toBeGreaterThanOrEqual(2);
    expect(metricValue(metrics, 'kube_vertex_proxy_limit_decisions_total{rule="predict-rpm",result="refused"}')).toBe(1);
    expect(metricValue(metrics, 'kube_vertex_proxy_limit_decisions_total{rule="flash-tokens",result="allowed"}')).toBe(3);
    expect(metricValue(metrics, 'kube_vertex_proxy_limit_remaining{rule="predict-rpm",limit="requestsPerMinute"}')).toBe(2);
    expect(metricValue(metrics, 'kube_vertex_proxy_limit_store_available')).toBe(1);
  });
});

describe('can-i', () => {
  it('reports the limits that would apply, with their bucket', { timeout: 30_000 }, async () => {
    const config = writeConfig({
      issuers: [{ name: 'cluster', type: 'kubernetes', issuer: 'https://issuer.example', audiences: ['x'] }],
      vertex: { projects: [PROJECT], locations: [LOCATION] },
      kubernetes: { namespaceLabels: 'static', static: { ml: { team: 'ml' } } },
      policy: { rules: [{ id: 'ml-generate', effect: 'allow', subjects: { namespaces: ['ml'] }, permissions: ['generate', 'predict'] }] },
      limits: {
        rules: [
          { id: 'ml-tokens', subjects: { namespaces: ['ml'] }, permissions: ['generate'], tokensPerMinute: 200000, requestsPerMinute: 600 },
          { id: 'sa-dry', mode: 'dryRun', per: 'serviceAccount', subjects: { serviceAccounts: ['ml/*'] }, concurrentRequests: 4 },
        ],
      },
    });
    const generate = await runCli([
      'can-i',
      '--config',
      config,
      '--as',
      'system:serviceaccount:ml:trainer',
      'POST',
      `${MODEL}/gemini-2.5-flash:generateContent`,
    ]);
    expect(generate.code).toBe(0);
    expect(generate.stdout).toContain('  limits:     ml-tokens (enforce, namespace ml: requestsPerMinute 600, tokensPerMinute 200000)\n');
    expect(generate.stdout).toContain('             sa-dry (dryRun, service account ml/trainer: concurrentRequests 4)\n');
    const predict = await runCli(['can-i', '--config', config, '--as', 'system:serviceaccount:ml:trainer', 'POST', PREDICT]);
    expect(predict.stdout).toContain('  limits:     sa-dry (dryRun');
    expect(predict.stdout).not.toContain('ml-tokens');
  });
});
