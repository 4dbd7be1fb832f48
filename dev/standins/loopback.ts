/**
 * The listener every stand-in runs on: HTTP/1.1 (plain, or over TLS when a
 * certificate is given) bound to a loopback address (127.0.0.1, port 0 unless
 * a port is given), with a `close()` that does not wait for keep-alive
 * sockets or requests a test left hanging.
 *
 * Stand-ins only ever listen on loopback: they mint tokens and hand out
 * credentials-shaped strings, and must never be reachable from another host.
 *
 * @module
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { createServer as createTcpServer, isIP, type AddressInfo } from 'node:net';

export interface LoopbackServer {
  readonly server: Server;
  /** `http://127.0.0.1:PORT` (`https://` with TLS; no trailing slash). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Stops listening and destroys every open connection, including hung ones. */
  close(): Promise<void>;
}

export interface LoopbackOptions {
  /** A loopback address; default `127.0.0.1`. */
  readonly host?: string;
  /** Default 0 (the kernel picks a free port). */
  readonly port?: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

/**
 * Starts `handler` on a loopback address.
 *
 * @throws TypeError when `host` is not a loopback IP literal.
 */
export async function listenLoopback(handler: RequestHandler, options: LoopbackOptions = {}): Promise<LoopbackServer> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopbackAddress(host)) {
    throw new TypeError(`stand-ins listen on loopback only, got host ${JSON.stringify(host)}`);
  }
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((error: unknown) => {
        // A stand-in bug must show up as a failed request in the test that hit it,
        // not as an unhandled rejection in an unrelated test.
        if (!res.headersSent) {
          res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end(`stand-in error: ${error instanceof Error ? error.message : String(error)}`);
        } else {
          res.destroy(error instanceof Error ? error : undefined);
        }
      });
  };
  const server: Server = options.tls === undefined ? createServer(listener) : createTlsServer(options.tls, listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `${options.tls === undefined ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    server,
    url,
    host,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Reads a request body completely (stand-ins only see test-sized bodies). */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function isLoopbackAddress(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

/**
 * A loopback port that was free a moment ago, for programs that must be told
 * their port (PostgreSQL, Redis, etcd, kube-apiserver, nginx). It can be taken
 * by someone else before the program binds it: whatever can listen on port 0
 * and report its port should.
 *
 * Where the system says where its ephemeral port range starts (Linux), the
 * port comes from below it. Listening on port 0 hands out a port from inside
 * that range, which is also where the kernel takes the local port of every
 * outgoing connection: with a test suite's parallel workers opening
 * connections, one of them took such a port before kube-apiserver could bind
 * it ("bind: address already in use"). Below the range only another program
 * choosing a fixed port can collide, and the port is checked free first.
 */
export async function freeLoopbackPort(): Promise<number> {
  const rangeStart = ephemeralRangeStart();
  if (rangeStart !== undefined && rangeStart - FIXED_PORTS_FROM >= 1000) {
    for (let attempt = 0; attempt < 100; attempt++) {
      const port = FIXED_PORTS_FROM + randomInt(rangeStart - FIXED_PORTS_FROM);
      // Two calls before either port is bound (etcd's and kube-apiserver's) must not get the same one.
      if (recentlyHandedOut.includes(port) || !(await canListen(port))) continue;
      recentlyHandedOut.push(port);
      if (recentlyHandedOut.length > 1024) recentlyHandedOut.shift();
      return port;
    }
  }
  return anyFreePort();
}

/** Below this, ports are left to services that are configured with a well-known one. */
const FIXED_PORTS_FROM = 20_000;
const recentlyHandedOut: number[] = [];

/** The first port of the kernel's ephemeral range (net.ipv4.ip_local_port_range), when the system exposes it. */
export function ephemeralRangeStart(): number | undefined {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 0 ? first : undefined;
  } catch {
    return undefined;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createTcpServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createTcpServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
