/**
 * Fault: Vertex AI answers with errors, resets connections, or hangs. A
 * scripted upstream plays each part. Its errors (429, 500, 503) reach the
 * caller as it sent them — status, Google error body and `Retry-After` — and
 * are never retried by the proxy (a retried POST may run twice: a second
 * training job, a second charge); a reset connection is 502, a hang 504 after
 * `vertex.timeouts.response`, each in Google's error shape and audited.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { listenLoopback, type LoopbackServer } from '../../../src/standins/loopback.js';
import { DEFAULT_RULES, PREDICT_PATH, PROJECT, LOCATION, startWorld, type World } from '../../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

type Script = (req: IncomingMessage, res: ServerResponse) => void;

let world: World;
let upstream: LoopbackServer;
let script: Script = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"predictions":[]}');
let hits: string[] = [];

beforeAll(async () => {
  upstream = await listenLoopback(async (req, res) => {
    hits.push(`${req.method} ${req.url}`);
    for await (const _ of req) {
      // drain the request body
    }
    script(req, res);
  });
  world = await startWorld({
    config: (d) => ({
      ...d,
      vertex: { ...(d.vertex as object), upstream: upstream.url, timeouts: { response: '1s', idle: '1s', connect: '1s' } },
      policy: {
        rules: [
          ...DEFAULT_RULES,
          { id: 'ml-training', effect: 'allow', subjects: { serviceAccounts: ['ml/trainer'] }, permissions: ['training'] },
        ],
      },
    }),
  });
});
afterAll(async () => {
  await world?.close();
  await upstream?.close();
});

const CREATE_JOB = `/v1/projects/${PROJECT}/locations/${LOCATION}/customJobs`;

function googleError(code: number, status: string, message: string): string {
  return JSON.stringify({
    error: { code, message, status, details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' }] },
  });
}

async function refusal(response: Response): Promise<{ status: string; code: string | undefined; requestId: string | undefined }> {
  const body = (await response.json()) as {
    error: { status: string; details: Array<{ metadata?: { code?: string }; requestId?: string }> };
  };
  return {
    status: body.error.status,
    code: body.error.details[0]?.metadata?.code,
    requestId: body.error.details.find((d) => d.requestId !== undefined)?.requestId,
  };
}

describe('Vertex AI answers with an error', () => {
  it.each([
    [429, 'RESOURCE_EXHAUSTED', '7'],
    [503, 'UNAVAILABLE', '30'],
    [500, 'INTERNAL', undefined],
  ])('%i passes through with its body and Retry-After, and the POST is sent once', async (code, status, retryAfter) => {
    const body = googleError(code, status, `Quota exceeded for aiplatform.googleapis.com/${status}`);
    script = (_req, res) =>
      res
        .writeHead(code, {
          'content-type': 'application/json; charset=UTF-8',
          ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
        })
        .end(body);
    hits = [];
    const response = await world.call(PREDICT_PATH, { body: '{}' });
    expect(response.status).toBe(code);
    expect(response.headers.get('retry-after')).toBe(retryAfter ?? null);
    expect(await response.text()).toBe(body);
    expect(hits).toEqual([`POST ${PREDICT_PATH}`]);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.upstreamStatus === code);
    expect(entry.kubeVertexProxy).toMatchObject({ decision: 'allow', status: code });
  });

  it('a job-creating POST that fails is not retried: one job at most', async () => {
    script = (_req, res) => res.writeHead(503, { 'content-type': 'application/json' }).end(googleError(503, 'UNAVAILABLE', 'try later'));
    hits = [];
    const response = await world.call(CREATE_JOB, { token: world.token('ml', 'trainer'), body: '{"displayName":"x"}' });
    expect(response.status).toBe(503);
    expect(hits).toHaveLength(1);
  });
});

describe('Vertex AI resets the connection', () => {
  it("is 502 UNAVAILABLE in Google's shape, sent once, audited", async () => {
    script = (req) => req.socket.destroy();
    hits = [];
    const response = await world.call(PREDICT_PATH, { body: '{}' });
    expect(response.status).toBe(502);
    const { status, code, requestId } = await refusal(response);
    expect(status).toBe('UNAVAILABLE');
    expect(code).toBe('ERR_FORWARD_UPSTREAM_UNREACHABLE');
    expect(hits).toHaveLength(1);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.requestId === requestId);
    expect(entry.kubeVertexProxy.reason).toMatch(/^upstream-unreachable/);
  });

  it("a reset in the middle of a response ends the caller's response early and records why", async () => {
    script = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"predictions":[');
      setTimeout(() => res.socket?.destroy(), 50);
    };
    const response = await world.call(PREDICT_PATH, { token: world.token('ml', 'midstream'), body: '{}' });
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:ml:midstream');
    expect(entry.kubeVertexProxy.upstreamError).toBeDefined();
  });
});

describe('Vertex AI hangs', () => {
  it('is 504 DEADLINE_EXCEEDED after vertex.timeouts.response, sent once', async () => {
    script = () => undefined;
    hits = [];
    const response = await world.call(PREDICT_PATH, { token: world.token('ml', 'hang'), body: '{}' });
    expect(response.status).toBe(504);
    const { status, code } = await refusal(response);
    expect(status).toBe('DEADLINE_EXCEEDED');
    expect(code).toBe('ERR_FORWARD_UPSTREAM_TIMEOUT');
    expect(hits).toHaveLength(1);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:ml:hang');
    expect(entry.kubeVertexProxy).toMatchObject({ status: 504, reason: 'upstream-timeout' });
  });
});
