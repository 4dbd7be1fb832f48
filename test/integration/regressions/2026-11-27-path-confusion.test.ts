/**
 * Security regression (oauth2-proxy GHSA-7rh7-c77v-6434 and kin): the decision
 * is made on the parsed request path, never on X-Forwarded-Uri/X-Original-URL,
 * and paths that decode or normalize into something else are refused, so the
 * resource authorized is the resource forwarded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCATION, PROJECT, startWorld, type World } from '../../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld({
    config: (d) => ({
      ...d,
      policy: {
        rules: [
          {
            id: 'only-endpoint-1',
            effect: 'allow',
            subjects: { serviceAccounts: ['ml/*'] },
            permissions: ['predict'],
            resources: [`projects/${PROJECT}/locations/${LOCATION}/endpoints/1`],
          },
        ],
      },
    }),
  });
});
afterAll(async () => {
  await world?.close();
});

const base = `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints`;

describe('path confusion', () => {
  it('endpoint 1 is allowed, endpoint 2 is not', async () => {
    expect((await world.call(`${base}/1:predict`, { body: '{}' })).status).toBe(200);
    expect((await world.call(`${base}/2:predict`, { body: '{}' })).status).toBe(403);
  });

  it.each([
    `${base}/1%2F..%2F2:predict`,
    `${base}/1/../2:predict`,
    `${base}/1/%2e%2e/2:predict`,
    `${base}/2;x=/1:predict`,
    `${base}/1:predict/../../endpoints/2:predict`,
    `${base}/1%3Apredict`,
    `${base}//2:predict`,
    `${base}/2%00:predict`,
    `${base}/1\\..\\2:predict`,
  ])('%s is refused without reaching Vertex AI', async (path) => {
    const before = world.vertex.requests.length;
    const response = await world.raw('POST', path, { body: '{}' });
    expect([400, 404]).toContain(response.status);
    expect(world.vertex.requests.length).toBe(before);
  });

  it('X-Forwarded-Uri and X-Original-URL do not change what is authorized', async () => {
    const response = await world.call(`${base}/2:predict`, {
      body: '{}',
      headers: { 'x-forwarded-uri': `${base}/1:predict`, 'x-original-url': `${base}/1:predict`, 'x-rewrite-url': `${base}/1:predict` },
    });
    expect(response.status).toBe(403);
  });
});
