/**
 * End to end with the official Vertex AI Node client, as a pod would use it:
 * REST transport (`fallback: true`), the proxy as its endpoint, and the pod's
 * projected Kubernetes token as its only credential.
 */
import { v1 } from '@google-cloud/aiplatform';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCATION, PROJECT, PROJECT_NUMBER, startWorld, type World } from '../helpers/world.js';

let world: World;
beforeAll(async () => {
  world = await startWorld({
    config: (d) => ({
      ...d,
      policy: {
        rules: [
          ...(d.policy as { rules: unknown[] }).rules,
          { id: 'trainer-training', effect: 'allow', subjects: { serviceAccounts: ['ml/trainer'] }, permissions: ['training'] },
        ],
      },
    }),
  });
});
afterAll(async () => {
  await world?.close();
});

const ENDPOINT = `projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`;
const MODEL = `projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.5-flash`;

function authFor(namespace: string, serviceAccount: string): OAuth2Client {
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: world.token(namespace, serviceAccount) });
  return authClient;
}

function clientFor(namespace: string, serviceAccount: string): InstanceType<typeof v1.PredictionServiceClient> {
  // The pod holds no Google credential: its Kubernetes token is the bearer.
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: world.token(namespace, serviceAccount) });
  return new v1.PredictionServiceClient({
    apiEndpoint: '127.0.0.1',
    port: world.proxy.dataPort,
    fallback: true,
    protocol: 'http',
    authClient,
  });
}

describe('@google-cloud/aiplatform through the proxy', () => {
  it("predict returns the stand-in's answer", async () => {
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
    const [response] = await clientFor('ml', 'trainer').generateContent({
      model: MODEL,
      contents: [{ role: 'user', parts: [{ text: 'hello' }] }],
    });
    expect(response.candidates?.[0]?.content?.role).toBe('model');
  });

  it('a denied call surfaces as PERMISSION_DENIED the client can read', async () => {
    const error = await clientFor('web', 'frontend')
      .predict({ endpoint: ENDPOINT, instances: [{ numberValue: 1 }] })
      .then(
        () => undefined,
        (e: unknown) => e as { code: number; message: string; reason?: string; domain?: string },
      );
    expect(error).toBeDefined();
    expect(error!.code).toBe(7); // google.rpc.Code.PERMISSION_DENIED
    expect(error!.message).toContain("Permission 'aiplatform.endpoints.predict' denied");
    expect(error!.message).toContain('system:serviceaccount:web:frontend');
    expect(error!.reason).toBe('AUTHZ_DENIED');
    expect(error!.domain).toBe('kube-vertex-proxy.dev');
  });

  it('a custom job is created, then deleted, and the delete operation is polled to completion (the /ui/ LRO bindings)', async () => {
    const jobs = new v1.JobServiceClient({
      apiEndpoint: '127.0.0.1',
      port: world.proxy.dataPort,
      fallback: true,
      protocol: 'http',
      authClient: authFor('ml', 'trainer'),
    });
    const [job] = await jobs.createCustomJob({
      parent: `projects/${PROJECT}/locations/${LOCATION}`,
      customJob: {
        displayName: 'through-the-proxy',
        jobSpec: {
          workerPoolSpecs: [{ machineSpec: { machineType: 'n1-standard-4' }, replicaCount: 1, containerSpec: { imageUri: 'gcr.io/x/y' } }],
        },
      },
    });
    expect(job.name).toMatch(/\/customJobs\/\d+$/);
    // Vertex AI names the job by project number; the proxy authorizes it as the project id.
    expect(job.name).toMatch(new RegExp(`^projects/${PROJECT_NUMBER}/`));
    const [operation] = await jobs.deleteCustomJob({ name: job.name! });
    await operation.promise();
    // The client polls long-running operations through the /ui/ bindings.
    const before = world.vertex.requests.length;
    const polled = await jobs.checkDeleteCustomJobProgress(operation.name!);
    expect(polled.done).toBe(true);
    expect(world.vertex.requests.slice(before).map((r) => r.url.split('?')[0])).toEqual([`/ui/${operation.name}`]);
    // The audit line is written when the response closes: wait for the poll's.
    await world.proxy.waitForAudit(
      (e) => e.kubeVertexProxy.operation === 'operations.get' && e.kubeVertexProxy.principal === 'system:serviceaccount:ml:trainer',
    );
    const entries = world.proxy.audit().filter((e) => e.kubeVertexProxy.principal === 'system:serviceaccount:ml:trainer');
    expect(entries.map((e) => e.kubeVertexProxy.operation)).toEqual(
      expect.arrayContaining(['customJobs.create', 'customJobs.delete', 'operations.get']),
    );
    const deleted = entries.find((e) => e.kubeVertexProxy.operation === 'customJobs.delete')!;
    expect(deleted.kubeVertexProxy.resource).toMatch(new RegExp(`^projects/${PROJECT}/locations/${LOCATION}/customJobs/\\d+$`));
  });

  it('a workload without the training grant cannot create a custom job', async () => {
    const jobs = new v1.JobServiceClient({
      apiEndpoint: '127.0.0.1',
      port: world.proxy.dataPort,
      fallback: true,
      protocol: 'http',
      authClient: authFor('ml', 'scorer'),
    });
    const error = await jobs.createCustomJob({ parent: `projects/${PROJECT}/locations/${LOCATION}`, customJob: { displayName: 'x' } }).then(
      () => undefined,
      (e: unknown) => e as { code: number },
    );
    expect(error?.code).toBe(7);
  });
});
