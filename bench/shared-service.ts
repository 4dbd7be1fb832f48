/**
 * A service the benchmark starts for some scenarios (a Kubernetes API stand-in, PostgreSQL, Redis) and stops once,
 * after the rounds.
 *
 * Scenarios are prepared all at once (`Promise.all`), and a scenario shares its `prepare` with its open-loop variants and
 * `--baseline` twins. The earlier `if (api === undefined) api = await start()` in each prepare let every concurrent caller
 * see `undefined` and start one; the last assignment won and the others were never stopped. With `--peers`,
 * kube-rbac-proxy's second stand-in kept its listening socket open and the runner never exited. Here the first `get()`
 * starts it and every later one gets the same promise.
 *
 * @module
 */

export interface SharedService<T> {
  /** Starts the service on the first call; every call until {@link SharedService.stop} gets the same one (or the same failure). */
  get(): Promise<T>;
  /** The service once started, for code that cannot wait (a scenario's config function); undefined before and after. */
  readonly current: T | undefined;
  /**
   * Stops what `get()` started, waiting for a start still under way; nothing when nothing was started or the start failed.
   * A `get()` after it starts a new one.
   */
  stop(): Promise<void>;
  /** `get()` as a scenario's `prepare` answers: undefined once the service runs, else why it cannot (its start's error). */
  unavailable(): Promise<string | undefined>;
}

/** A start function that says why the service cannot run by returning a string (a missing package), as one that throws it. */
export function reasonAsError<T>(start: () => Promise<T | string>): () => Promise<T> {
  return async () => {
    const started = await start();
    if (typeof started === 'string') throw new Error(started);
    return started;
  };
}

export function sharedService<T>(start: () => Promise<T>, stop: (service: T) => Promise<void>): SharedService<T> {
  let starting: Promise<T> | undefined;
  let current: T | undefined;
  const get = (): Promise<T> => {
    starting ??= start().then((service) => {
      current = service;
      return service;
    });
    return starting;
  };
  return {
    get,
    unavailable: () =>
      get().then(
        () => undefined,
        (error: unknown) => (error as Error).message,
      ),
    get current() {
      return current;
    },
    async stop() {
      const pending = starting;
      starting = undefined;
      current = undefined;
      if (pending === undefined) return;
      // A failed start left nothing running (each start function cleans up after its own failure); its error was
      // already reported by the prepare that called get().
      const service = await pending.then(
        (s) => ({ s }),
        () => undefined,
      );
      if (service !== undefined) await stop(service.s);
    },
  };
}
