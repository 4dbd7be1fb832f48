/**
 * A LIST+WATCH informer that does not give up, and knows how old its view is.
 *
 * Built on `@kubernetes/client-node`'s `ListWatch` (what `makeInformer`
 * returns): it lists, then watches from the list's resourceVersion, resumes
 * from the last resourceVersion when a watch ends, and relists on 410. Two
 * things it does not do are added here:
 *
 * - **Restart.** On any other error (API server unreachable, 5xx, 403) the
 *   client-node informer fires `error` and stops for good. This wrapper
 *   starts it again after an exponential backoff with jitter (1 s … 30 s),
 *   resuming from the last resourceVersion when it has one.
 * - **Freshness.** The watch function handed to `ListWatch` is wrapped, so
 *   the informer knows exactly when a watch stream is open. While one is
 *   open the view is current (age 0); once it closes, the view ages from
 *   that moment until a new watch opens. Before the first successful LIST
 *   the view has no age at all (not synced).
 *
 * Objects are reduced by `strip` before `ListWatch` stores them, so the cache
 * holds only what the proxy reads (names, UIDs, labels), not whole objects.
 *
 * In: a KubeConfig, an API path, a list function. Out: callbacks per object
 * change, `synced()`, `ageMs()`. Throws nothing after construction; errors go
 * to `onError`.
 *
 * @module
 */
