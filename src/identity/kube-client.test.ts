import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createKubeClient } from './kube-client.js';

let server: Server | undefined;

async function listen(handler: (response: ServerResponse) => void): Promise<string> {
  server = createServer((_request, response) => handler(response));
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

describe('KubeClient.watch', () => {
  it('gives up on an API server that accepts the connection and never answers, after openTimeoutMs', async () => {
    // Never answers: without the bound, undici would wait its 300 s headersTimeout.
    const url = await listen(() => undefined);
    const client = createKubeClient({ server: url, auth: { type: 'none' } });
    try {
      const opening = client.watch(
        '/api/v1/namespaces',
        { resourceVersion: '5' },
        () => undefined,
        () => undefined,
        100,
      );
      await expect(opening).rejects.toMatchObject({ name: 'TimeoutError', message: 'WATCH /api/v1/namespaces timed out after 100 ms' });
    } finally {
      await client.close();
    }
  });

  it('does not cut a watch that opened in time: events keep coming past openTimeoutMs', async () => {
    const url = await listen((response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '6' } } })}\n`);
      setTimeout(() => {
        response.end(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'b', resourceVersion: '7' } } })}\n`);
      }, 300);
    });
    const client = createKubeClient({ server: url, auth: { type: 'none' } });
    try {
      const events: string[] = [];
      const ended = new Promise<unknown>((resolve) => {
        void client.watch(
          '/api/v1/namespaces',
          {},
          (type, object) => events.push(`${type} ${String(object.metadata && (object.metadata as { name: string }).name)}`),
          resolve,
          100,
        );
      });
      // The stream ended on its own (the server's end), not with an error.
      expect(await ended).toBeUndefined();
      expect(events).toEqual(['ADDED a', 'ADDED b']);
    } finally {
      await client.close();
    }
  });
});
