/**
 * The one forwarding path, without fastify: a plain node:http server plays
 * the caller's side (a minimal request and reply), a loopback server the
 * upstream, undici's Agent the pool.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import { newRequestContext, type RequestContext } from '../request-context.js';
import { createUsageMeter } from '../usage/usage.js';
import { upstreamRequestHeaders } from './header-policy.js';
import { dispatchUpstream, type CallerReply, type CallerRequest, type UpstreamCall } from './dispatch.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

let upstreamHandler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;
const seen: Seen[] = [];
let upstream: Server;
let upstreamOrigin: string;
const agent = new Agent({ connections: 4, headersTimeout: 5_000, bodyTimeout: 5_000 });

/** Per test: what the call looks like, and the context of the last request. */
let callFor: (request: CallerRequest) => Omit<UpstreamCall, 'origin'> & { origin?: string };
let prepare: (ctx: RequestContext) => void = () => undefined;
let lastContext: RequestContext | undefined;
let proxy: Server;
let proxyOrigin: string;

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve(`http://127.0.0.1:${String((server.address() as AddressInfo).port)}`);
    });
  });
}

/** What fastify's reply does for the dispatcher, in a few lines: errors as JSON, streams piped. */
function replyFor(res: ServerResponse): CallerReply {
  let sent = false;
  return {
    raw: res,
    get sent() {
      return sent || res.headersSent;
    },
    code: (statusCode) => (res.statusCode = statusCode),
    headers: (values) => {
      for (const [name, value] of Object.entries(values)) if (value !== undefined) res.setHeader(name, value);
    },
    send: (payload) => {
      sent = true;
      if (payload instanceof ProxyError) {
        res.writeHead(payload.httpStatus, { 'content-type': 'application/json' }).end(JSON.stringify({ code: payload.code }));
      } else if (payload instanceof Readable) payload.pipe(res);
    },
    hijack: () => (sent = true),
  };
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method as string, url: req.url as string, headers: req.headers, body });
      upstreamHandler(req, res, body);
    });
  });
  upstreamOrigin = await listen(upstream);
  proxy = createServer((req, res) => {
    const kvp = newRequestContext();
    prepare(kvp);
    lastContext = kvp;
    const request: CallerRequest = { kvp, method: req.method as string, headers: req.headers, body: req, raw: req };
    const { origin, ...call } = callFor(request);
    dispatchUpstream(agent, request, replyFor(res), { origin: origin ?? upstreamOrigin, ...call });
  });
  proxyOrigin = await listen(proxy);
});

afterEach(() => {
  seen.length = 0;
  prepare = () => undefined;
});

afterAll(async () => {
  await agent.close();
  upstream.closeAllConnections();
  proxy.closeAllConnections();
  await Promise.all([new Promise((r) => upstream.close(r)), new Promise((r) => proxy.close(r))]);
});

