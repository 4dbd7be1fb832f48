import { afterEach, describe, expect, it, vi } from 'vitest';
import { backoffDelayMs, ResilientInformer } from './informer.js';
import { KubeApiError, type KubeClient, type KubeList, type KubeObject, type WatchEventHandler } from './kube-client.js';

describe('backoffDelayMs', () => {
  it('doubles from the initial wait to the ceiling and stays there', () => {
    const upper = (failures: number) => backoffDelayMs(failures, 1000, 10_000, () => 1);
    expect([0, 1, 2, 3, 4, 5, 20, 1000].map(upper)).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000]);
  });

  it('jitters within the upper half of each step, never past the ceiling', () => {
    expect(backoffDelayMs(0, 1000, 10_000, () => 0)).toBe(500);
    expect(backoffDelayMs(3, 1000, 10_000, () => 0)).toBe(4000);
    expect(backoffDelayMs(30, 1000, 10_000, () => 0)).toBe(5000);
    expect(backoffDelayMs(30, 1000, 10_000, () => 0.999_999)).toBe(10_000);
    expect(backoffDelayMs(2, 1000, 10_000, () => 0.5)).toBe(3000);
  });
});

interface FakeWatch {
  readonly query: Record<string, string>;
  readonly onEvent: WatchEventHandler;
  readonly done: (error?: unknown) => void;
  readonly openTimeoutMs: number | undefined;
  stopped: boolean;
}

/** A KubeClient whose LISTs answer from a queue and whose WATCHes the test drives by hand. */
function fakeClient(lists: Array<KubeList<KubeObject>>) {
  const watches: FakeWatch[] = [];
  let listCalls = 0;
  const client: KubeClient = {
    server: 'https://fake',
    get: () => Promise.reject(new Error('not used')),
    post: () => Promise.reject(new Error('not used')),
    watch: (_path, query, onEvent, done, openTimeoutMs) => {
      const watch: FakeWatch = { query, onEvent, done, openTimeoutMs, stopped: false };
      watches.push(watch);
      return Promise.resolve({ stop: () => (watch.stopped = true) });
    },
    close: () => Promise.resolve(),
  };
  const list = () => {
    const next = lists[listCalls++];
    return next === undefined ? Promise.reject(new Error('no more lists')) : Promise.resolve(next);
  };
  return { client, list, watches, lists: () => listCalls };
}

const ns = (name: string, rv: string): KubeObject & Record<string, unknown> => ({
  metadata: { name, resourceVersion: rv, labels: { team: name } },
});
const settle = () => new Promise((resolve) => setImmediate(resolve));

function informerOf(fake: ReturnType<typeof fakeClient>, errors: Array<{ error: unknown; delay: number }> = []) {
  return new ResilientInformer<KubeObject>({
    resource: 'namespaces',
    client: fake.client,
    path: '/api/v1/namespaces',
    list: fake.list,
    watchOpenTimeoutMs: 7000,
    strip: (o) => o,
    onChange: () => undefined,
    onError: (error, delay) => errors.push({ error, delay }),
  });
}

