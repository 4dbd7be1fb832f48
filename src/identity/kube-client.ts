/**
 * The few Kubernetes API calls the proxy makes, over undici: LIST (whole
 * objects or metadata only), WATCH as a stream of events, GET, and POST of a
 * review (TokenReview, SelfSubjectAccessReview).
 *
 * Why not `@kubernetes/client-node`: importing it took about 1.3 s and 84 MiB
 * of resident memory (its generated models and API classes for every
 * resource), measured in this repository for issue 20; the proxy calls five
 * endpoints. Errors here carry the method, path and HTTP status only, never
 * a response body (a TokenReview answer echoes the token).
 *
 * In: a {@link KubeConnection} (from kube-config.ts). Out: parsed JSON.
 *
 * @module
 * @throws KubeApiError on a non-2xx answer (`statusCode`, the Status `reason`);
 *   TimeoutError past the deadline; undici's errors when the server cannot be reached.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, type Dispatcher } from 'undici';

/** How the proxy proves who it is to the API server (the kubeconfig `user` forms it supports). */
export type KubeAuth =
  | { readonly type: 'none' }
  | { readonly type: 'token'; readonly token: string }
  /** Re-read every minute: the kubelet rotates a projected service-account token in place. */
  | { readonly type: 'tokenFile'; readonly path: string }
  | { readonly type: 'basic'; readonly username: string; readonly password: string }
  | { readonly type: 'exec'; readonly exec: ExecConfig };

/**
 * A kubeconfig `exec` credential plugin (e.g. gke-gcloud-auth-plugin):
 * https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins
 */
export interface ExecConfig {
  readonly apiVersion: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: ReadonlyArray<{ readonly name: string; readonly value: string }>;
}

export interface KubeConnection {
  /** The API server's URL (may carry a path prefix). */
  readonly server: string;
  readonly ca?: string | Buffer;
  readonly insecureSkipTlsVerify?: boolean;
  readonly tlsServerName?: string;
  readonly clientCertificate?: string | Buffer;
  readonly clientKey?: string | Buffer;
  readonly auth: KubeAuth;
}

export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    message: string,
    readonly statusCode: number,
    /** The Status object's reason (`Expired`, `Forbidden`, …) when the answer had one. */
    readonly reason?: string,
  ) {
    super(message);
  }
}

export type WatchEventHandler = (type: string, object: Record<string, unknown>) => void;

export interface OpenedWatch {
  /** Ends the watch; `done` is not called after this. */
  stop(): void;
}

export interface KubeClient {
  readonly server: string;
  get<T>(path: string, timeoutMs: number, accept?: string): Promise<T>;
  post<T>(path: string, body: unknown, timeoutMs: number): Promise<T>;
  /**
   * Opens a WATCH; resolves once the API server answered 200 (the stream is
   * open), rejects with KubeApiError otherwise. Events arrive one per line;
   * `done` runs once when the stream ends (undefined) or fails (the error).
   * With `openTimeoutMs`, rejects with a TimeoutError when the answer has not
   * come by then (the open stream itself is bounded by its `timeoutSeconds`).
   */
  watch(
    path: string,
    query: Record<string, string>,
    onEvent: WatchEventHandler,
    done: (error?: unknown) => void,
    openTimeoutMs?: number,
  ): Promise<OpenedWatch>;
  close(): Promise<void>;
}

const TOKEN_FILE_REREAD_MS = 60_000;
/** A watch that sends nothing (no event, no bookmark) for this long past its own timeout is taken as dead. */
const WATCH_SILENCE_GRACE_MS = 60_000;