async function call(
  path: string,
  init: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: string }> {
  const response = await fetch(`${proxyOrigin}${path}`, {
    method: init.method ?? 'POST',
    headers: init.headers ?? {},
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

const plain = (request: CallerRequest) => ({
  path: '/v1/x?alt=sse&a=%2F',
  headers: upstreamRequestHeaders(request.headers, 'Bearer proxy'),
});

describe('dispatchUpstream', () => {
  it('streams the answer back, drops hop-by-hop and Google-only response headers, and records status, timings and request id', async () => {
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': 'a=b', 'alt-svc': 'h3=":443"', 'x-goog-request-id': 'g-1' });
      res.write('one ');
      setTimeout(() => res.end('two'), 5);
    };
    callFor = plain;
    const answer = await call('/ignored', { method: 'GET' });
    expect(answer).toMatchObject({ status: 200, body: 'one two' });
    expect(answer.headers.get('set-cookie')).toBeNull();
    expect(answer.headers.get('alt-svc')).toBeNull();
    // The path goes up exactly as given (query included), with the upstream's host.
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/v1/x?alt=sse&a=%2F' });
    expect(seen[0]?.headers.host).toBe(new URL(upstreamOrigin).host);
    const ctx = lastContext as RequestContext;
    expect(ctx.upstreamStatus).toBe(200);
    expect(ctx.upstreamRequestId).toBe('g-1');
    expect(typeof ctx.upstreamStartedAt).toBe('bigint');
    expect((ctx.upstreamHeadersAt as bigint) >= (ctx.upstreamStartedAt as bigint)).toBe(true);
  });

  it('sends a small declared body whole with its length, and streams a chunked body as it comes', async () => {
    upstreamHandler = (_req, res, body) => res.end(`got ${String(body.length)}`);
    callFor = plain;
    expect(await call('/', { body: 'x'.repeat(1000), headers: { 'content-type': 'application/json' } })).toMatchObject({
      body: 'got 1000',
    });
    expect(seen[0]?.headers['content-length']).toBe('1000');
    // Larger than BUFFERED_BODY_MAX_BYTES: streamed, with its declared length.
    expect(await call('/', { body: Buffer.alloc(100_000, 1) })).toMatchObject({ body: 'got 100000' });
    expect(seen[1]?.headers['content-length']).toBe('100000');
    // Chunked: streamed chunked, bytes in order.
    const answer = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${proxyOrigin}/`, { method: 'POST' }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          resolve(text);
        });
      });
      req.on('error', reject);
      req.write(Buffer.alloc(70_000, 1));
      setTimeout(() => req.end(Buffer.alloc(30_000, 2)), 20);
    });
    expect(answer).toBe('got 100000');
    expect(seen[2]?.headers['transfer-encoding']).toBe('chunked');
    expect(seen[2]?.body.subarray(69_999, 70_001)).toEqual(Buffer.from([1, 2]));
  });

  it("sends the inspect step's bytes instead of the caller's when it set them", async () => {
    upstreamHandler = (_req, res, body) => res.end(body);
    prepare = (ctx) => (ctx.forwardBody = Buffer.from('{"rewritten":true}'));
    callFor = plain;
    expect(await call('/', { body: '{"original":true}', headers: { 'content-type': 'application/json' } })).toMatchObject({
      body: '{"rewritten":true}',
    });
    expect(seen[0]?.headers['content-length']).toBe('18');
  });

  it("answers an upstream 401 as the proxy's own failure (502) only when the upstream checks the proxy's credential", async () => {
    upstreamHandler = (_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad token"}');
    callFor = (request) => ({ ...plain(request), ownCredential: true });
    expect(await call('/', { method: 'GET' })).toMatchObject({ status: 502, body: '{"code":"ERR_FORWARD_CREDENTIAL_REJECTED"}' });
    callFor = plain;
    expect(await call('/', { method: 'GET' })).toMatchObject({ status: 401, body: '{"error":"bad token"}' });
  });

  it('maps an unreachable upstream to 502 and one slower than the call timeout to 504', async () => {
    const closed = createServer();
    const closedOrigin = await listen(closed);
    await new Promise((r) => closed.close(r));
    callFor = (request) => ({ ...plain(request), origin: closedOrigin, upstreamName: 'callback upstream for /cb' });
    expect(await call('/', { method: 'GET' })).toMatchObject({ status: 502, body: '{"code":"ERR_FORWARD_UPSTREAM_UNREACHABLE"}' });
    expect(lastContext?.failure).toBeUndefined();

    // undici checks header timeouts on a coarse clock (about a second): the upstream is far later than both.
    upstreamHandler = (_req, res) => setTimeout(() => res.end('late'), 4_000).unref();
    callFor = (request) => ({ ...plain(request), timeoutMs: 200 });
    expect(await call('/', { method: 'GET' })).toMatchObject({ status: 504, body: '{"code":"ERR_FORWARD_UPSTREAM_TIMEOUT"}' });
  });

  it('gives the usage tap every byte of the answer and leaves what it read in request.kvp.usage', async () => {
    const events = [
      { candidates: [{ content: { parts: [{ text: 'a' }] } }] },
      {
        candidates: [{ content: { parts: [{ text: 'b' }] } }],
        usageMetadata: { promptTokenCount: 3, totalTokenCount: 7 },
        modelVersion: 'm-1',
      },
    ];
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const e of events) res.write(`data: ${JSON.stringify(e)}\r\n\r\n`);
      res.end();
    };
    let statusSeen = 0;
    callFor = (request) => ({
      ...plain(request),
      meter: (statusCode) => {
        statusSeen = statusCode;
        return createUsageMeter('gemini-sse');
      },
    });
    const answer = await call('/', { method: 'GET' });
    expect(answer.body.split('data: ')).toHaveLength(3);
    expect(statusSeen).toBe(200);
    expect(lastContext?.usage).toEqual({ tokens: { prompt: 3, total: 7 }, modelVersion: 'm-1' });
  });

  it("hands the answer to the framework's send when asked (its onSend hooks then see the bytes)", async () => {
    upstreamHandler = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"name":"operations/1"}');
    callFor = (request) => ({ ...plain(request), throughFramework: true });
    const answer = await call('/', { method: 'GET' });
    expect(answer).toMatchObject({ status: 200, body: '{"name":"operations/1"}' });
    expect(answer.headers.get('content-type')).toBe('application/json');
  });

  it('aborts the upstream call when the caller goes away', async () => {
    const upstreamClosed = new Promise<void>((resolve) => {
      upstreamHandler = (req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const timer = setInterval(() => res.write('data: {}\n\n'), 10);
        res.once('close', () => {
          clearInterval(timer);
          resolve();
        });
        req.resume();
      };
    });
    callFor = plain;
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${proxyOrigin}/`, { method: 'GET' }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.end();
    });
    await upstreamClosed;
  });
});
