/**
 * Availability regression (attacker review, case 3, medium): a service
 * account allowed on a single endpoint opened more chunked uploads than the
 * upstream pool has connections, sent one chunk each and stalled; another
 * namespace's predict then hung until those sockets closed (up to
 * `requestTimeout`, renewable). Callback routes had the same pattern.
 *
 * Now (with no extra configuration beyond sizes scaled down for the test):
 * one caller holds at most `server.maxInFlightPerCaller` requests, further
 * ones get 429 with Retry-After; another caller's predict goes through while
 * the attack is in progress; and each stalled body is cut after
 * `server.bodyIdleTimeout` with 408, its upstream request aborted, on the
 * Vertex AI routes and on callback routes alike.
 */
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { listenLoopback, type LoopbackServer } from '../../../dev/standins/loopback.js';
import { startIssuer, type IssuerStandIn } from '../../../dev/standins/issuer.js';
import { until } from '../../helpers/poll.js';
import { PREDICT_PATH, startWorld, type World } from '../../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const CAP = 4;
const POOL = 6;
const GOOGLE_AUDIENCE = 'https://callbacks.example.com';
const AGENT = 'service-123456789012@gcp-sa-aiplatform.iam.gserviceaccount.com';

interface Seen {
  readonly url: string;
  ended: boolean;
  aborted: boolean;
}

let world: World;
let google: IssuerStandIn;
let upstream: LoopbackServer;
const seen: Seen[] = [];
const sockets: Socket[] = [];

beforeAll(async () => {
  // An upstream that answers once it has the whole body, and records bodies that never ended.
  upstream = await listenLoopback((req: IncomingMessage, res) => {
    const entry: Seen = { url: req.url ?? '', ended: false, aborted: false };
    seen.push(entry);
    req.on('data', () => undefined);
    req.once('end', () => {
      entry.ended = true;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"predictions":[]}');
    });
    req.once('close', () => {
      if (!entry.ended) entry.aborted = true;
    });
  });
  google = await startIssuer({ kind: 'google' });
  world = await startWorld({
    config: (d) => ({
      ...d,
      server: { ...(d.server as object), maxInFlightPerCaller: CAP, bodyIdleTimeout: '1s' },
      issuers: [...(d.issuers as object[]), { name: 'google', type: 'google', issuer: google.issuer, audiences: [GOOGLE_AUDIENCE] }],
      vertex: { ...(d.vertex as object), upstream: upstream.url, connectionsPerHost: POOL },
      audit: { durability: 'relaxed', sinks: [{ type: 'stdout' }] },
      callbacks: { routes: [{ prefix: '/callbacks/upload', upstream: upstream.url, callers: [AGENT], bodyLimit: '1MiB' }] },
    }),
  });
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await world?.close();
  await Promise.all([google?.close(), upstream?.close()]);
});

interface Exchange {
  readonly socket: Socket;
  /** Resolves with the response head and body once the proxy answers (or the socket closes). */
  readonly answer: Promise<string>;
}

/** Starts a chunked upload, sends one chunk, and then nothing. */
async function stalledUpload(path: string, token: string): Promise<Exchange> {
  const socket = connect(world.proxy.dataPort, '127.0.0.1');
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => undefined);
  const answer = new Promise<string>((resolve) => {
    socket.on('data', () => {
      if (/\r\n\r\n/.test(text)) resolve(text);
    });
    socket.once('close', () => resolve(text));
  });
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: ` +
      `application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
  );
  socket.write('e\r\n{"instances":[\r\n');
  return { socket, answer };
}

function statusOf(text: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
}

describe('one caller cannot exhaust the upstream pool', () => {
  it(
    'caps the caller at maxInFlightPerCaller (429), serves another caller meanwhile, and cuts stalled bodies with 408 and an ' +
      'aborted upstream request',
    async () => {
      const attacker = world.token('ml', 'uploader');
      const uploads: Exchange[] = [];
      for (let i = 0; i < POOL + 4; i++) uploads.push(await stalledUpload(PREDICT_PATH, attacker));

      // Everything past the cap is refused at once, with 429 and Retry-After.
      const refusals = uploads.slice(CAP);
      const refusedTexts = await Promise.all(refusals.map((u) => u.answer));
      for (const text of refusedTexts) {
        expect(statusOf(text)).toBe(429);
        expect(text.toLowerCase()).toContain('retry-after: 1');
        expect(text).toContain('ERR_REQUEST_TOO_MANY_IN_FLIGHT');
      }
      // The admitted ones are upstream, stalled.
      await until(() => seen.filter((s) => !s.ended).length >= CAP || undefined, 'the admitted uploads to reach the upstream');

      // Meanwhile another caller is served: the pool still has room.
      const victim = await world.call(PREDICT_PATH, { token: world.token('ml', 'victim'), body: '{"instances":[]}' });
      expect(victim.status).toBe(200);

      // The stalled bodies are cut with 408 and their upstream requests aborted.
      const cut = await Promise.all(uploads.slice(0, CAP).map((u) => u.answer));
      for (const text of cut) {
        expect(statusOf(text)).toBe(408);
        expect(text).toContain('ERR_REQUEST_TIMEOUT');
      }
      await until(
        () => seen.filter((s) => s.url.startsWith('/v1/') && s.aborted).length >= CAP || undefined,
        'the upstream to see the stalled requests aborted',
      );
      const entries = await until(() => {
        const found = world.proxy.audit().filter((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:ml:uploader');
        return found.length >= POOL + 4 ? found : undefined;
      }, 'audit records of every upload');
      expect(entries.filter((e) => e.kubeVertexProxy.status === 429)).toHaveLength(POOL + 4 - CAP);
      expect(entries.filter((e) => e.kubeVertexProxy.status === 408 && e.kubeVertexProxy.reason === 'body-idle-timeout')).toHaveLength(CAP);

      // The slots were given back: the same caller is served again.
      expect((await world.call(PREDICT_PATH, { token: attacker, body: '{"instances":[]}' })).status).toBe(200);
    },
  );

  it('a body the inspect step reads whole (generateContent) stalls under the same timeout, and nothing is forwarded', async () => {
    const before = seen.length;
    const path = PREDICT_PATH.replace(/endpoints\/[0-9]+:predict$/, 'publishers/google/models/gemini-2.5-flash:generateContent');
    const upload = await stalledUpload(path, world.token('ml', 'generator'));
    const text = await upload.answer;
    expect(statusOf(text)).toBe(408);
    expect(text).toContain('ERR_REQUEST_TIMEOUT');
    expect(seen.slice(before).filter((s) => s.url.includes(':generateContent'))).toEqual([]);
  });

  it('callback routes: the same cap and the same body-progress timeout', async () => {
    const token = google.mintGoogleIdToken({ email: AGENT, audience: GOOGLE_AUDIENCE });
    const before = seen.length;
    const uploads: Exchange[] = [];
    for (let i = 0; i < CAP + 2; i++) uploads.push(await stalledUpload('/callbacks/upload/results', token));
    const refused = await Promise.all(uploads.slice(CAP).map((u) => u.answer));
    for (const text of refused) expect(statusOf(text)).toBe(429);
    const cut = await Promise.all(uploads.slice(0, CAP).map((u) => u.answer));
    for (const text of cut) expect(statusOf(text)).toBe(408);
    await until(
      () => seen.slice(before).filter((s) => s.url.startsWith('/callbacks/') && s.aborted).length >= CAP || undefined,
      'the callback backend to see the stalled requests aborted',
    );
  });
});
