/**
 * The Vertex AI stand-in driven by the official client, @google-cloud/aiplatform
 * 7 on google-gax 6 in REST mode (`fallback: true`, `protocol: 'http'`): the
 * client must build its URLs against the stand-in and parse every answer,
 * including errors (as GoogleError with the gRPC code) and server streaming
 * (the streamed JSON array).
 */
import { v1 } from '@google-cloud/aiplatform';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startVertexStandIn, type VertexStandIn } from '../../dev/standins/vertex.js';

const PROJECT = 'demo-project';
const LOCATION = 'us-central1';
const ENDPOINT = `projects/${PROJECT}/locations/${LOCATION}/endpoints/1234567890`;
const MODEL = `projects/${PROJECT}/locations/${LOCATION}/publishers/google/models/gemini-2.5-flash`;
/** gRPC status codes (google/rpc/code.proto). */
const Code = { NOT_FOUND: 5, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, UNAUTHENTICATED: 16 } as const;

describe('@google-cloud/aiplatform (REST) against the Vertex AI stand-in', () => {
  let vertex: VertexStandIn;
  let options: ConstructorParameters<typeof v1.PredictionServiceClient>[0];
  beforeAll(async () => {
    vertex = await startVertexStandIn({ projectNumber: '123456789012' });
    // gax 6 takes a ready auth client: `authClient` becomes the fetch transport
    // (auth.fetch), and its universeDomain (googleapis.com) matches the default.
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'ya29.test-token' });
    options = { apiEndpoint: '127.0.0.1', port: vertex.port, fallback: true, protocol: 'http', authClient };
  });
  afterAll(() => vertex.close());
  beforeEach(() => {
    vertex.reset();
    vertex.requireAuthorization = undefined;
  });

  it('predict: the client parses the PredictResponse', async () => {
    const client = new v1.PredictionServiceClient(options);
    const [response] = await client.predict({
      endpoint: ENDPOINT,
      instances: [{ structValue: { fields: { feature: { numberValue: 1 } } } }],
    });
    expect(response.deployedModelId).toMatch(/^\d{19}$/);
    expect(response.model).toMatch(/^projects\/123456789012\/locations\/us-central1\/models\/\d+$/);
    expect(response.modelVersionId).toBe('1');
    expect(response.modelDisplayName).toBe('stand-in-model-1234567890');
    // protobuf.js adds the oneof discriminator (`kind`) when it decodes a Value.
    expect(response.predictions).toMatchObject([{ structValue: { fields: { feature: { numberValue: 1 } } } }]);

    // What gax sent: the transcoded URL with its numeric-enum marker, and our bearer.
    const [request] = vertex.requests;
    expect(request!.method).toBe('POST');
    expect(request!.url).toBe(`/v1/${ENDPOINT}:predict?$alt=json%3Benum-encoding=int`);
    expect(request!.headers.authorization).toBe('Bearer ya29.test-token');
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.headers['x-goog-api-client']).toMatch(/gax\/[\d.]+-fallback .*rest\//);
    expect(request!.headers['x-goog-request-params']).toBe(`endpoint=${encodeURIComponent(ENDPOINT)}`);
  });

  it('generateContent: candidates, usage, modelVersion, createTime, responseId', async () => {
    const client = new v1.PredictionServiceClient(options);
    const [response] = await client.generateContent({ model: MODEL, contents: [{ role: 'user', parts: [{ text: 'say hello to me' }] }] });
    const [candidate] = response.candidates ?? [];
    expect(candidate?.content?.role).toBe('model');
    expect(candidate?.content?.parts?.[0]?.text).toContain('stand-in');
    expect(candidate?.finishReason).toBe('STOP');
    expect(response.usageMetadata).toMatchObject({ promptTokenCount: 4, trafficType: 'ON_DEMAND' });
    expect(response.usageMetadata?.totalTokenCount).toBe(
      (response.usageMetadata?.promptTokenCount ?? 0) + (response.usageMetadata?.candidatesTokenCount ?? 0),
    );
    expect(response.modelVersion).toBe('gemini-2.5-flash');
    expect(response.responseId).toMatch(/^[\w-]{23}$/);
    // Timestamp JSON → {seconds, nanos}: proves createTime is a valid RFC 3339 string.
    expect(Number(response.createTime?.seconds)).toBeGreaterThan(1.7e9);
    expect(vertex.requests[0]!.url).toBe(`/v1/${MODEL}:generateContent?$alt=json%3Benum-encoding=int`);
  });

  it('streamGenerateContent: server streaming over REST reads the JSON array element by element', async () => {
    vertex.streamChunks = 4;
    vertex.streamDelayMs = 20;
    const client = new v1.PredictionServiceClient(options);
    const stream = client.streamGenerateContent({ model: MODEL, contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });
    const messages: Array<{ text: string; finish: unknown; usage: unknown }> = [];
    for await (const message of stream as AsyncIterable<{
      candidates?: Array<{ content?: { parts?: Array<{ text?: string }> }; finishReason?: unknown }>;
      usageMetadata?: unknown;
    }>) {
      messages.push({
        text: message.candidates?.[0]?.content?.parts?.[0]?.text ?? '',
        finish: message.candidates?.[0]?.finishReason,
        usage: message.usageMetadata,
      });
    }
    expect(messages).toHaveLength(4);
    expect(messages.map((m) => m.text).join('')).toBe('This answer comes from the Vertex AI stand-in running on loopback.');
    expect(messages.slice(0, 3).every((m) => m.usage === null || m.usage === undefined)).toBe(true);
    expect(messages[3]).toMatchObject({ finish: 'STOP', usage: { trafficType: 'ON_DEMAND' } });
    vertex.streamChunks = 3;
    vertex.streamDelayMs = 0;
  });

  it('countTokens and computeTokens (LlmUtilityService): int64 token ids as strings', async () => {
    const client = new v1.LlmUtilityServiceClient(options);
    const [count] = await client.countTokens({ endpoint: MODEL, contents: [{ role: 'user', parts: [{ text: 'one two three' }] }] });
    expect(count).toMatchObject({ totalTokens: 3, totalBillableCharacters: 11 });
    const [computed] = await client.computeTokens({ endpoint: MODEL, contents: [{ role: 'user', parts: [{ text: 'one two' }] }] });
    const [info] = computed.tokensInfo ?? [];
    expect(info?.role).toBe('user');
    expect(info?.tokenIds).toHaveLength(2);
    expect(Buffer.from(info!.tokens![0] as Uint8Array).toString()).toBe('one');
  });

  it('errors surface as GoogleError with the gRPC code and the Google message', async () => {
    const client = new v1.PredictionServiceClient(options);
    vertex.failNext(429);
    await expect(client.predict({ endpoint: ENDPOINT, instances: [] })).rejects.toMatchObject({
      code: Code.RESOURCE_EXHAUSTED,
      message: expect.stringContaining('Injected RESOURCE_EXHAUSTED'),
    });
    vertex.failNext(403, 1, {
      message: "Permission 'aiplatform.endpoints.predict' denied on resource",
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'IAM_PERMISSION_DENIED',
          domain: 'aiplatform.googleapis.com',
          metadata: { permission: 'aiplatform.endpoints.predict' },
        },
      ],
    });
    await expect(client.predict({ endpoint: ENDPOINT, instances: [] })).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
      reason: 'IAM_PERMISSION_DENIED',
      domain: 'aiplatform.googleapis.com',
    });
  });

  it('refuses a token the hook rejects with the real 401, which gax maps to UNAUTHENTICATED', async () => {
    vertex.requireAuthorization = (header) => header === 'Bearer ya29.other';
    const client = new v1.PredictionServiceClient(options);
    await expect(client.predict({ endpoint: ENDPOINT, instances: [] })).rejects.toMatchObject({
      code: Code.UNAUTHENTICATED,
      reason: 'ACCESS_TOKEN_TYPE_UNSUPPORTED',
      errorInfoMetadata: { method: 'google.cloud.aiplatform.v1.PredictionService.Predict', service: 'aiplatform.googleapis.com' },
    });
  });

  it('a missing publisher model is the documented NOT_FOUND', async () => {
    const strict = await startVertexStandIn({ publisherModels: ['gemini-2.5-flash'] });
    try {
      const client = new v1.PredictionServiceClient({ ...options, port: strict.port });
      const missing = MODEL.replace('gemini-2.5-flash', 'gemini-0');
      await expect(client.generateContent({ model: missing, contents: [{ role: 'user', parts: [{ text: 'x' }] }] })).rejects.toMatchObject({
        code: Code.NOT_FOUND,
        message: expect.stringContaining(`Publisher Model \`${missing}\` was not found`),
      });
    } finally {
      await strict.close();
    }
  });

  it('JobServiceClient: createCustomJob, getCustomJob, listCustomJobs, cancel and delete (LRO)', async () => {
    const client = new v1.JobServiceClient(options);
    const parent = `projects/${PROJECT}/locations/${LOCATION}`;
    const [job] = await client.createCustomJob({
      parent,
      customJob: {
        displayName: 'train',
        jobSpec: {
          workerPoolSpecs: [
            {
              machineSpec: { machineType: 'n1-standard-4' },
              replicaCount: 1,
              containerSpec: { imageUri: 'us-docker.pkg.dev/p/r/trainer:1' },
            },
          ],
        },
      },
    });
    expect(job.name).toMatch(/^projects\/123456789012\/locations\/us-central1\/customJobs\/\d{19}$/);
    expect(job.state).toBe('JOB_STATE_PENDING');
    expect(job.displayName).toBe('train');
    expect(job.jobSpec?.workerPoolSpecs?.[0]?.machineSpec?.machineType).toBe('n1-standard-4');
    expect(Number(job.createTime?.seconds)).toBeGreaterThan(1.7e9);

    const [fetched] = await client.getCustomJob({ name: job.name! });
    expect(fetched.name).toBe(job.name);
    const [list] = await client.listCustomJobs({ parent });
    expect(list.map((j) => j.name)).toContain(job.name);

    await client.cancelCustomJob({ name: job.name! });
    expect((await client.getCustomJob({ name: job.name! }))[0].state).toBe('JOB_STATE_CANCELLED');

    const [operation] = await client.deleteCustomJob({ name: job.name! });
    await operation.promise();
    expect(operation.done).toBe(true);
    expect(operation.name).toMatch(/^projects\/123456789012\/locations\/us-central1\/operations\/\d+$/);
    await expect(client.getCustomJob({ name: job.name! })).rejects.toMatchObject({ code: Code.NOT_FOUND });

    // The LRO helper polls through the first http rule the library hands gax: /ui/…, not /v1/….
    const polled = await client.checkDeleteCustomJobProgress(operation.name!);
    expect(polled.done).toBe(true);
    expect(vertex.requests.at(-1)!.url).toBe(`/ui/${operation.name!}?`);
  });

  it('EndpointServiceClient: getEndpoint returns the deployed model and traffic split', async () => {
    const client = new v1.EndpointServiceClient(options);
    const [endpoint] = await client.getEndpoint({ name: ENDPOINT });
    expect(endpoint.name).toBe('projects/123456789012/locations/us-central1/endpoints/1234567890');
    const deployed = endpoint.deployedModels?.[0];
    expect(deployed?.id).toMatch(/^\d{19}$/);
    expect(endpoint.trafficSplit).toEqual({ [deployed!.id!]: 100 });
  });
});
