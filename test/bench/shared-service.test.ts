/**
 * bench/shared-service.ts: a service several scenarios' prepares ask for at the same time is started once and stopped
 * once. (Before it, `--peers` started two Kubernetes API stand-ins for kube-rbac-proxy and its open-loop variant, stopped
 * one, and the runner never exited.)
 */
import { describe, expect, it } from 'vitest';
import { startKubeApiStandIn } from '../../dev/standins/kube-api.js';
import { reasonAsError, sharedService } from '../../bench/shared-service.js';

/** A fake service whose starts and stops are counted. */
function counted(fail = false) {
  const calls = { starts: 0, stops: [] as number[] };
  const service = sharedService(
    async () => {
      const n = ++calls.starts;
      await Promise.resolve();
      if (fail) throw new Error(`start ${n} failed`);
      return n;
    },
    (n) => {
      calls.stops.push(n);
      return Promise.resolve();
    },
  );
  return { calls, service };
}

describe('sharedService', () => {
  it('starts once for concurrent callers and stops that one once', async () => {
    const { calls, service } = counted();
    expect(service.current).toBeUndefined();
    const got = await Promise.all([service.get(), service.get(), service.get()]);
    expect(got).toEqual([1, 1, 1]);
    expect(calls.starts).toBe(1);
    expect(service.current).toBe(1);
    await Promise.all([service.stop(), service.stop()]);
    expect(calls.stops).toEqual([1]);
    expect(service.current).toBeUndefined();
  });

  it('stops a start still under way once it is up', async () => {
    const { calls, service } = counted();
    const got = service.get();
    await service.stop();
    expect(await got).toBe(1);
    expect(calls.stops).toEqual([1]);
  });

  it('stops nothing when nothing was started, and starts anew after a stop', async () => {
    const { calls, service } = counted();
    await service.stop();
    expect(calls).toEqual({ starts: 0, stops: [] });
    await service.get();
    await service.stop();
    expect(await service.get()).toBe(2);
    await service.stop();
    expect(calls.stops).toEqual([1, 2]);
  });

  it('gives every caller the same failure, does not retry it, and has nothing to stop after it', async () => {
    const { calls, service } = counted(true);
    const results = await Promise.allSettled([service.get(), service.get()]);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'fulfilled'))).toEqual([
      'start 1 failed',
      'start 1 failed',
    ]);
    await expect(service.get()).rejects.toThrow('start 1 failed');
    expect(service.current).toBeUndefined();
    await service.stop();
    expect(calls).toEqual({ starts: 1, stops: [] });
  });

  it('answers a prepare: no reason once it runs, the start failure as the reason otherwise', async () => {
    expect(await counted().service.unavailable()).toBeUndefined();
    expect(await counted(true).service.unavailable()).toBe('start 1 failed');
  });

  it('turns a reason returned by a start function (a missing package) into that failure', async () => {
    const missing = sharedService(
      reasonAsError(() => Promise.resolve<number | string>('redis-server is not installed')),
      () => Promise.resolve(),
    );
    expect(await missing.unavailable()).toBe('redis-server is not installed');
    expect(missing.current).toBeUndefined();
    const running = sharedService(
      reasonAsError(() => Promise.resolve<number | string>(7)),
      () => Promise.resolve(),
    );
    expect(await running.get()).toBe(7);
  });

  it('leaves no listening socket of a Kubernetes API stand-in asked for twice at once', async () => {
    const listening = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
    const before = listening();
    const api = sharedService(startKubeApiStandIn, (s) => s.close());
    const [a, b] = await Promise.all([api.get(), api.get()]);
    expect(a).toBe(b);
    expect(listening()).toBe(before + 1);
    await api.stop();
    // The handle is released in the close phase of the loop iteration, which follows that iteration's check phase:
    // the second setImmediate runs in the next iteration, after it (libuv's order, not a delay).
    await new Promise((r) => setImmediate(() => setImmediate(r)));
    expect(listening()).toBe(before);
  });
});
