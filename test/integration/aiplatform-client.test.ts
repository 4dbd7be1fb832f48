/**
 * End to end with the official Vertex AI Node client, as a pod would use it:
 * REST transport (`fallback: true`), the proxy as its endpoint, and the pod's
 * projected Kubernetes token as its only credential.
 */
import { v1 } from '@google-cloud/aiplatform';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCATION, PROJECT, startWorld, type World } from '../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => {
  await world?.close();
});

const ENDPOINT = `projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`;
const MODEL = `projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.5-flash`;

function clientFor(namespace: string, serviceAccount: string): InstanceType<typeof v1.PredictionServiceClient> {
  // The pod holds no Google credential: its Kubernetes token is the bearer.
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: world.token(namespace, serviceAccount) });
  return new v1.PredictionServiceClient({ apiEndpoint: '127.0.0.1', port: world.proxy.dataPort, fallback: true, protocol: 'http', authClient });
}

describe('@google-cloud/aiplatform through the proxy', () => {
  it('predict returns the stand-in\'s answer', async () => {
    const before = world.vertex.requests.length;
    const [response] = await clientFor('ml', 'trainer').predict({
      endpoint: ENDPOINT,
      instances: [{ structValue: { fields: { feature: { numberValue: 1 } } } }],
    });
    expect(response.deployedModelId).toMatch(/^\d+$/);
    expect(response.predictions?.length).toBeGreaterThan(0);
    const upstream = world.vertex.requests.slice(before)[0]!;
    // The client's numeric-enum marker reaches Vertex AI untouched.
    expect(upstream.url).toBe(`/v1/${ENDPOINT}:predict?$alt=json%3Benum-encoding=int`);
    expect(world.metadata.issuedTokens).toContain((upstream.headers.authorization as string).slice('Bearer '.length));
  });

  it('generateContent works for an allowed workload', async () => {
    const [response] = await clientFor('ml', 'trainer').generateContent({ model: MODEL, contents: [{ role: 'user', parts: [{ text: 'hello' }] }] });
    expect(response.candidates?.[0]?.content?.role).toBe('model');
  });

  it('a denied call surfaces as PERMISSION_DENIED the client can read', async () => {
    const error = await clientFor('web', 'frontend')
      .predict({ endpoint: ENDPOINT, instances: [{ numberValue: 1 }] })
      .then(() => undefined, (e: unknown) => e as { code: number; message: string; reason?: string; domain?: string });
    expect(error).toBeDefined();
    expect(error!.code).toBe(7); // google.rpc.Code.PERMISSION_DENIED
    expect(error!.message).toContain("Permission 'aiplatform.endpoints.predict' denied");
    expect(error!.message).toContain('system:serviceaccount:web:frontend');
    expect(error!.reason).toBe('AUTHZ_DENIED');
    expect(error!.domain).toBe('kube-vertex-proxy.dev');
  });
});