import {
  HttpMethod,
  ListWatch,
  RequestContext,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { fetch } from 'undici';

export type InformerChange = 'add' | 'update' | 'delete';

export interface InformerOptions<T extends KubernetesObject> {
  /** Resource name for logs and metrics (`namespaces`, `serviceaccounts`, `pods`). */
  readonly resource: string;
  readonly kubeConfig: KubeConfig;
  /** API path watched, e.g. `/api/v1/namespaces`. */
  readonly path: string;
  readonly list: () => Promise<KubernetesListObject<T>>;
  /** Reduces an object to what the caller needs before it is cached. */
  readonly strip: (object: T) => T;
  readonly onChange: (change: InformerChange, object: T) => void;
  readonly onError?: (error: unknown, restartInMs: number) => void;
  readonly onSynced?: () => void;
  /** Every watch event received (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR). */
  readonly onEvent?: (type: string) => void;
  readonly onRestart?: () => void;
  readonly onRelist?: () => void;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  readonly now?: () => number;
}

type WatchFn = Watch['watch'];

export class ResilientInformer<T extends KubernetesObject> {
  readonly #options: InformerOptions<T>;
  readonly #informer: ListWatch<T>;
  readonly #now: () => number;
  #stopped = true;
  #synced = false;
  #watchOpen = false;
  /** When the view was last known to be current (a watch open or just closed). */
  #freshAt = 0;
  #failures = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #openWatch = 0;
  #size = 0;

  constructor(options: InformerOptions<T>) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const inner = new Watch(options.kubeConfig);
    const watch: WatchFn = async (path, query, callback, done) => {
      const id = ++this.#openWatch;
      let ended = false as boolean; // set by the watch callbacks
      let controller: AbortController;
      const finish = (error: unknown) => {
        ended = true;
        if (this.#openWatch === id) this.#watchClosed();
        done(error);
      };
      try {
        controller = await inner.watch(
          path,
          query,
          (type: string, object: unknown, raw: unknown) => {
            options.onEvent?.(type);
            const isObject = type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED';
            callback(type, isObject ? options.strip(object as T) : object, raw);
          },
          finish,
        );
      } catch (error) {
        // Thrown before any request (auth setup): ListWatch calls us from an un-awaited
        // callback, so a rejection here would be unhandled. Report it as a failed watch.
        finish(error);
        return new AbortController();
      }
      // `inner.watch` resolves once the status line and headers are in (or
      // after `done` already ran for a failed connect).
      if (!ended && !this.#stopped) this.#watchOpened();
      return controller;
    };
    const list = async () => {
      options.onRelist?.();
      const result = await options.list();
      return { ...result, items: ((result.items as typeof result.items | undefined) ?? []).map((item) => options.strip(item)) };
    };
    // ListWatch(path, watch, listFn, autoStart, …) is exactly what makeInformer builds, with our watch in place of a bare Watch.
    this.#informer = new ListWatch<T>(options.path, { watch } as unknown as Watch, list, false);
    this.#informer.on('add', (o) => {
      this.#size++;
      options.onChange('add', o);
    });
    this.#informer.on('update', (o) => options.onChange('update', o));
    this.#informer.on('delete', (o) => {
      this.#size--;
      options.onChange('delete', o);
    });
    this.#informer.on('error', (error) => this.#failed(error));
  }

  /** Starts listing and watching; resolves after the first attempt (successful or not). */
  async start(): Promise<void> {
    if (!this.#stopped) return;
    this.#stopped = false;
    await this.#run();
  }

  /** ListWatch reports most failures through `error`; anything it throws instead (auth setup) is handled the same way. */
  async #run(): Promise<void> {
    try {
      await this.#informer.start();
    } catch (error) {
      this.#failed(error);
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#watchOpen = false;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    void this.#informer.stop();
  }

  /** True once the first LIST succeeded and its WATCH opened (stays true: the last view keeps serving). */
  synced(): boolean {
    return this.#synced;
  }

  watching(): boolean {
    return this.#watchOpen;
  }

  /** How old the view is: 0 while a watch is open, undefined before the first sync. */
  ageMs(): number | undefined {
    if (!this.#synced) return undefined;
    return this.#watchOpen ? 0 : Math.max(0, this.#now() - this.#freshAt);
  }

  /** The cached object (as stripped), by namespace and name. */
  get(name: string, namespace?: string): T | undefined {
    return this.#informer.get(name, namespace);
  }

  /** Number of cached objects. */
  size(): number {
    return this.#size;
  }

  /** Every cached object (as stripped). */
  list(): readonly T[] {
    return this.#informer.list();
  }

  #watchOpened(): void {
    this.#watchOpen = true;
    this.#freshAt = this.#now();
    this.#failures = 0;
    if (!this.#synced) {
      this.#synced = true;
      this.#options.onSynced?.();
    }
  }

  #watchClosed(): void {
    if (this.#watchOpen) this.#freshAt = this.#now();
    this.#watchOpen = false;
  }

  #failed(error: unknown): void {
    this.#watchClosed();
    if (this.#stopped) return;
    const initial = this.#options.backoffInitialMs ?? 1000;
    const max = this.#options.backoffMaxMs ?? 30_000;
    const base = Math.min(max, initial * 2 ** Math.min(this.#failures, 16));
    this.#failures++;
    // Jitter keeps a fleet of replicas from reconnecting in lockstep after an API server restart.
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.#options.onError?.(error, delay);
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopped) return;
      this.#options.onRestart?.();
      // ListWatch.start() resumes from its last resourceVersion (and relists on 410).
      void this.#run();
    }, delay);
    this.#restartTimer.unref();
  }
}

/**
 * LIST of metadata only (`PartialObjectMetadataList`): names, UIDs, labels,
 * resourceVersion, no specs. What UID revocation needs for pods, at a
 * fraction of the bytes of full objects.
 *
 * @throws Error with `statusCode` on a non-200 answer (410 makes the informer relist).
 */
export async function listMetadata(
  kubeConfig: KubeConfig,
  path: string,
  timeoutMs: number,
): Promise<KubernetesListObject<KubernetesObject>> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const context = new RequestContext(`${cluster.server}${path}`, HttpMethod.GET);
  context.setHeaderParam('Accept', 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json');
  await kubeConfig.applySecurityAuthentication(context);
  const dispatcher = context.getDispatcher();
  const response = await fetch(context.getUrl(), {
    headers: context.getHeaders(),
    signal: AbortSignal.timeout(timeoutMs),
    ...(dispatcher ? { dispatcher } : {}),
  });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw Object.assign(new Error(`LIST ${path}: HTTP ${response.status}`), { statusCode: response.status });
  }
  return (await response.json()) as KubernetesListObject<KubernetesObject>;
}
