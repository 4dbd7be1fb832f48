/**
 * A Google identity per team (vertex.identities): a matching caller's request
 * reaches Vertex AI with the impersonated token of the team's service account
 * (IAM Credentials stand-in, real generateAccessToken JSON), one token reused
 * across calls; a refusal by IAM Credentials is a 503 with nothing forwarded;
 * other callers go out as the proxy's own identity.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIamCredentialsStandIn, type IamCredentialsStandIn } from '../../src/standins/iam-credentials.js';
import { DEFAULT_RULES, PREDICT_PATH, PROJECT, startWorld, type World } from '../helpers/world.js';

const TEAM_ML = `team-ml@${PROJECT}.iam.gserviceaccount.com`;
const TEAM_WEB = `team-web@${PROJECT}.iam.gserviceaccount.com`;
const body = JSON.stringify({ instances: [{}] });

let iam: IamCredentialsStandIn;
let world: World;
beforeAll(async () => {
  // The proxy may impersonate team-ml only: team-web's grant is missing.
  iam = await startIamCredentialsStandIn({ grantable: [TEAM_ML] });
  world = await startWorld({
    config: (defaults) => ({
      ...defaults,
      vertex: {
        ...(defaults.vertex as Record<string, unknown>),
        identities: [
          { subjects: { serviceAccounts: ['ml/trainer'] }, serviceAccount: TEAM_ML },
          { subjects: { namespaces: ['web'] }, serviceAccount: TEAM_WEB },
        ],
        iamCredentialsEndpoint: iam.url,
      },
      policy: {
        rules: [...DEFAULT_RULES, { id: 'web-predict', effect: 'allow', subjects: { namespaces: ['web'] }, permissions: ['predict'] }],
      },
    }),
  });
});
afterAll(async () => {
  await world?.close();
  await iam?.close();
});

const upstreamAuthorization = (index: number): string | undefined => world.vertex.requests[index]?.headers.authorization;

describe('vertex.identities', () => {
  it("sends a matching caller's calls with the team account's impersonated token, one token for many calls", async () => {
    const first = world.vertex.requests.length;
    for (let i = 0; i < 3; i++) expect((await world.call(PREDICT_PATH, { body })).status).toBe(200);
    const minted = iam.minted.filter((m) => m.serviceAccount === TEAM_ML);
    expect(minted).toHaveLength(1);
    const token = minted[0]!;
    for (let i = first; i < first + 3; i++) expect(upstreamAuthorization(i)).toBe(`Bearer ${token.accessToken}`);
    // IAM Credentials was called with the proxy's own token (from the metadata server), for cloud-platform, one hour.
    expect(world.metadata.issuedTokens).toContain(token.callerToken);
    expect(token.scope).toEqual(['https://www.googleapis.com/auth/cloud-platform']);
    expect(token.lifetime).toBe('3600s');

    const entry = await world.proxy.waitForAudit(
      (e) => e.kubeVertexProxy.principal === 'system:serviceaccount:ml:trainer' && e.kubeVertexProxy.status === 200,
    );
    expect(entry.kubeVertexProxy.upstreamIdentity).toBe(TEAM_ML);
  });

  it('a caller no identity matches goes out as the proxy itself', async () => {
    const first = world.vertex.requests.length;
    const response = await world.call(PREDICT_PATH, { body, token: world.token('ml', 'notebook') });
    expect(response.status).toBe(200);
    const sent = upstreamAuthorization(first)?.replace(/^Bearer /, '');
    expect(world.metadata.issuedTokens).toContain(sent);
    expect(iam.minted.map((m) => m.accessToken)).not.toContain(sent);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:ml:notebook');
    expect(entry.kubeVertexProxy.upstreamIdentity).toBeUndefined();
  });

  it('refusal by IAM Credentials: 503, nothing forwarded, never the proxy identity instead', async () => {
    const before = world.vertex.requests.length;
    const response = await world.call(PREDICT_PATH, { body, token: world.token('web', 'frontend') });
    expect(response.status).toBe(503);
    const error = ((await response.json()) as { error: { status: string; code: number } }).error;
    expect(error).toMatchObject({ code: 503, status: 'UNAVAILABLE' });
    expect(world.vertex.requests.length).toBe(before);
    expect(iam.refused).toContain(TEAM_WEB);
    const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:web:frontend');
    expect(entry.kubeVertexProxy).toMatchObject({ status: 503, errorCode: 'ERR_FORWARD_IDENTITY_UNAVAILABLE', upstreamIdentity: TEAM_WEB });

    const metrics = await (await fetch(`${world.proxy.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(
        `kube_vertex_proxy_team_identity_refreshes_total\\{service_account="${TEAM_WEB.replace(/\./g, '\\.')}",result="error"\\} [1-9]`,
      ),
    );
  });
});
