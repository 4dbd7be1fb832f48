/**
 * Security regression (peer lesson 5, Vertex-specific): `?key=` (API key) and
 * `?access_token=` would make Google authenticate the call as someone other
 * than the proxy. They are refused, in every spelling, before policy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREDICT_PATH, startWorld, type World } from '../../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => {
  await world?.close();
});

describe('credentials in the query string', () => {
  it.each([
    'key=AIzaSyX',
    'access_token=ya29.SMUGGLED',
    'k%65y=AIzaSyX',
    'access%5Ftoken=ya29.SMUGGLED',
    '$alt=json&key=AIzaSyX',
    'alt=sse&access_token=ya29.SMUGGLED',
  ])('?%s is refused with 400 and not forwarded or logged', async (query) => {
    const before = world.vertex.requests.length;
    const response = await world.call(`${PREDICT_PATH}?${query}`, { body: '{}' });
    expect(response.status).toBe(400);
    expect(world.vertex.requests.length).toBe(before);
    expect(world.proxy.stdoutText()).not.toContain('AIzaSyX');
    expect(world.proxy.stdoutText()).not.toContain('SMUGGLED');
  });
});
