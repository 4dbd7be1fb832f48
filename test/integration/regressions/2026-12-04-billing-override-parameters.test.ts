/**
 * Security regression (attacker review, case 5, low): `x-goog-user-project`
 * was refused as a header, but its query form `?userProject=` (also
 * `?%24userProject=`), `quotaUser`, `bearer_token`, `api_key`, and the
 * underscore spellings of refused headers (`x_goog_user_project`,
 * `x_http_method_override`, which CGI-style servers read as the dashed
 * names) were forwarded to Vertex AI.
 *
 * Now each is refused with 400 before policy, nothing is forwarded, and the
 * value appears in no log or audit line; identity headers in underscore
 * spelling are stripped like their dashed names.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PREDICT_PATH, startWorld, type World } from '../../helpers/world.js';

// Real processes on a shared machine: waits are bounded by the polls below, not by the default 30 s.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

let world: World;
beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => {
  await world?.close();
});

async function refused(response: { status: number; body: string }, code: string): Promise<void> {
  expect(response.status).toBe(400);
  const body = JSON.parse(response.body) as { error: { details: Array<{ metadata?: { code?: string }; requestId?: string }> } };
  expect(body.error.details[0]?.metadata?.code).toBe(code);
  const requestId = body.error.details[1]?.requestId;
  const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.requestId === requestId);
  expect(entry.kubeVertexProxy).toMatchObject({ decision: 'deny', status: 400, errorCode: code });
}

describe('billing and override parameters in the query string', () => {
  it.each([
    'userProject=OTHERPROJ',
    '%24userProject=OTHERPROJ',
    '$userProject=OTHERPROJ',
    'USERPROJECT=OTHERPROJ',
    'user_project=OTHERPROJ',
    'user%5Fproject=OTHERPROJ',
    'us%2565rProject=OTHERPROJ',
    'alt=json&quotaUser=OTHERPROJ',
    '$quotaUser=OTHERPROJ',
    'bearer_token=OTHERPROJ',
    'api_key=OTHERPROJ',
    'apiKey=OTHERPROJ',
    '$alt=json;userProject=OTHERPROJ',
  ])('?%s is refused with 400, audited, and not forwarded or logged', async (query) => {
    const before = world.vertex.requests.length;
    await refused(await world.raw('POST', `${PREDICT_PATH}?${query}`, { body: '{}' }), 'ERR_REQUEST_FORBIDDEN_PARAMETER');
    expect(world.vertex.requests.length).toBe(before);
    expect(world.proxy.stdoutText()).not.toContain('OTHERPROJ');
  });

  it('an ordinary query still passes (control)', async () => {
    const response = await world.raw('POST', `${PREDICT_PATH}?alt=json&$prettyPrint=false`, { body: '{}' });
    expect(response.status).toBe(200);
  });
});

describe('header names that normalise to refused ones', () => {
  it.each([
    ['x_goog_user_project', 'other-project'],
    ['X_Goog_User_Project', 'other-project'],
    ['x-goog_user-project', 'other-project'],
    ['x_http_method_override', 'DELETE'],
    ['x_method_override', 'DELETE'],
    ['x_goog_api_key', 'AIzaSyX'],
  ])('%s is refused with 400 and nothing is forwarded', async (header, value) => {
    const before = world.vertex.requests.length;
    await refused(await world.raw('POST', PREDICT_PATH, { body: '{}', headers: { [header]: value } }), 'ERR_REQUEST_FORBIDDEN_HEADER');
    expect(world.vertex.requests.length).toBe(before);
  });

  it('identity headers in underscore spelling are stripped like their dashed names', async () => {
    const response = await world.raw('POST', PREDICT_PATH, {
      body: '{}',
      headers: { x_forwarded_for: '10.9.9.9', x_goog_iap_jwt_assertion: 'forged', x_kvp_caller_email: 'admin@x', 'x-custom_ok': 'kept' },
    });
    expect(response.status).toBe(200);
    const seen = world.vertex.requests.at(-1)!;
    const names = Object.keys(seen.headers).map((n) => n.toLowerCase());
    expect(names).not.toContain('x_forwarded_for');
    expect(names).not.toContain('x_goog_iap_jwt_assertion');
    expect(names).not.toContain('x_kvp_caller_email');
    expect(names).toContain('x-custom_ok');
  });
});