export function createKubeClient(connection: KubeConnection): KubeClient {
  const base = new URL(connection.server);
  const origin = base.origin;
  const prefix = base.pathname.replace(/\/+$/, '');
  const agent = new Agent({
    connect: {
      ...(connection.ca === undefined ? {} : { ca: connection.ca }),
      ...(connection.clientCertificate === undefined ? {} : { cert: connection.clientCertificate }),
      ...(connection.clientKey === undefined ? {} : { key: connection.clientKey }),
      ...(connection.tlsServerName === undefined ? {} : { servername: connection.tlsServerName }),
      rejectUnauthorized: connection.insecureSkipTlsVerify !== true,
    },
  });
  const authorization = authorizationOf(connection.auth);

  const call = async (
    method: 'GET' | 'POST',
    path: string,
    options: { accept?: string; body?: unknown; signal: AbortSignal; bodyTimeout?: number },
  ): Promise<Dispatcher.ResponseData> => {
    const headers: Record<string, string> = { accept: options.accept ?? 'application/json' };
    const auth = await authorization();
    if (auth !== undefined) headers.authorization = auth;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const response = await agent.request({
      origin,
      path: `${prefix}${path}`,
      method,
      headers,
      signal: options.signal,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      ...(options.bodyTimeout === undefined ? {} : { bodyTimeout: options.bodyTimeout }),
    });
    if (response.statusCode < 200 || response.statusCode > 299) {
      // The Status object's reason only; its message can quote the request (a TokenReview's token).
      const reason = await response.body
        .json()
        .then((s) => (typeof (s as { reason?: unknown }).reason === 'string' ? (s as { reason: string }).reason : undefined))
        .catch(() => undefined);
      throw new KubeApiError(
        `${method} ${path.split('?')[0] ?? path}: HTTP ${String(response.statusCode)}${reason ? ` ${reason}` : ''}`,
        response.statusCode,
        reason,
      );
    }
    return response;
  };

  const json = async <T>(method: 'GET' | 'POST', path: string, timeoutMs: number, accept?: string, body?: unknown): Promise<T> => {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const response = await call(method, path, {
        signal,
        ...(accept === undefined ? {} : { accept }),
        ...(body === undefined ? {} : { body }),
      });
      return (await response.body.json()) as T;
    } catch (error) {
      if (signal.aborted) throw timeoutError(method, path, timeoutMs);
      throw error;
    }
  };

  return {
    server: connection.server,
    get: (path, timeoutMs, accept) => json('GET', path, timeoutMs, accept),
    post: (path, body, timeoutMs) => json('POST', path, timeoutMs, undefined, body),
    async watch(path, query, onEvent, done, openTimeoutMs) {
      const controller = new AbortController();
      const timeoutSeconds = Number(query.timeoutSeconds ?? 0);
      const params = new URLSearchParams({ ...query, watch: 'true' });
      // Without it, an API server that accepts the connection and never answers (still starting, or a dead
      // backend behind a load balancer) would hold the informer for undici's headersTimeout, 300 s, before it retries.
      const opening = openTimeoutMs === undefined ? undefined : setTimeout(() => controller.abort(), openTimeoutMs);
      let response: Dispatcher.ResponseData;
      try {
        response = await call('GET', `${path}?${params.toString()}`, {
          signal: controller.signal,
          // A watch is quiet between events; only one silent past its own timeout (plus a grace) is dead.
          bodyTimeout: timeoutSeconds > 0 ? timeoutSeconds * 1000 + WATCH_SILENCE_GRACE_MS : 0,
        });
      } catch (error) {
        if (controller.signal.aborted && openTimeoutMs !== undefined) throw timeoutError('WATCH', path, openTimeoutMs);
        throw error;
      } finally {
        clearTimeout(opening);
      }
      let stopped = false;
      let finished = false;
      const finish = (error?: unknown) => {
        if (finished || stopped) return;
        finished = true;
        done(error);
      };
      void (async () => {
        let pending = '';
        try {
          for await (const chunk of response.body as AsyncIterable<Buffer>) {
            pending += chunk.toString('utf8');
            let newline = pending.indexOf('\n');
            while (newline !== -1) {
              const line = pending.slice(0, newline);
              pending = pending.slice(newline + 1);
              newline = pending.indexOf('\n');
              if (line.trim() === '') continue;
              const event = JSON.parse(line) as { type?: unknown; object?: unknown };
              if (controller.signal.aborted) return;
              onEvent(typeof event.type === 'string' ? event.type : 'UNKNOWN', (event.object ?? {}) as Record<string, unknown>);
            }
          }
          finish();
        } catch (error) {
          finish(error);
        }
      })();
      return {
        stop() {
          stopped = true;
          controller.abort();
        },
      };
    },
    close: () => agent.close(),
  };
}

