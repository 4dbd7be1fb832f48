/**
 * The whole Vertex AI REST surface through one real proxy process: with a
 * policy that allows everything, every binding of every v1 and v1beta1 RPC
 * under projects/*\/locations/* (and every long-running-operation binding)
 * reaches the stand-in; the express-mode forms are refused with a 400 that
 * names the form to use.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { OPERATION_BINDINGS } from '../../src/vertex/operation-table.js';
import { RPCS } from '../../src/vertex/operations.generated.js';
import { LOCATION, PROJECT, startWorld, type World } from '../helpers/world.js';

let world: World;
let token: string;
beforeAll(async () => {
  world = await startWorld({
    config: (defaults) => ({
      ...defaults,
      policy: { rules: [{ id: 'everything', effect: 'allow', subjects: { serviceAccounts: ['*/*'] }, permissions: ['*'] }] },
    }),
  });
  token = world.token();
});
afterAll(async () => {
  await world?.close();
});

const SCOPED = 'projects/{project}/locations/{location}';

function fill(resource: string): string {
  return resource.replace(/\{([a-zA-Z]+)\}/g, (_, name: string) =>
    name === 'project' ? PROJECT : name === 'location' ? LOCATION : `${name.toLowerCase()}-1`,
  );
}

interface Case {
  readonly method: string;
  readonly path: string;
  readonly methodName: string;
}

function casesFor(scoped: boolean): Case[] {
  return OPERATION_BINDINGS.filter(
    (binding) => (binding.resource === SCOPED || binding.resource.startsWith(`${SCOPED}/`)) === scoped,
  ).flatMap((binding) =>
    binding.versions.map((version) => ({
      method: binding.spec.httpMethod,
      path:
        `/${version}${binding.resource === '' ? '' : '/'}${fill(binding.resource)}` +
        `${binding.suffix === undefined ? '' : `/${binding.suffix}`}${binding.verb === undefined ? '' : `:${binding.verb}`}`,
      methodName: `${version} ${binding.spec.serviceByVersion?.[version] ?? binding.spec.service} ${binding.spec.rpc}`,
    })),
  );
}

/** Sends every case, a few at a time, and returns the status of each. */
async function sendAll(cases: readonly Case[]): Promise<Map<Case, { status: number; body: string }>> {
  const results = new Map<Case, { status: number; body: string }>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const c = cases[next++] as Case;
      const hasBody = c.method === 'POST' || c.method === 'PATCH';
      const response = await fetch(`${world.proxy.dataUrl}${c.path}`, {
        method: c.method,
        headers: { authorization: `Bearer ${token}`, ...(hasBody ? { 'content-type': 'application/json' } : {}) },
        ...(hasBody ? { body: '{}' } : {}),
      });
      results.set(c, { status: response.status, body: await response.text() });
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  return results;
}

describe('with an allow-everything policy', () => {
  it('every binding under projects/*/locations/* of both versions reaches Vertex AI, and so does every RPC that has one', async () => {
    const cases = casesFor(true);
    expect(cases.length).toBeGreaterThan(1000);
    world.vertex.reset();
    const results = await sendAll(cases);
    const received = new Set(world.vertex.requests.map((request) => `${request.method} ${request.url}`));
    const missed = cases
      .filter((c) => !received.has(`${c.method} ${c.path}`))
      .map((c) => `${c.method} ${c.path} → ${results.get(c)?.status} ${results.get(c)?.body.slice(0, 200)}`);
    expect(missed).toEqual([]);

    // Coverage per version, counted in RPCs of google.cloud.aiplatform.{version} as the issue counts them.
    for (const version of ['v1', 'v1beta1'] as const) {
      const rpcs = RPCS.filter(
        (rpc) => rpc.version === version && rpc.bindings.some((binding) => binding.path.includes('projects/*/locations/*')),
      );
      const reached = rpcs.filter((rpc) =>
        cases.some((c) => c.methodName === `${version} ${rpc.service} ${rpc.rpc}` && received.has(`${c.method} ${c.path}`)),
      );
      expect([version, reached.length]).toEqual([version, rpcs.length]);
    }
  });

  it('every binding outside projects/*/locations/* is a 400 naming the form to use, and never reaches Vertex AI', async () => {
    const cases = casesFor(false);
    expect(cases.length).toBeGreaterThan(40);
    world.vertex.reset();
    const results = await sendAll(cases);
    for (const c of cases) {
      const result = results.get(c);
      expect([c.path, result?.status]).toEqual([c.path, 400]);
      const error = (JSON.parse(result?.body ?? '{}') as { error: { message: string } }).error;
      expect(error.message).toMatch(
        /Use \/v1(beta1)?\/projects\/PROJECT\/locations\/LOCATION[/:]|has no projects\/PROJECT\/locations\/LOCATION form/,
      );
    }
    expect(world.vertex.requests).toHaveLength(0);
  });

  it('says exactly which form to use for an express-mode generateContent', async () => {
    const response = await world.call('/v1/publishers/google/models/gemini-2.5-flash:generateContent', { token, body: '{}' });
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { message: string } };
    expect(error.message).toContain(
      'Use /v1/projects/PROJECT/locations/LOCATION/publishers/google/models/gemini-2.5-flash:generateContent instead.',
    );
  });
});
