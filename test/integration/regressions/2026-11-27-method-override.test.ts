/**
 * Security regression: Google front ends honour X-HTTP-Method-Override (and
 * `$httpMethod` in the query). A caller allowed to GET a custom job could turn
 * the forwarded request into a DELETE. Both forms are refused before policy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCATION, PROJECT, startWorld, type World } from '../../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => {
  await world?.close();
});

const job = `/v1/projects/${PROJECT}/locations/${LOCATION}/customJobs/123`;

describe('method overrides', () => {
  it('a plain GET of the job is allowed by the read grant and forwarded', async () => {
    const before = world.vertex.requests.length;
    // The stand-in knows no job 123: its 404 shows the request got through.
    expect((await world.call(job)).status).toBe(404);
    expect(world.vertex.requests.length).toBe(before + 1);
  });

  it.each([
    [{ 'x-http-method-override': 'DELETE' }, ''],
    [{ 'x-http-method': 'DELETE' }, ''],
    [{}, '?$httpMethod=DELETE'],
    [{}, '?httpMethod=DELETE'],
  ])('headers %j query %s are refused with 400 and not forwarded', async (headers, query) => {
    const before = world.vertex.requests.length;
    const response = await world.call(`${job}${query}`, { headers });
    expect(response.status).toBe(400);
    expect(world.vertex.requests.length).toBe(before);
  });
});
