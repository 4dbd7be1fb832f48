import { describe, expect, it } from 'vitest';
import { createEndpointHosts, dedicatedOrigin, type EndpointLookup } from './endpoint-hosts.js';
import type { Operation } from './operation-types.js';

const E = 'projects/p/locations/us-central1/endpoints';
function op(id: string, verb = 'predict'): Operation {
  return {
    spec: {
      id: `endpoints.${verb}`,
      permission: verb === 'get' ? 'aiplatform.endpoints.get' : 'aiplatform.endpoints.predict',
    } as Operation['spec'],
    version: 'v1',
    project: 'p',
    location: 'us-central1',
    resource: `${E}/${id}`,
    methodName: 'm',
  };
}

function fakeLookup(answers: Record<string, string | undefined | Error>) {
  const calls: string[] = [];
  const lookup: EndpointLookup = (endpoint) => {
    calls.push(endpoint);
    const answer = answers[endpoint.split('/').at(-1) as string];
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve({ dedicatedEndpointDns: answer });
  };
  return { lookup, calls };
}

describe('dedicatedOrigin', () => {
  it('accepts a DNS name (with or without https://), refuses anything else', () => {
    expect(dedicatedOrigin('1.us-central1-123.prediction.vertexai.goog', 'https:')).toBe(
      'https://1.us-central1-123.prediction.vertexai.goog',
    );
    expect(dedicatedOrigin('https://1.us-central1-123.prediction.vertexai.goog', 'https:')).toBe(
      'https://1.us-central1-123.prediction.vertexai.goog',
    );
    for (const bad of ['evil.com/path', 'user@host', 'a b', '', 'http://x']) expect(dedicatedOrigin(bad, 'https:')).toBeUndefined();
  });
});

describe('createEndpointHosts', () => {
  it(
    'only prediction calls of endpoints move; pinned hosts win; lookups cached for the ttl, refreshed in the background ' + 'after 80%',
    async () => {
      let now = 0;
      const { lookup, calls } = fakeLookup({ '1': 'one.example.goog', '2': undefined });
      const hosts = createEndpointHosts({
        pinned: new Map([[`${E}/9`, 'https://psc.internal']]),
        lookup,
        ttlMs: 1000,
        maxEntries: 10,
        timeoutMs: 1000,
        protocol: 'https:',
        now: () => now,
      });
      expect(hosts.originFor(op('1', 'get'))).toBeUndefined();
      expect(hosts.originFor(op('9'))).toBe('https://psc.internal');
      expect(await hosts.originFor(op('1'))).toBe('https://one.example.goog');
      expect(await hosts.originFor(op('2'))).toBeUndefined();
      expect(hosts.originFor(op('1'))).toBe('https://one.example.goog');
      expect(calls).toHaveLength(2);
      now = 850; // past 80%: the cached answer is used and a refresh starts
      expect(hosts.originFor(op('1'))).toBe('https://one.example.goog');
      expect(calls).toHaveLength(3);
      await new Promise((r) => setTimeout(r, 0));
      now = 1500; // the refreshed entry (fetched at 850) is still fresh
      expect(hosts.originFor(op('1'))).toBe('https://one.example.goog');
      expect(calls).toHaveLength(3);
    },
  );

  it('never routes to a looked-up host outside the allowed domain', async () => {
    const { lookup } = fakeLookup({ '5': 'attacker.example.com', '6': '6.us-central1-1.prediction.vertexai.goog' });
    const results: string[] = [];
    const hosts = createEndpointHosts({
      pinned: new Map(),
      lookup,
      ttlMs: 1000,
      maxEntries: 10,
      timeoutMs: 1000,
      protocol: 'https:',
      allowedHost: (h) => h.endsWith('.prediction.vertexai.goog'),
      onLookup: (r) => results.push(r),
    });
    expect(await hosts.originFor(op('5'))).toBeUndefined();
    expect(await hosts.originFor(op('6'))).toBe('https://6.us-central1-1.prediction.vertexai.goog');
    expect(results).toEqual(['error', 'dedicated']);
  });

  it('a failed or slow lookup sends the call to the regional host; the cache is bounded', async () => {
    const { lookup } = fakeLookup({ '3': new Error('unavailable') });
    const hang: EndpointLookup = () => new Promise(() => undefined);
    const failing = createEndpointHosts({ pinned: new Map(), lookup, ttlMs: 1000, maxEntries: 10, timeoutMs: 1000, protocol: 'https:' });
    expect(await failing.originFor(op('3'))).toBeUndefined();
    const slow = createEndpointHosts({ pinned: new Map(), lookup: hang, ttlMs: 1000, maxEntries: 10, timeoutMs: 20, protocol: 'https:' });
    expect(await slow.originFor(op('4'))).toBeUndefined();
    const many = fakeLookup({});
    const bounded = createEndpointHosts({
      pinned: new Map(),
      lookup: many.lookup,
      ttlMs: 60_000,
      maxEntries: 2,
      timeoutMs: 1000,
      protocol: 'https:',
    });
    for (const id of ['a', 'b', 'c']) await bounded.originFor(op(id));
    await bounded.originFor(op('a'));
    expect(many.calls).toHaveLength(4); // 'a' was dropped as the oldest
  });
});
