import { describe, expect, it } from 'vitest';
import type { LimitRule } from '../config/schema.js';
import type { PolicyAction, PolicySubject } from '../policy/decision.js';
import { Limiter, type Admission, type LimitObserver, type LimitResult, type Refusal } from './limiter.js';
import { compileLimits, windowOf } from './rules.js';
import { createMemoryStore, type LimitStore } from './store.js';

const ML: PolicySubject = { namespace: 'ml', serviceAccount: 'trainer', labels: { team: 'ml' } };
const GENERATE: PolicyAction = {
  operationId: 'publisherModels.generateContent',
  permission: 'aiplatform.endpoints.predict',
  groups: ['generate'],
  resource: 'projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash',
  project: 'p',
  location: 'us-central1',
};
const PREDICT: PolicyAction = {
  ...GENERATE,
  operationId: 'endpoints.predict',
  groups: ['predict'],
  resource: 'projects/p/locations/us-central1/endpoints/1',
};

function rules(list: Array<Partial<LimitRule> & { id: string }>) {
  const { limits, problems } = compileLimits(
    list.map((r) => ({ mode: 'enforce', per: 'namespace', subjects: { namespaces: ['ml'] }, ...r })),
    { knownPermissions: new Set(['aiplatform.endpoints.predict']), projects: ['p'], locations: ['us-central1'] },
  );
  expect(problems).toEqual([]);
  return limits;
}

function recorder(): LimitObserver & { decisions: Array<[string, LimitResult]>; failures: number } {
  const decisions: Array<[string, LimitResult]> = [];
  const self = {
    decisions,
    failures: 0,
    decision: (rule: string, result: LimitResult) => void decisions.push([rule, result]),
    remaining: () => undefined,
    settleFailed: () => void (self.failures += 1),
  };
  return self;
}

/** A clock at 2026-12-04T10:00:10Z, moved by the test. */
function clock(start = Date.UTC(2026, 11, 4, 10, 0, 10)) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

async function admit(
  limiter: Limiter,
  action: PolicyAction = GENERATE,
  subject: PolicySubject = ML,
  id = Math.random().toString(36),
): Promise<Admission | Refusal> {
  return limiter.admit(limiter.applicable(subject, action), subject, id);
}

const refused = (outcome: Admission | Refusal): Refusal => {
  expect('error' in outcome).toBe(true);
  return outcome as Refusal;
};
const admitted = (outcome: Admission | Refusal): Admission => {
  expect('error' in outcome).toBe(false);
  return outcome as Admission;
};

