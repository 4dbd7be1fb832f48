/** The IAM Credentials stand-in speaks generateAccessToken's real request, answer and refusal. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIamCredentialsStandIn, type IamCredentialsStandIn } from '../../dev/standins/iam-credentials.js';

let iam: IamCredentialsStandIn;
beforeAll(async () => {
  iam = await startIamCredentialsStandIn({ grantable: ['team@p.iam.gserviceaccount.com'] });
});
afterAll(async () => {
  await iam.close();
});

const call = (account: string, init: { authorization?: string; body?: unknown } = {}) =>
  fetch(`${iam.url}/v1/projects/-/serviceAccounts/${encodeURIComponent(account)}:generateAccessToken`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(init.authorization === undefined ? {} : { authorization: init.authorization }) },
    body: JSON.stringify(init.body ?? { scope: ['https://www.googleapis.com/auth/cloud-platform'], lifetime: '3600s' }),
  });

describe('IAM Credentials stand-in', () => {
  it('answers accessToken and an RFC 3339 expireTime one lifetime ahead', async () => {
    const response = await call('team@p.iam.gserviceaccount.com', { authorization: 'Bearer ya29.proxy' });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { accessToken: string; expireTime: string };
    expect(Object.keys(body).sort()).toEqual(['accessToken', 'expireTime']);
    expect(body.expireTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.parse(body.expireTime) - Date.now()).toBeGreaterThan(3590_000);
    expect(iam.minted.at(-1)).toMatchObject({
      serviceAccount: 'team@p.iam.gserviceaccount.com',
      accessToken: body.accessToken,
      callerToken: 'ya29.proxy',
    });
  });

  it("refuses an account the caller may not impersonate in Google's words", async () => {
    const response = await call('other@p.iam.gserviceaccount.com', { authorization: 'Bearer ya29.proxy' });
    expect(response.status).toBe(403);
    expect(await response.json()).toEqual({
      error: {
        code: 403,
        status: 'PERMISSION_DENIED',
        message: "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
      },
    });
  });

  it('needs a bearer token and a scope', async () => {
    expect((await call('team@p.iam.gserviceaccount.com')).status).toBe(401);
    expect((await call('team@p.iam.gserviceaccount.com', { authorization: 'Bearer x', body: { lifetime: '60s' } })).status).toBe(400);
  });
});
