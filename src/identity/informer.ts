/**
 * A LIST+WATCH informer that does not give up, and knows how old its view is.
 *
 * It lists, then watches from the list's resourceVersion (with bookmarks, so
 * the resourceVersion moves on in a quiet cluster too), resumes from the
 * last resourceVersion when a watch ends, and lists again when the API
 * server answers 410 Gone (the resourceVersion was compacted away), dropping
 * objects the new list no longer has. On any other failure (API server
 * unreachable, 5xx, 403) it starts again after an exponential backoff with
 * jitter (1 s … 10 s); any successful LIST or WATCH resets the backoff.
 * The ceiling is 10 s rather than client-go's 30 s: a refused connection
 * costs nothing, while every second after the API server is back but before
 * the retry is a second of a stale label view.
 *
 * Freshness: while a watch stream is open the view is current (age 0); once
 * it closes, the view ages from that moment until a new watch opens. Before
 * the first successful LIST the view has no age at all (not synced).
 *
 * Objects are reduced by `strip` before they are stored, so the cache holds
 * only what the proxy reads (names, UIDs, labels), not whole objects.
 *
 * In: a KubeClient, an API path, a list function. Out: callbacks per object
 * change, `synced()`, `ageMs()`. Throws nothing after construction; errors go
 * to `onError`.
 *
 * @module
 */
import { KubeApiError, type KubeClient, type KubeList, type KubeObject, type OpenedWatch } from './kube-client.js';

export type InformerChange = 'add' | 'update' | 'delete';

