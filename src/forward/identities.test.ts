import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIamCredentialsStandIn, type IamCredentialsStandIn } from '../../dev/standins/iam-credentials.js';
import { compileIdentityMatcher, createTeamIdentities } from './identities.js';

const A = 'team-a@p.iam.gserviceaccount.com';
const B = 'team-b@p.iam.gserviceaccount.com';

let iam: IamCredentialsStandIn;
beforeAll(async () => {
  iam = await startIamCredentialsStandIn({ grantable: [A] });
});
afterAll(async () => {
  await iam.close();
});

/** The proxy's own credential, as a fixed token (ADC is not what is under test here). */
function source(): Promise<OAuth2Client> {
  const client = new OAuth2Client();
  client.setCredentials({ access_token: 'ya29.proxy-own', expiry_date: Date.now() + 3_600_000 });
  return Promise.resolve(client);
}

describe('compileIdentityMatcher', () => {
  it('matches like policy subjects, first entry wins', () => {
    const match = compileIdentityMatcher([
      { subjects: { serviceAccounts: ['ml/trainer'] }, serviceAccount: A },
      { subjects: { namespaceSelector: { matchLabels: { team: 'ml' } } }, serviceAccount: B },
    ]);
    expect(match({ namespace: 'ml', serviceAccount: 'trainer', labels: { team: 'ml' } })).toBe(A);
    expect(match({ namespace: 'ml', serviceAccount: 'other', labels: { team: 'ml' } })).toBe(B);
    expect(match({ namespace: 'web', serviceAccount: 'trainer', labels: {} })).toBeUndefined();
    expect(compileIdentityMatcher([])({ namespace: 'ml', serviceAccount: 'x', labels: undefined })).toBeUndefined();
  });
});

describe('createTeamIdentities', () => {
  it('refreshes each account ahead of expiry in the background, and hands out the newest token', async () => {
    // Tokens live an hour; a margin of an hour minus 300 ms makes the refresh due almost at once.
    const identities = createTeamIdentities({
      identities: [{ subjects: { namespaces: ['a'] }, serviceAccount: A }],
      endpoint: iam.url,
      refreshMarginMs: 3_600_000 - 300,
      sourceClient: source,
    });
    const first = await identities.authorization(A);
    expect(first).toBe(`Bearer ${iam.minted.at(-1)?.accessToken}`);
    const deadline = Date.now() + 10_000;
    while (iam.minted.filter((m) => m.serviceAccount === A).length < 3 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    identities.stop();
    // A refresh already in flight when stopped still lands.
    await new Promise((r) => setTimeout(r, 300));
    expect(iam.minted.filter((m) => m.serviceAccount === A).length).toBeGreaterThanOrEqual(3);
    expect(iam.minted.every((m) => m.callerToken === 'ya29.proxy-own')).toBe(true);
    const now = identities.authorization(A);
    expect(await now).toBe(`Bearer ${iam.minted.filter((m) => m.serviceAccount === A).at(-1)?.accessToken}`);
  });

  it('a refused account gives no token, and is not asked again at once', async () => {
    const identities = createTeamIdentities({
      identities: [{ subjects: { namespaces: ['b'] }, serviceAccount: B }],
      endpoint: iam.url,
      sourceClient: source,
    });
    const before = iam.refused.length;
    expect(await identities.authorization(B)).toBeUndefined();
    expect(identities.authorization(B)).toBeUndefined();
    expect(iam.refused.length).toBe(before + 1);
    expect(identities.describe()[0]).toMatchObject({
      serviceAccount: B,
      ready: false,
      lastError: expect.stringContaining('PERMISSION_DENIED'),
    });
    // An account that is not configured never gets a token.
    expect(identities.authorization(A)).toBeUndefined();
    identities.stop();
  });
});