function timeoutError(method: string, path: string, timeoutMs: number): Error {
  return Object.assign(new Error(`${method} ${path.split('?')[0] ?? path} timed out after ${String(timeoutMs)} ms`), {
    name: 'TimeoutError',
  });
}

/** The Authorization header for each call (undefined: none), refreshed as its source requires. */
function authorizationOf(auth: KubeAuth): () => Promise<string | undefined> {
  switch (auth.type) {
    case 'none':
      return () => Promise.resolve(undefined);
    case 'token': {
      const header = `Bearer ${auth.token}`;
      return () => Promise.resolve(header);
    }
    case 'basic': {
      const header = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
      return () => Promise.resolve(header);
    }
    case 'tokenFile': {
      let header: string | undefined;
      let readAt = 0;
      return () => {
        if (header === undefined || Date.now() - readAt > TOKEN_FILE_REREAD_MS) {
          header = `Bearer ${readFileSync(auth.path, 'utf8').trim()}`;
          readAt = Date.now();
        }
        return Promise.resolve(header);
      };
    }
    case 'exec': {
      let cached: { header: string; until: number } | undefined;
      let running: Promise<string> | undefined;
      return async () => {
        if (cached !== undefined && Date.now() < cached.until) return cached.header;
        running ??= runExecPlugin(auth.exec)
          .then(({ token, expiresAt }) => {
            const header = `Bearer ${token}`;
            // Refreshed a little before it expires; without an expiry, reused (client-go does the same).
            cached = { header, until: expiresAt === undefined ? Number.POSITIVE_INFINITY : expiresAt - 10_000 };
            return header;
          })
          .finally(() => (running = undefined));
        return running;
      };
    }
  }
}

function runExecPlugin(exec: ExecConfig): Promise<{ token: string; expiresAt?: number }> {
  return new Promise((resolveToken, reject) => {
    const env = {
      ...process.env,
      ...Object.fromEntries(exec.env.map((e) => [e.name, e.value])),
      KUBERNETES_EXEC_INFO: JSON.stringify({ apiVersion: exec.apiVersion, kind: 'ExecCredential', spec: { interactive: false } }),
    };
    execFile(exec.command, [...exec.args], { env, timeout: 60_000, maxBuffer: 1 << 20 }, (error, stdout) => {
      if (error) {
        reject(new Error(`kubeconfig exec plugin ${exec.command} failed: ${error.message.split('\n')[0] ?? ''}`));
        return;
      }
      try {
        const status = (JSON.parse(stdout) as { status?: { token?: unknown; expirationTimestamp?: unknown } }).status;
        if (typeof status?.token !== 'string') throw new Error('no status.token (client certificates from a plugin are not supported)');
        const expiresAt = typeof status.expirationTimestamp === 'string' ? Date.parse(status.expirationTimestamp) : undefined;
        resolveToken({ token: status.token, ...(expiresAt === undefined || Number.isNaN(expiresAt) ? {} : { expiresAt }) });
      } catch (cause) {
        reject(new Error(`kubeconfig exec plugin ${exec.command}: unusable output: ${(cause as Error).message}`));
      }
    });
  });
}

/** The object fields the proxy reads. */
export interface KubeObject {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly labels?: Record<string, string>;
  };
}

export interface KubeList<T> {
  readonly metadata?: { readonly resourceVersion?: string };
  readonly items: readonly T[];
}