export interface InformerOptions<T extends KubeObject> {
  /** Resource name for logs and metrics (`namespaces`, `serviceaccounts`, `pods`). */
  readonly resource: string;
  readonly client: KubeClient;
  /** API path watched, e.g. `/api/v1/namespaces`. */
  readonly path: string;
  readonly list: () => Promise<KubeList<T>>;
  /** Bounds the wait for a WATCH's answer, as `list` bounds a LIST (kubernetes.apiTimeout). */
  readonly watchOpenTimeoutMs: number;
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

const keyOf = (o: KubeObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export class ResilientInformer<T extends KubeObject> {
  readonly #options: InformerOptions<T>;
  readonly #now: () => number;
  readonly #cache = new Map<string, T>();
  #resourceVersion: string | undefined;
  #stopped = true;
  #synced = false;
  #watchOpen = false;
  #watch: OpenedWatch | undefined;
  /** When the view was last known to be current (a watch open or just closed). */
  #freshAt = 0;
  #failures = 0;
  /** 410s in a row: a second one without a watch in between waits like a failure (no relist loop). */
  #gone = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #generation = 0;

  constructor(options: InformerOptions<T>) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Starts listing and watching; resolves after the first attempt (successful or not). */
  async start(): Promise<void> {
    if (!this.#stopped) return;
    this.#stopped = false;
    await this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#generation++;
    this.#watchOpen = false;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    this.#watch?.stop();
    this.#watch = undefined;
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
    return this.#cache.get(`${namespace ?? ''}/${name}`);
  }

  /** Number of cached objects. */
  size(): number {
    return this.#cache.size;
  }

  /** Every cached object (as stripped). */
  list(): readonly T[] {
    return [...this.#cache.values()];
  }

  /** One attempt: LIST when there is no resourceVersion to resume from, then WATCH. */
  async #run(): Promise<void> {
    const generation = this.#generation;
    try {
      if (this.#resourceVersion === undefined) await this.#relist();
      if (this.#stopped || generation !== this.#generation) return;
      await this.#openWatch(generation);
    } catch (error) {
      if (this.#stopped || generation !== this.#generation) return;
      if (error instanceof KubeApiError && error.statusCode === 410) this.#expired(error);
      else this.#failed(error);
    }
  }

  async #relist(): Promise<void> {
    this.#options.onRelist?.();
    const result = await this.#options.list();
    if (this.#stopped) return;
    this.#failures = 0;
    const seen = new Set<string>();
    for (const item of result.items) {
      const object = this.#options.strip(item);
      const key = keyOf(object);
      seen.add(key);
      const existed = this.#cache.has(key);
      this.#cache.set(key, object);
      this.#options.onChange(existed ? 'update' : 'add', object);
    }
    // Deleted while no watch was open (the 410 case): the new list is the truth.
    for (const [key, object] of this.#cache)
      if (!seen.has(key)) {
        this.#cache.delete(key);
        this.#options.onChange('delete', object);
      }
    this.#resourceVersion = result.metadata?.resourceVersion;
  }

  async #openWatch(generation: number): Promise<void> {
    let expired: KubeApiError | undefined;
    let failure: KubeApiError | undefined;
    const query: Record<string, string> = {
      allowWatchBookmarks: 'true',
      // Randomized like client-go's reflector, so replicas do not all re-watch at once.
      timeoutSeconds: String(300 + Math.floor(Math.random() * 300)),
      ...(this.#resourceVersion === undefined ? {} : { resourceVersion: this.#resourceVersion }),
    };
    const watch = await this.#options.client.watch(
      this.#options.path,
      query,
      (type, raw) => {
        this.#options.onEvent?.(type);
        const rv = (raw as KubeObject).metadata?.resourceVersion;
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
          const object = this.#options.strip(raw as T);
          const key = keyOf(object);
          if (type === 'DELETED') {
            if (this.#cache.delete(key)) this.#options.onChange('delete', object);
          } else {
            const existed = this.#cache.has(key);
            this.#cache.set(key, object);
            this.#options.onChange(existed ? 'update' : 'add', object);
          }
          this.#gone = 0;
          if (rv !== undefined) this.#resourceVersion = rv;
        } else if (type === 'BOOKMARK') {
          if (rv !== undefined) this.#resourceVersion = rv;
        } else if (type === 'ERROR') {
          const status = raw as { code?: unknown; reason?: unknown };
          const code = typeof status.code === 'number' ? status.code : 500;
          const error = new KubeApiError(
            `WATCH ${this.#options.path}: ERROR event ${String(code)}${typeof status.reason === 'string' ? ` ${status.reason}` : ''}`,
            code,
            typeof status.reason === 'string' ? status.reason : undefined,
          );
          if (code === 410) expired = error;
          else failure = error;
        }
      },
      (error) => {
        if (this.#watch === watch) this.#watch = undefined;
        this.#watchClosed();
        if (this.#stopped || generation !== this.#generation) return;
        if (expired) this.#expired(expired);
        else if (error !== undefined || failure !== undefined) this.#failed(error ?? failure);
        // A watch that ended on its own (its timeout, the server closing it) resumes from where it was at once.
        else void this.#run();
      },
      this.#options.watchOpenTimeoutMs,
    );
    if (this.#stopped || generation !== this.#generation) {
      watch.stop();
      return;
    }
    this.#watch = watch;
    this.#watchOpened();
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

  /** 410 Gone: the resourceVersion is no longer in the API server's history; list again (at once the first time). */
  #expired(error: KubeApiError): void {
    this.#resourceVersion = undefined;
    if (++this.#gone > 1) {
      this.#failed(error);
      return;
    }
    void this.#run();
  }

  #failed(error: unknown): void {
    this.#watchClosed();
    if (this.#stopped) return;
    const delay = backoffDelayMs(this.#failures, this.#options.backoffInitialMs ?? 1000, this.#options.backoffMaxMs ?? 10_000);
    this.#failures++;
    this.#options.onError?.(error, delay);
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    const generation = this.#generation;
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopped || generation !== this.#generation) return;
      this.#options.onRestart?.();
      void this.#run();
    }, delay);
    this.#restartTimer.unref();
  }
}

/**
 * The wait before the next attempt after `failures` failures in a row
 * (0 for the first): `initialMs` doubling per failure up to `maxMs`, then a
 * uniformly random point in the upper half of that, so never more than
 * `maxMs`. Jitter keeps a fleet of replicas from reconnecting in lockstep
 * after an API server restart. `random` is Math.random's range, [0, 1).
 */
export function backoffDelayMs(failures: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(failures, 16));
  return Math.round(base / 2 + random() * (base / 2));
}

/**
 * LIST of metadata only (`PartialObjectMetadataList`): names, UIDs, labels,
 * resourceVersion, no specs. What UID revocation needs for pods, at a
 * fraction of the bytes of full objects.
 *
 * @throws KubeApiError on a non-200 answer (410 makes the informer relist).
 */
export function listMetadata(client: KubeClient, path: string, timeoutMs: number): Promise<KubeList<KubeObject>> {
  return client.get<KubeList<KubeObject>>(
    path,
    timeoutMs,
    'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json',
  );
}
