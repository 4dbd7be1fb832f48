/**
 * Dedicated and private endpoints: the proxy learns an endpoint's dedicated
 * host with EndpointService.GetEndpoint (the official client, REST, the
 * proxy's own credential), caches it, and sends the endpoint's prediction
 * calls there; an endpoint without the field stays on the regional host;
 * `vertex.endpointHosts` pins an endpoint to a host explicitly.
 *
 * The dedicated host is a second Vertex AI stand-in on another loopback
 * address; the regional stand-in refuses the dedicated endpoint's calls, as
 * Google's shared host does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVertexStandIn, type VertexStandIn } from '../../dev/standins/vertex.js';
import { LOCATION, PROJECT, startWorld, type World } from '../helpers/world.js';

const DEDICATED = '4242';
const SHARED = '1234567890';
const PINNED = '777';
const predict = (endpoint: string) => `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/${endpoint}:predict`;
const body = JSON.stringify({ instances: [{ x: 1 }] });

let dedicatedHost: VertexStandIn;
let pinnedHost: VertexStandIn;
let world: World;
beforeAll(async () => {
  dedicatedHost = await startVertexStandIn({ host: '127.0.0.2' });
  pinnedHost = await startVertexStandIn({ host: '127.0.0.3' });
  world = await startWorld({
    config: (defaults, { vertex }) => {
      vertex.dedicatedEndpoints.set(DEDICATED, `127.0.0.2:${dedicatedHost.port}`);
      return {
        ...defaults,
        vertex: {
          ...(defaults.vertex as Record<string, unknown>),
          endpointLookup: { enabled: true, ttl: '10m' },
          endpointHosts: { [`projects/${PROJECT}/locations/${LOCATION}/endpoints/${PINNED}`]: pinnedHost.url },
        },
      };
    },
  });
});
afterAll(async () => {
  await world?.close();
  await Promise.all([dedicatedHost?.close(), pinnedHost?.close()]);
});

/** The proxy's lookups of the dedicated endpoint (the test's own GETs carry no client header). */
const lookups = () =>
  world.vertex.requests.filter(
    (r) =>
      r.method === 'GET' &&
      r.url.split('?')[0] === `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/${DEDICATED}` &&
      r.headers['x-goog-api-client'] !== undefined,
  );

describe('dedicated endpoints', () => {
  it("the regional host refuses a dedicated endpoint's calls (as Google's shared host does)", async () => {
    const direct = await fetch(`${world.vertex.url}${predict(DEDICATED)}`, {
      method: 'POST',
      headers: { authorization: 'Bearer x', 'content-type': 'application/json' },
      body,
    });
    expect(direct.status).toBe(400);
    const get = (id: string) =>
      fetch(`${world.vertex.url}/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/${id}`, {
        headers: { authorization: 'Bearer x' },
      }).then((r) => r.json() as Promise<Record<string, unknown>>);
    expect(await get(DEDICATED)).toMatchObject({ dedicatedEndpointEnabled: true, dedicatedEndpointDns: `127.0.0.2:${dedicatedHost.port}` });
    const shared = await get(SHARED);
    expect('dedicatedEndpointEnabled' in shared || 'dedicatedEndpointDns' in shared).toBe(false);
  });

  it("routes a dedicated endpoint's prediction calls to its own host, looked up once", async () => {
    const before = world.vertex.requests.length;
    for (let i = 0; i < 3; i++) {
      const response = await world.call(predict(DEDICATED), { body });
      expect(response.status).toBe(200);
    }
    const served = dedicatedHost.requests.filter((r) => r.url === predict(DEDICATED));
    expect(served).toHaveLength(3);
    expect(served[0]?.headers.host).toBe(`127.0.0.2:${dedicatedHost.port}`);
    expect(world.vertex.requests.slice(before).filter((r) => r.url === predict(DEDICATED))).toHaveLength(0);
    // One lookup, cached, made with the proxy's own token (the official client, REST transport).
    expect(lookups()).toHaveLength(1);
    expect(world.metadata.issuedTokens).toContain((lookups()[0]?.headers.authorization as string).replace(/^Bearer /, ''));
    expect(lookups()[0]?.headers['x-goog-api-client']).toMatch(/gax\/\S+-fallback/);
  });

  it('keeps an endpoint without a dedicated host on the regional host', async () => {
    expect((await world.call(predict(SHARED), { body })).status).toBe(200);
    expect(world.vertex.requests.filter((r) => r.url === predict(SHARED))).toHaveLength(1);
    expect(dedicatedHost.requests.filter((r) => r.url === predict(SHARED))).toHaveLength(0);
  });

  it('sends a pinned endpoint to its configured host without a lookup', async () => {
    expect((await world.call(predict(PINNED), { body })).status).toBe(200);
    expect(pinnedHost.requests.filter((r) => r.url === predict(PINNED))).toHaveLength(1);
    expect(world.vertex.requests.some((r) => r.url.includes(`/endpoints/${PINNED}`))).toBe(false);
  });

  it('counts lookups by result', async () => {
    const metrics = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
    expect(metrics).toContain('kube_vertex_proxy_endpoint_lookups_total{result="dedicated"} 1');
    expect(metrics).toContain('kube_vertex_proxy_endpoint_lookups_total{result="shared"} 1');
  });
});