describe('Limiter (memory store)', () => {
  it('tokensPerMinute: checked against what is charged, charged at the end, a new minute starts afresh', async () => {
    const c = clock();
    const limiter = new Limiter({
      rules: rules([{ id: 'tpm', tokensPerMinute: 100 }]),
      store: createMemoryStore(c.now),
      onUnavailable: 'failClosed',
      observer: recorder(),
      now: c.now,
    });
    admitted(await admit(limiter)).settle(60);
    admitted(await admit(limiter)).settle(60); // 120: the admitted request is never cut
    const refusal = refused(await admit(limiter));
    expect(refusal.error.httpStatus).toBe(429);
    expect(refusal.error.headers).toEqual({ 'retry-after': '50' });
    expect(refusal.error.details).toEqual([
      {
        '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
        violations: [{ subject: 'limit tpm, namespace ml', description: 'tokensPerMinute 100 exhausted' }],
      },
      { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '50s' },
    ]);
    c.advance(50_000);
    admitted(await admit(limiter));
  });

  it('tokensPerMonth: the calendar month in UTC; Retry-After runs to the first of the next month', async () => {
    const c = clock(Date.UTC(2026, 11, 31, 23, 59, 0));
    const limiter = new Limiter({
      rules: rules([{ id: 'month', tokensPerMonth: 10 }]),
      store: createMemoryStore(c.now),
      onUnavailable: 'failClosed',
      observer: recorder(),
      now: c.now,
    });
    admitted(await admit(limiter)).settle(10);
    expect(refused(await admit(limiter)).error.headers).toEqual({ 'retry-after': '60' });
    c.advance(60_000);
    admitted(await admit(limiter));
    expect(windowOf('tokensPerMonth', Date.UTC(2026, 1, 10))).toEqual({ id: 'M2026-2', endMs: Date.UTC(2026, 2, 1) });
  });

  it('requestsPerMinute and concurrentRequests count at admission; a refused request counts nowhere', async () => {
    const c = clock();
    const limiter = new Limiter({
      rules: rules([{ id: 'rpm', requestsPerMinute: 2, concurrentRequests: 1 }]),
      store: createMemoryStore(c.now),
      onUnavailable: 'failClosed',
      observer: recorder(),
      now: c.now,
    });
    const first = admitted(await admit(limiter));
    expect(refused(await admit(limiter)).rule).toBe('rpm'); // concurrency
    first.settle(0);
    admitted(await admit(limiter)).settle(0);
    const third = refused(await admit(limiter)); // rpm: the refused one above did not count
    expect(third.error.message).toContain('requestsPerMinute 2');
  });

  it('every matching rule applies; scopes follow policy syntax; buckets per service account', async () => {
    const limiter = new Limiter({
      rules: rules([
        { id: 'generate-only', permissions: ['generate'], per: 'serviceAccount', requestsPerMinute: 1 },
        { id: 'other-namespace', subjects: { namespaces: ['web'] }, requestsPerMinute: 1 },
      ]),
      store: createMemoryStore(),
      onUnavailable: 'failClosed',
      observer: recorder(),
    });
    expect(limiter.applicable(ML, PREDICT)).toEqual([]);
    expect(limiter.applicable(ML, GENERATE).map((r) => r.id)).toEqual(['generate-only']);
    admitted(await admit(limiter));
    refused(await admit(limiter));
    admitted(await admit(limiter, GENERATE, { ...ML, serviceAccount: 'scorer' }));
  });

  it('dry-run rules never refuse but report it; an enforced refusal counts nothing for them either', async () => {
    const observer = recorder();
    const limiter = new Limiter({
      rules: rules([{ id: 'dry', mode: 'dryRun', requestsPerMinute: 1 }]),
      store: createMemoryStore(),
      onUnavailable: 'failClosed',
      observer,
    });
    admitted(await admit(limiter));
    const second = admitted(await admit(limiter));
    expect(second.dryRunRefusals).toEqual(['dry']);
    expect(observer.decisions).toEqual([
      ['dry', 'allowed'],
      ['dry', 'dry_run_refused'],
    ]);
  });
});

describe('Limiter when the store cannot answer', () => {
  const broken: LimitStore = {
    kind: 'redis',
    acquire: () => Promise.reject(new Error('connection refused')),
    settle: () => Promise.reject(new Error('connection refused')),
    available: () => false,
    close: async () => undefined,
  };

  it('failClosed refuses with 503 UNAVAILABLE (nothing about the store reaches the caller)', async () => {
    const observer = recorder();
    const limiter = new Limiter({
      rules: rules([{ id: 'tpm', tokensPerMinute: 100 }]),
      store: broken,
      onUnavailable: 'failClosed',
      observer,
    });
    const refusal = refused(await admit(limiter));
    expect(refusal.error.code).toBe('ERR_LIMIT_STORE_UNAVAILABLE');
    expect(refusal.error.httpStatus).toBe(503);
    expect(refusal.error.expose).toBe(false);
    expect(observer.decisions).toEqual([['tpm', 'store_unavailable']]);
  });

  it('failOpen admits uncounted, and a failed settle is counted', async () => {
    const observer = recorder();
    const limiter = new Limiter({
      rules: rules([{ id: 'tpm', tokensPerMinute: 100 }]),
      store: broken,
      onUnavailable: 'failOpen',
      observer,
    });
    admitted(await admit(limiter)).settle(10);
    await new Promise((r) => setImmediate(r));
    expect(observer.failures).toBe(1);
  });
});

describe('compileLimits', () => {
  it('reports problems with limits.rules paths: no limit, unknown group, no subject, duplicate id', () => {
    const { problems } = compileLimits(
      [
        { id: 'a', mode: 'enforce', per: 'namespace', subjects: { namespaces: ['ml'] } },
        { id: 'a', mode: 'enforce', per: 'namespace', subjects: {}, permissions: ['generat'], requestsPerMinute: 1 },
      ] as LimitRule[],
      { knownPermissions: new Set(['aiplatform.endpoints.predict']), projects: ['p'], locations: ['l'] },
    );
    const paths = problems.map((p) => p.path);
    expect(paths).toContain('limits.rules[0]');
    expect(paths).toContain('limits.rules[1].id');
    expect(paths).toContain('limits.rules[1].subjects');
    expect(paths).toContain('limits.rules[1].permissions[0]');
  });
});