describe('ResilientInformer recovery', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('lists, then watches from the list with bookmarks and a bounded open', async () => {
    const fake = fakeClient([{ metadata: { resourceVersion: '10' }, items: [ns('ml', '5')] }]);
    const informer = informerOf(fake);
    await informer.start();
    expect(fake.lists()).toBe(1);
    expect(fake.watches).toHaveLength(1);
    expect(fake.watches[0]?.query).toMatchObject({ resourceVersion: '10', allowWatchBookmarks: 'true' });
    expect(fake.watches[0]?.openTimeoutMs).toBe(7000);
    expect(informer.watching()).toBe(true);
    informer.stop();
  });

  it('resumes a watch that ended on its own from its last resourceVersion, without a LIST or a wait', async () => {
    const fake = fakeClient([{ metadata: { resourceVersion: '10' }, items: [] }]);
    const informer = informerOf(fake);
    await informer.start();
    fake.watches[0]?.onEvent('ADDED', ns('web', '11'));
    fake.watches[0]?.onEvent('BOOKMARK', { metadata: { resourceVersion: '15' } });
    fake.watches[0]?.done();
    await settle();
    expect(fake.lists()).toBe(1);
    expect(fake.watches).toHaveLength(2);
    expect(fake.watches[1]?.query.resourceVersion).toBe('15');
    informer.stop();
  });

  it('lists again at once on 410 Gone, drops what the new list no longer has, and watches from the new list', async () => {
    const fake = fakeClient([
      { metadata: { resourceVersion: '10' }, items: [ns('ml', '5'), ns('gone', '6')] },
      { metadata: { resourceVersion: '40' }, items: [ns('ml', '5'), ns('new', '30')] },
    ]);
    const errors: Array<{ error: unknown; delay: number }> = [];
    const informer = informerOf(fake, errors);
    await informer.start();
    fake.watches[0]?.onEvent('ERROR', { kind: 'Status', code: 410, reason: 'Expired' });
    fake.watches[0]?.done();
    await settle();
    // No backoff timer: the relist and the new watch happened without any time passing.
    expect(errors).toEqual([]);
    expect(fake.lists()).toBe(2);
    expect(fake.watches[1]?.query.resourceVersion).toBe('40');
    expect(
      informer
        .list()
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(['ml', 'new']);
    informer.stop();
  });

  it('a 410 on opening the watch (an HTTP 410 answer) relists at once too', async () => {
    const fake = fakeClient([
      { metadata: { resourceVersion: '10' }, items: [] },
      { metadata: { resourceVersion: '40' }, items: [] },
    ]);
    let first = true;
    const watch = fake.client.watch.bind(fake.client);
    fake.client.watch = (...args) => {
      if (!first) return watch(...args);
      first = false;
      return Promise.reject(new KubeApiError('WATCH /api/v1/namespaces: HTTP 410 Expired', 410, 'Expired'));
    };
    const informer = informerOf(fake);
    await informer.start();
    await settle();
    expect(fake.lists()).toBe(2);
    expect(fake.watches[0]?.query.resourceVersion).toBe('40');
    informer.stop();
  });

  it('a second 410 with no change seen in between waits like a failure instead of looping on LISTs', async () => {
    vi.useFakeTimers();
    const fake = fakeClient([
      { metadata: { resourceVersion: '10' }, items: [] },
      { metadata: { resourceVersion: '20' }, items: [] },
      { metadata: { resourceVersion: '30' }, items: [] },
    ]);
    const errors: Array<{ error: unknown; delay: number }> = [];
    const informer = informerOf(fake, errors);
    await informer.start();
    for (const watch of fake.watches.slice(0, 1)) {
      watch.onEvent('ERROR', { code: 410 });
      watch.done();
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.lists()).toBe(2);
    fake.watches[1]?.onEvent('ERROR', { code: 410 });
    fake.watches[1]?.done();
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.lists()).toBe(2);
    expect(errors).toHaveLength(1);
    expect((errors[0]?.error as KubeApiError).statusCode).toBe(410);
    // The first step of the schedule: at most 1 s.
    expect(errors[0]?.delay).toBeLessThanOrEqual(1000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(fake.lists()).toBe(3);
    expect(fake.watches[2]?.query.resourceVersion).toBe('30');
    informer.stop();
  });

  it('retries an unreachable API server on the backoff schedule, never past the ceiling, resets once a watch opens', async () => {
    vi.useFakeTimers();
    const fake = fakeClient([{ metadata: { resourceVersion: '10' }, items: [] }]);
    const errors: Array<{ error: unknown; delay: number }> = [];
    const informer = informerOf(fake, errors);
    await informer.start();
    const watch = fake.client.watch.bind(fake.client);
    let refusing = true;
    fake.client.watch = (...args) =>
      refusing ? Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })) : watch(...args);
    fake.watches[0]?.done(new Error('other side closed'));
    for (let i = 0; i < 8; i++) await vi.advanceTimersByTimeAsync(10_000);
    const delays = errors.map((e) => e.delay);
    expect(delays.length).toBeGreaterThanOrEqual(8);
    expect(Math.max(...delays)).toBeLessThanOrEqual(10_000);
    // Each wait is within its step of the schedule (1, 2, 4, 8, then 10 s), in its upper half.
    delays.forEach((delay, n) => {
      const step = Math.min(10_000, 1000 * 2 ** n);
      expect(delay).toBeGreaterThanOrEqual(step / 2);
      expect(delay).toBeLessThanOrEqual(step);
    });
    // Back: the next attempt (within 10 s) resumes the watch from where it was, without a LIST.
    refusing = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(informer.watching()).toBe(true);
    expect(fake.lists()).toBe(1);
    expect(fake.watches.at(-1)?.query.resourceVersion).toBe('10');
    // And the schedule starts again at the first step.
    errors.length = 0;
    fake.watches.at(-1)?.done(new Error('other side closed'));
    expect(errors[0]?.delay).toBeLessThanOrEqual(1000);
    informer.stop();
  });
});
