/**
 * Resources named in request bodies, through the real proxy: each of the five
 * fields is authorized against the same `resources` patterns as a path; a
 * refused one is a 403 naming the field and nothing reaches Vertex AI; an
 * allowed body reaches Vertex AI byte for byte.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LOCATION, PROJECT, startWorld, type World } from '../helpers/world.js';

const LOC = `projects/${PROJECT}/locations/${LOCATION}`;

let world: World;
beforeAll(async () => {
  world = await startWorld({
    vertex: { recordBodies: true },
    config: (defaults) => ({
      ...defaults,
      policy: {
        rules: [
          {
            id: 'granted',
            effect: 'allow',
            subjects: { serviceAccounts: ['ml/*'] },
            permissions: ['*'],
            resources: [
              // The paths of the five methods...
              `${LOC}/endpoints/**`,
              `${LOC}/batchPredictionJobs`,
              `${LOC}/tuningJobs`,
              `${LOC}/publishers/google/models/gemini-2.5-flash`,
              // ...and the only body resources granted.
              `${LOC}/publishers/google/models/gemini-2.5-pro`,
              `${LOC}/cachedContents/team-cache`,
              `${LOC}/models/approved`,
              `${LOC}/publishers/google/models/gemini-2.0-flash-001`,
            ],
          },
        ],
      },
    }),
  });
});
afterAll(async () => {
  await world?.close();
});

// Odd spacing and key order: a re-serialised body would differ.
const CASES = [
  {
    field: 'model',
    path: `/v1beta1/${LOC}/endpoints/openapi/chat/completions`,
    allowed: '{ "messages" : [ {"role":"user","content":"hi"} ],\n  "model":"google/gemini-2.5-pro" }',
    refused: '{"model": "google/gemini-ultra-secret", "messages": []}',
    refusedResource: `${LOC}/publishers/google/models/gemini-ultra-secret`,
  },
  {
    field: 'cachedContent',
    path: `/v1/${LOC}/publishers/google/models/gemini-2.5-flash:generateContent`,
    allowed: `{"contents":[{"role":"user","parts":[{"text":"x"}]}],   "cachedContent": "${LOC}/cachedContents/team-cache"}`,
    refused: `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"cachedContent":"${LOC}/cachedContents/other-team"}`,
    refusedResource: `${LOC}/cachedContents/other-team`,
  },
  {
    field: 'model',
    path: `/v1/${LOC}/batchPredictionJobs`,
    allowed: `{"displayName":"nightly" ,"model":"${LOC}/models/approved","inputConfig":{}}`,
    refused: `{"displayName":"nightly","model":"${LOC}/models/unapproved"}`,
    refusedResource: `${LOC}/models/unapproved`,
  },
  {
    field: 'baseModel',
    path: `/v1/${LOC}/tuningJobs`,
    allowed: '{"baseModel":"gemini-2.0-flash-001",\t"supervisedTuningSpec":{}}',
    refused: '{"baseModel":"publishers/google/models/text-bison","supervisedTuningSpec":{}}',
    refusedResource: `${LOC}/publishers/google/models/text-bison`,
  },
  {
    field: 'deployedModel.model',
    path: `/v1/${LOC}/endpoints/42:deployModel`,
    allowed: `{"deployedModel": {"model": "${LOC}/models/approved", "displayName": "d"}}`,
    refused: `{"deployedModel": {"model": "${LOC}/models/unapproved"}}`,
    refusedResource: `${LOC}/models/unapproved`,
  },
] as const;

describe('resources named in the body', () => {
  it.each(CASES)('$field of $path: a granted resource is forwarded byte for byte', async ({ path, allowed }) => {
    world.vertex.reset();
    const response = await world.call(path, { method: 'POST', body: allowed });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    const seen = world.vertex.requests.filter((request) => request.url === path);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.body?.toString('utf8')).toBe(allowed);
  });

  it.each(CASES)('$field of $path: a resource the policy does not grant is a 403 naming the field, and nothing is forwarded', async (c) => {
    await expectRefused(c.path, c.refused, c.field, c.refusedResource);
  });

  it('a body field that is not a resource name of the expected kind is a 400', async () => {
    world.vertex.reset();
    const response = await world.call(`/v1/${LOC}/endpoints/42:deployModel`, {
      method: 'POST',
      body: '{"deployedModel":{"model":"../../../x"}}',
    });
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { message: string; details: Array<Record<string, unknown>> } };
    expect(error.message).toContain('"deployedModel.model"');
    expect(JSON.stringify(error.details)).toContain('ERR_REQUEST_INVALID_BODY_RESOURCE');
    expect(world.vertex.requests).toHaveLength(0);
  });

  it('the refusal is in the audit record as a deny for the body resource', async () => {
    const response = await world.call(`/v1/${LOC}/batchPredictionJobs`, {
      method: 'POST',
      token: world.token('ml', 'auditee'),
      body: `{"model":"${LOC}/models/unapproved"}`,
    });
    expect(response.status).toBe(403);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:ml:auditee');
    expect(entry.kubeVertexProxy).toMatchObject({ decision: 'deny', reason: 'body-resource-denied', status: 403 });
  });
});

async function expectRefused(path: string, body: string, field: string, resource: string): Promise<void> {
  world.vertex.reset();
  const response = await world.call(path, { method: 'POST', body });
  expect(response.status).toBe(403);
  const { error } = (await response.json()) as { error: { status: string; message: string; details: Array<Record<string, unknown>> } };
  expect(error.status).toBe('PERMISSION_DENIED');
  expect(error.message).toContain(`"${field}"`);
  expect(error.message).toContain(resource);
  expect(JSON.stringify(error.details)).toContain('ERR_AUTHZ_BODY_RESOURCE_DENIED');
  expect(world.vertex.requests).toHaveLength(0);
}
