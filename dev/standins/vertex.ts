/**
 * Vertex AI REST stand-in on loopback (the REST reference:
 * https://cloud.google.com/vertex-ai/docs/reference/rest; the methods in
 * docs/vertex-operations.md). It answers the data-plane and job methods the proxy
 * forwards, in the real JSON shapes (lowerCamelCase, int64 as strings,
 * Timestamps as RFC 3339 with microseconds, enums by name), and records every
 * request it receives so tests can check what the proxy sent upstream.
 *
 * - `POST /{v1|v1beta1}/projects/P/locations/L/endpoints/E:{predict, rawPredict,
 *   explain, generateContent, streamGenerateContent, countTokens, computeTokens,
 *   serverStreamingPredict, streamRawPredict}`
 * - `POST …/projects/P/locations/L/publishers/PUB/models/M:{predict, rawPredict,
 *   streamRawPredict, serverStreamingPredict, generateContent,
 *   streamGenerateContent, countTokens, computeTokens, embedContent}`
 * - `POST /{v}/endpoints/E:…` and `/{v}/publishers/PUB/models/M:…` (the
 *   location-less bindings of generateContent, streamGenerateContent,
 *   countTokens, computeTokens)
 * - `GET …/endpoints/E`; `POST|GET …/customJobs`; `GET|DELETE …/customJobs/J`;
 *   `POST …/customJobs/J:cancel`; `GET …/operations/O` (also nested under a resource,
 *   and under `/ui/`, where the client libraries poll long-running operations)
 * - every other method of the generated operation table under
 *   `projects/P/locations/L` (`src/vertex/operations.generated.ts`): 200 with
 *   `{}`, a long-running operation for the RPCs that return one (pollable
 *   afterwards), the created job's name for job creates, and `{}` messages
 *   for streaming ones. Enough to see any method reach Vertex AI through the
 *   proxy; no state beyond the operations.
 *
 * Every method needs `Authorization: Bearer …` (401 in the real shape
 * otherwise). Streaming methods answer SSE (`data: {json}\r\n\r\n`) with
 * `?alt=sse`, else one JSON array streamed element by element (first byte `[`),
 * which is what google-gax's REST transport parses. `$alt=json;enum-encoding=int`
 * is ignored (enums come back by name, which gax also accepts); `$prettyPrint=0`
 * switches off the two-space pretty printing Google applies by default.
 * Errors are Google's `{"error":{…}}` envelope. No `x-goog-request-id` or other
 * undocumented header is invented.
 *
 * Resource names in answers carry the project *number*, as Vertex AI's do.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { classify } from '../../src/vertex/classify.js';
import type { Operation } from '../../src/vertex/operation-types.js';
import { RPCS } from '../../src/vertex/operations.generated.js';
import { sendGoogleError, statusForHttp, type StandInError } from './google-error.js';
import { listenLoopback, readBody } from './loopback.js';

export interface VertexStandInOptions {
  /** Loopback address; default `127.0.0.1`. */
  readonly host?: string;
  /** Default 0 (a free port). */
  readonly port?: number;
  /** The number Vertex AI writes into resource names it returns. Default `123456789012`. */
  readonly projectNumber?: string;
  /**
   * Decides whether a present `Authorization` header is accepted; false
   * answers the real 401. A missing or non-Bearer header is always refused.
   */
  readonly requireAuthorization?: (authorization: string) => boolean;
  /**
   * Answers a request that carries no `Authorization` header instead of refusing it: the upstream of a front proxy that
   * authenticates its callers, strips their token and adds no credential of its own (kube-rbac-proxy, a benchmark peer).
   * Default false. A header that is present is still checked.
   */
  readonly acceptMissingAuthorization?: boolean;
  /** Wait before sending response headers, for every request. Default 0. */
  readonly delayResponseMs?: number;
  /** Number of messages a streaming method sends. Default 3. */
  readonly streamChunks?: number;
  /** Pause between streamed messages. Default 0. */
  readonly streamDelayMs?: number;
  /** Publisher models (`google/gemini-2.5-flash` or just the model id) that exist; others get the real 404. Default: all exist. */
  readonly publisherModels?: readonly string[];
  /** Keep each request's body in {@link RecordedRequest.body}. Default false (bodies can be large). */
  readonly recordBodies?: boolean;
  /** What the generative model answers (split across stream chunks). */
  readonly responseText?: string;
  /**
   * Endpoint id → its dedicated endpoint's DNS name: `GET …/endpoints/E` then
   * carries `dedicatedEndpointEnabled` and `dedicatedEndpointDns`, and this
   * host refuses the endpoint's prediction calls unless they arrive with that
   * `Host` (the shared regional host does not serve a dedicated endpoint).
   */
  readonly dedicatedEndpoints?: Readonly<Record<string, string>>;
  /** Thinking tokens the model reports (`thoughtsTokenCount`, included in the total). Default 0: not reported. */
  readonly thoughtsTokens?: number;
}

/** One request as the stand-in received it. */
export interface RecordedRequest {
  readonly method: string;
  /** Path and query exactly as on the request line. */
  readonly url: string;
  /** Node's parsed headers (names lower-cased, values as received). */
  readonly headers: IncomingHttpHeaders;
  /** Header names and values in wire order and case. */
  readonly rawHeaders: readonly string[];
  readonly bodyBytes: number;
  /** The body itself, only when the stand-in was started with `recordBodies` (tests that check bytes). */
  readonly body?: Buffer;
  readonly receivedAt: number;
}

export interface VertexStandIn {
  /** `http://127.0.0.1:PORT`: the upstream base URL (paths start with `/v1/`). */
  readonly url: string;
  readonly port: number;
  readonly projectNumber: string;
  /** Every request received, oldest first (cleared by {@link reset}). */
  readonly requests: RecordedRequest[];
  requireAuthorization: ((authorization: string) => boolean) | undefined;
  delayResponseMs: number;
  streamChunks: number;
  streamDelayMs: number;
  thoughtsTokens: number;
  /**
   * The next `times` requests (default 1) that pass the credential check answer
   * `httpStatus` in Google's envelope; `error` overrides the canonical status,
   * message and details.
   */
  failNext(httpStatus: number, times?: number, error?: Partial<StandInError>): void;
  /** The next request is read and recorded but never answered (until close). */
  hangNext(): void;
  /** Stores a long-running operation that `GET …/operations/…` returns; `name` is the full resource name. */
  addOperation(name: string, fields?: { done?: boolean; response?: unknown; error?: unknown; metadata?: unknown }): Record<string, unknown>;
  /** Endpoint id → dedicated endpoint DNS (see the option); mutable. */
  readonly dedicatedEndpoints: Map<string, string>;
  /** Clears recorded requests and pending injected faults. */
  reset(): void;
  /** Stops listening and destroys open connections, including hung and streaming ones. */
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

interface Target {
  readonly project: string | undefined;
  readonly location: string | undefined;
  readonly kind: 'endpoint' | 'publisherModel';
  /** Endpoint id, or model id. */
  readonly id: string;
  readonly publisher: string | undefined;
  readonly verb: string;
}

const ENDPOINT_VERBS = new Set([
  'predict',
  'rawPredict',
  'explain',
  'generateContent',
  'streamGenerateContent',
  'countTokens',
  'computeTokens',
  'serverStreamingPredict',
  'streamRawPredict',
]);
const MODEL_VERBS = new Set([
  'predict',
  'rawPredict',
  'streamRawPredict',
  'serverStreamingPredict',
  'generateContent',
  'streamGenerateContent',
  'countTokens',
  'computeTokens',
  'embedContent',
]);
/** The only bindings without projects/P/locations/L (API-key / global forms). */
const LOCATIONLESS_VERBS = new Set(['generateContent', 'streamGenerateContent', 'countTokens', 'computeTokens']);

/** The RPC behind each verb, for the `metadata.method` of the 401 ErrorInfo. */
const RPC: Record<string, [service: string, rpc: string]> = {
  predict: ['PredictionService', 'Predict'],
  rawPredict: ['PredictionService', 'RawPredict'],
  streamRawPredict: ['PredictionService', 'StreamRawPredict'],
  serverStreamingPredict: ['PredictionService', 'ServerStreamingPredict'],
  explain: ['PredictionService', 'Explain'],
  generateContent: ['PredictionService', 'GenerateContent'],
  streamGenerateContent: ['PredictionService', 'StreamGenerateContent'],
  embedContent: ['PredictionService', 'EmbedContent'],
  countTokens: ['LlmUtilityService', 'CountTokens'],
  computeTokens: ['LlmUtilityService', 'ComputeTokens'],
};

const DEFAULT_TEXT = 'This answer comes from the Vertex AI stand-in running on loopback.';
const NOT_FOUND: StandInError = { status: 'NOT_FOUND', message: 'Requested entity was not found.' };
const INVALID_JSON: StandInError = { status: 'INVALID_ARGUMENT', message: 'Invalid JSON payload received. Unexpected token.' };
const JSON_CONTENT_TYPE = 'application/json; charset=UTF-8';
/** `v1.DatasetService.CreateDataset`: the RPCs whose response is a google.longrunning.Operation. */
const RETURNS_OPERATION: ReadonlySet<string> = new Set(
  RPCS.filter((rpc) => rpc.longRunning).map((rpc) => `${rpc.version}.${rpc.service}.${rpc.rpc}`),
);

/**
 * Starts the Vertex AI stand-in.
 *
 * @throws TypeError for a non-loopback host.
 */
export async function startVertexStandIn(options: VertexStandInOptions = {}): Promise<VertexStandIn> {
  const projectNumber = options.projectNumber ?? '123456789012';
  const responseText = options.responseText ?? DEFAULT_TEXT;
  const publisherModels = options.publisherModels && new Set(options.publisherModels);
  const startedAt = timestamp();
  const closing = new AbortController();
  const failures: Array<{ httpStatus: number; remaining: number; error: Partial<StandInError> }> = [];
  let hangs = 0;
  const customJobs = new Map<string, Json>();
  const operations = new Map<string, Json>();

  /** Sleeps unless the stand-in closes first; false when it did. */
  async function pause(ms: number): Promise<boolean> {
    if (ms <= 0) return !closing.signal.aborted;
    try {
      await sleep(ms, undefined, { signal: closing.signal });
      return true;
    } catch {
      return false;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    standIn.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: { ...req.headers },
      rawHeaders: [...req.rawHeaders],
      bodyBytes: body.length,
      ...(options.recordBodies === true ? { body } : {}),
      receivedAt: Date.now(),
    });
    if (hangs > 0) {
      hangs--;
      return;
    }
    if (!(await pause(standIn.delayResponseMs))) return;

    const url = new URL(req.url ?? '/', 'http://stand-in');
    const pretty = !['0', 'false'].includes(url.searchParams.get('$prettyPrint') ?? '');
    const route = matchRoute(req.method ?? '', url.pathname);
    if (route === undefined) {
      sendGoogleError(res, NOT_FOUND);
      return;
    }

    const authorization = req.headers.authorization;
    const bearer = authorization !== undefined && /^Bearer \S+$/i.test(authorization);
    const anonymous = authorization === undefined && options.acceptMissingAuthorization === true;
    if (!anonymous && (!bearer || (standIn.requireAuthorization !== undefined && !standIn.requireAuthorization(authorization)))) {
      sendGoogleError(res, unauthenticated(route.rpc));
      return;
    }

    const failure = failures[0];
    if (failure !== undefined) {
      if (--failure.remaining <= 0) failures.shift();
      const status = failure.error.status ?? statusForHttp(failure.httpStatus);
      sendGoogleError(
        res,
        {
          status,
          message: failure.error.message ?? `Injected ${status} from the Vertex AI stand-in.`,
          ...(failure.error.details !== undefined && { details: failure.error.details }),
        },
        failure.httpStatus,
      );
      return;
    }

    const send = (json: unknown) => {
      const text = JSON.stringify(json, null, pretty ? 2 : undefined);
      res.writeHead(200, { 'Content-Type': JSON_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };

    if (route.chat === true) {
      const request = parseJson(body);
      if (request === undefined) sendGoogleError(res, INVALID_JSON);
      else await answerChat(res, request);
      return;
    }
    if (route.admin !== undefined) {
      answerAdmin(req.method ?? '', route.admin, body, res, send);
      return;
    }
    if (route.generic !== undefined) {
      if (route.generic.spec.streaming) await stream(res, [{}, {}, {}], url.searchParams.get('alt') === 'sse', pretty);
      else send(answerGeneric(route.generic));
      return;
    }
    if (route.target !== undefined) {
      const target = route.target;
      if (
        target.kind === 'publisherModel' &&
        publisherModels &&
        !publisherModels.has(target.id) &&
        !publisherModels.has(`${target.publisher ?? ''}/${target.id}`)
      ) {
        const name =
          `projects/${target.project ?? projectNumber}/locations/${target.location ?? 'global'}/publishers/` +
          `${target.publisher ?? 'google'}/models/${target.id}`;
        sendGoogleError(res, {
          status: 'NOT_FOUND',
          message:
            `Publisher Model \`${name}\` was not found or your project does not have access to it. Please ensure you are ` +
            `using a valid model version. For more information, see: ` +
            `https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions`,
        });
        return;
      }
      const dedicated = target.kind === 'endpoint' ? standIn.dedicatedEndpoints.get(target.id) : undefined;
      if (dedicated !== undefined && req.headers.host !== dedicated) {
        sendGoogleError(res, {
          status: 'FAILED_PRECONDITION',
          message: `This endpoint is a dedicated endpoint and can only be reached through its dedicated DNS ${dedicated}.`,
        });
        return;
      }
      if (target.verb === 'rawPredict' || target.verb === 'streamRawPredict') {
        await answerRaw(req, res, target, body);
        return;
      }
      const request = parseJson(body);
      if (request === undefined) {
        sendGoogleError(res, INVALID_JSON);
        return;
      }
      if (target.verb === 'streamGenerateContent' || target.verb === 'serverStreamingPredict') {
        const messages = target.verb === 'streamGenerateContent' ? generateContentChunks(target, request) : streamingPredictChunks();
        await stream(res, messages, url.searchParams.get('alt') === 'sse', pretty);
        return;
      }
      send(answerUnary(target, request));
    }
  }

  function answerAdmin(method: string, route: AdminRoute, body: Buffer, res: ServerResponse, send: (json: unknown) => void): void {
    const { location, collection, id, action, version, operationPath } = route;
    if (collection === 'endpoints') {
      send(endpointResource(location, id!));
      return;
    }
    if (collection === 'operations') {
      const operation = operations.get(`locations/${location}/${operationPath}`);
      if (operation === undefined) sendGoogleError(res, NOT_FOUND);
      else send(operation);
      return;
    }
    if (id === undefined && method === 'POST') {
      const request = parseJson(body);
      if (request === undefined) sendGoogleError(res, INVALID_JSON);
      else send(createCustomJob(location, request));
      return;
    }
    if (id === undefined) {
      const jobs = [...customJobs.values()].filter((job) => String(job['name']).includes(`/locations/${location}/`));
      // proto3 JSON leaves out an empty repeated field: an empty list is `{}`.
      send(jobs.length === 0 ? {} : { customJobs: jobs });
      return;
    }
    const job = customJobs.get(`${location}/${id}`);
    if (job === undefined) {
      sendGoogleError(res, NOT_FOUND);
    } else if (action === 'cancel') {
      job['state'] = 'JOB_STATE_CANCELLED';
      job['updateTime'] = timestamp();
      send({});
    } else if (method === 'DELETE') {
      customJobs.delete(`${location}/${id}`);
      const now = timestamp();
      send(
        standIn.addOperation(`projects/${projectNumber}/locations/${location}/operations/${numericId(19)}`, {
          metadata: {
            '@type': `type.googleapis.com/google.cloud.aiplatform.${version}.DeleteOperationMetadata`,
            genericMetadata: { createTime: now, updateTime: now },
          },
          done: true,
          response: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
        }),
      );
    } else {
      send(job);
    }
  }

  /** Any other method of the table: a plausible empty answer (see the module comment). */
  function answerGeneric(operation: Operation): Json {
    const { spec, version, location } = operation;
    const name = operation.resource.replace(/^projects\/[^/]+/, `projects/${projectNumber}`);
    if (spec.protoPackage === 'google.longrunning') {
      if (spec.rpc === 'GetOperation' || spec.rpc === 'WaitOperation') {
        return operations.get(name.replace(/^projects\/[^/]+\//, '')) ?? { name, done: true };
      }
      return {};
    }
    const now = timestamp();
    if (RETURNS_OPERATION.has(operation.methodName.replace('google.cloud.aiplatform.', ''))) {
      return standIn.addOperation(`projects/${projectNumber}/locations/${location ?? 'global'}/operations/${numericId(19)}`, {
        metadata: {
          '@type': `type.googleapis.com/google.cloud.aiplatform.${version}.GenericOperationMetadata`,
          createTime: now,
          updateTime: now,
        },
        done: true,
        response: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
      });
    }
    // A created job is itself the long-running handle: its name and a first state.
    if (spec.longRunning) return { name: `${name}/${numericId(19)}`, state: 'JOB_STATE_PENDING', createTime: now, updateTime: now };
    return {};
  }

  function createCustomJob(location: string, request: Json): Json {
    const id = numericId(19);
    const now = timestamp();
    const job: Json = {
      name: `projects/${projectNumber}/locations/${location}/customJobs/${id}`,
      displayName: request['displayName'] ?? '',
      jobSpec: request['jobSpec'] ?? {},
      state: 'JOB_STATE_PENDING',
      createTime: now,
      updateTime: now,
      ...(request['labels'] !== undefined && { labels: request['labels'] }),
    };
    customJobs.set(`${location}/${id}`, job);
    return job;
  }

  function deployedModelId(endpointId: string): string {
    return digitsFrom(`deployed:${endpointId}`, 19);
  }

  function endpointResource(location: string, endpointId: string): Json {
    const deployedId = deployedModelId(endpointId);
    return {
      name: `projects/${projectNumber}/locations/${location}/endpoints/${endpointId}`,
      displayName: `stand-in-endpoint-${endpointId}`,
      deployedModels: [
        {
          dedicatedResources: { machineSpec: { machineType: 'n1-standard-2' }, minReplicaCount: 1, maxReplicaCount: 1 },
          id: deployedId,
          model: `projects/${projectNumber}/locations/${location}/models/${digitsFrom(`model:${endpointId}`, 19)}`,
          modelVersionId: '1',
          displayName: `stand-in-model-${endpointId}`,
          createTime: startedAt,
        },
      ],
      trafficSplit: { [deployedId]: 100 },
      ...(standIn.dedicatedEndpoints.has(endpointId) && {
        dedicatedEndpointEnabled: true,
        dedicatedEndpointDns: standIn.dedicatedEndpoints.get(endpointId),
      }),
      etag: createHash('sha256').update(endpointId).digest('base64url').slice(0, 27),
      createTime: startedAt,
      updateTime: startedAt,
    };
  }

  function answerUnary(target: Target, request: Json): Json {
    const instances = Array.isArray(request['instances']) ? (request['instances'] as unknown[]) : [];
    switch (target.verb) {
      case 'predict':
      case 'explain': {
        // An identity model: each prediction is its instance, so a test can see what arrived.
        const location = target.location ?? 'global';
        const endpointFields =
          target.kind === 'endpoint'
            ? {
                deployedModelId: deployedModelId(target.id),
                ...(target.verb === 'predict' && {
                  model: `projects/${projectNumber}/locations/${location}/models/${digitsFrom(`model:${target.id}`, 19)}`,
                  modelVersionId: '1',
                  modelDisplayName: `stand-in-model-${target.id}`,
                }),
              }
            : {};
        if (target.verb === 'predict') return { predictions: instances, ...endpointFields };
        return {
          explanations: instances.map(() => ({
            attributions: [
              { baselineOutputValue: 0, instanceOutputValue: 1, featureAttributions: {}, outputIndex: [0], approximationError: 0 },
            ],
          })),
          ...endpointFields,
          predictions: instances,
        };
      }
      case 'generateContent': {
        const chunks = generateContentChunks(target, request, 1);
        return chunks[0] ?? {};
      }
      case 'countTokens': {
        const text = requestText(request);
        const tokens = words(text).length;
        return {
          totalTokens: tokens,
          totalBillableCharacters: text.replace(/\s/g, '').length,
          promptTokensDetails: [{ modality: 'TEXT', tokenCount: tokens }],
        };
      }
      case 'computeTokens': {
        const contents = Array.isArray(request['contents']) ? (request['contents'] as Json[]) : [];
        const groups =
          contents.length > 0
            ? contents.map((c) => ({ role: typeof c['role'] === 'string' ? c['role'] : 'user', text: contentText(c) }))
            : instances.map((i) => ({ role: undefined, text: typeof i === 'string' ? i : JSON.stringify(i) }));
        return {
          tokensInfo: groups.map(({ role, text }) => ({
            tokens: words(text).map((w) => Buffer.from(w).toString('base64')),
            // int64 is a JSON string.
            tokenIds: words(text).map((w) => digitsFrom(w, 6)),
            ...(role !== undefined && { role }),
          })),
        };
      }
      case 'embedContent': {
        const text = contentText((request['content'] ?? {}) as Json);
        const dims = typeof request['outputDimensionality'] === 'number' ? request['outputDimensionality'] : 768;
        const tokens = words(text).length;
        return {
          embedding: { values: embedding(text, dims) },
          usageMetadata: { promptTokenCount: tokens, totalTokenCount: tokens },
          truncated: false,
        };
      }
      default:
        return {};
    }
  }

  function generateContentChunks(target: Target, request: Json, count = Math.max(1, standIn.streamChunks)): Json[] {
    const promptTokens = Math.max(1, words(requestText(request)).length);
    const pieces = splitText(responseText, count);
    const candidateTokens = words(responseText).length;
    const createTime = timestamp();
    const responseId = randomBytes(17).toString('base64url').slice(0, 23);
    const modelVersion = target.kind === 'publisherModel' ? target.id : `stand-in-model-${target.id}`;
    return pieces.map((text, i) => {
      const last = i === pieces.length - 1;
      return {
        candidates: [
          {
            content: { role: 'model', parts: [{ text }] },
            ...(last && { finishReason: 'STOP', avgLogprobs: -0.12 }),
          },
        ],
        // Usage arrives with the final message of a stream (and with a unary answer).
        ...(last && {
          usageMetadata: {
            promptTokenCount: promptTokens,
            candidatesTokenCount: candidateTokens,
            ...(standIn.thoughtsTokens > 0 && { thoughtsTokenCount: standIn.thoughtsTokens }),
            totalTokenCount: promptTokens + candidateTokens + standIn.thoughtsTokens,
            trafficType: 'ON_DEMAND',
            promptTokensDetails: [{ modality: 'TEXT', tokenCount: promptTokens }],
            candidatesTokensDetails: [{ modality: 'TEXT', tokenCount: candidateTokens }],
          },
        }),
        modelVersion,
        createTime,
        responseId,
      };
    });
  }

  /**
   * OpenAI-compatible chat completions: a `chat.completion`, or with
   * `"stream": true` `data: {chunk}\n\n` events and `data: [DONE]`; with
   * `stream_options.include_usage` every chunk carries `"usage": null` and a
   * last chunk with no choices carries the usage.
   */
  async function answerChat(res: ServerResponse, request: Json): Promise<void> {
    const model = typeof request['model'] === 'string' ? request['model'] : 'google/gemini-2.5-flash';
    const messages = Array.isArray(request['messages']) ? (request['messages'] as Json[]) : [];
    const promptTokens = Math.max(1, words(messages.map((m) => (typeof m['content'] === 'string' ? m['content'] : '')).join(' ')).length);
    const completionTokens = words(responseText).length;
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
    const id = `chatcmpl-${randomBytes(8).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    if (request['stream'] !== true) {
      const text = JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: responseText }, finish_reason: 'stop' }],
        usage,
      });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    const includeUsage = (request['stream_options'] as Json | undefined)?.['include_usage'] === true;
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    const pieces = splitText(responseText, Math.max(1, standIn.streamChunks));
    for (const [i, piece] of pieces.entries()) {
      if (i > 0 && !(await pause(standIn.streamDelayMs))) return;
      if (res.destroyed) return;
      const last = i === pieces.length - 1;
      const chunk = {
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        choices: [{ index: 0, delta: { ...(i === 0 && { role: 'assistant' }), content: piece }, ...(last && { finish_reason: 'stop' }) }],
        ...(includeUsage && { usage: null }),
      };
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    }
    if (includeUsage) res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`);
    res.end('data: [DONE]\n\n');
  }

  function streamingPredictChunks(): Json[] {
    return splitText(responseText, Math.max(1, standIn.streamChunks)).map((text) => ({
      outputs: [{ dtype: 'STRING', shape: ['1'], stringVal: [text] }],
    }));
  }

  async function stream(res: ServerResponse, messages: Json[], sse: boolean, pretty: boolean): Promise<void> {
    res.writeHead(200, { 'Content-Type': sse ? 'text/event-stream' : JSON_CONTENT_TYPE });
    for (const [i, message] of messages.entries()) {
      if (i > 0 && !(await pause(standIn.streamDelayMs))) return;
      if (res.destroyed) return;
      if (sse) {
        // One single-line event per message, separated by CRLF CRLF (both Google SDK parsers accept it).
        res.write(`data: ${JSON.stringify(message)}\r\n\r\n`);
      } else {
        // gax's StreamArrayParser requires the very first byte to be '['.
        res.write(`${i === 0 ? '[' : ',\r\n'}${JSON.stringify(message, null, pretty ? 2 : undefined)}`);
      }
    }
    res.end(sse ? undefined : ']');
  }

  async function answerRaw(req: IncomingMessage, res: ServerResponse, target: Target, body: Buffer): Promise<void> {
    // An echo model server: the raw body comes back with its content type.
    const headers: Record<string, string> = { 'Content-Type': req.headers['content-type'] ?? 'application/octet-stream' };
    if (target.kind === 'endpoint') {
      headers['X-Vertex-AI-Endpoint-Id'] = target.id;
      headers['X-Vertex-AI-Deployed-Model-Id'] = deployedModelId(target.id);
    }
    if (target.verb === 'rawPredict') {
      res.writeHead(200, { ...headers, 'Content-Length': String(body.length) });
      res.end(body);
      return;
    }
    res.writeHead(200, headers);
    const count = Math.max(1, Math.min(standIn.streamChunks, body.length));
    for (let i = 0; i < count; i++) {
      if (i > 0 && !(await pause(standIn.streamDelayMs))) return;
      if (res.destroyed) return;
      res.write(body.subarray(Math.floor((i * body.length) / count), Math.floor(((i + 1) * body.length) / count)));
    }
    res.end();
  }

  function matchRoute(method: string, pathname: string): Route | undefined {
    const m = /^\/(v1|v1beta1|ui)\/(.+)$/.exec(pathname);
    if (!m) return undefined;
    const path = m[2]!;
    let r: RegExpExecArray | null;
    if (m[1] === 'ui') {
      // The client libraries' LRO helpers poll `GET /ui/{name=projects/*/locations/*/operations/*}`
      // (the first http rule gax is given for GetOperation); it is the only /ui/ route served.
      r = /^projects\/[^/:]+\/locations\/([^/:]+)\/((?:[^/:]+\/[^/:]+\/)?operations\/[^/:]+)$/.exec(path);
      return method === 'GET' && r ? operationRoute('v1', r[1]!, r[2]!) : undefined;
    }
    const version = m[1] as 'v1' | 'v1beta1';
    if (method === 'POST') {
      r = /^projects\/([^/:]+)\/locations\/([^/:]+)\/endpoints\/([^/:]+):(\w+)$/.exec(path);
      if (r && ENDPOINT_VERBS.has(r[4]!)) return predictionRoute(version, r[1], r[2], 'endpoint', r[3]!, undefined, r[4]!);
      r = /^projects\/([^/:]+)\/locations\/([^/:]+)\/publishers\/([^/:]+)\/models\/([^/:]+):(\w+)$/.exec(path);
      if (r && MODEL_VERBS.has(r[5]!)) return predictionRoute(version, r[1], r[2], 'publisherModel', r[4]!, r[3], r[5]!);
      r = /^endpoints\/([^/:]+):(\w+)$/.exec(path);
      if (r && LOCATIONLESS_VERBS.has(r[2]!)) return predictionRoute(version, undefined, undefined, 'endpoint', r[1]!, undefined, r[2]!);
      r = /^publishers\/([^/:]+)\/models\/([^/:]+):(\w+)$/.exec(path);
      if (r && LOCATIONLESS_VERBS.has(r[3]!)) return predictionRoute(version, undefined, undefined, 'publisherModel', r[2]!, r[1], r[3]!);
    }
    if (
      method === 'POST' &&
      version === 'v1beta1' &&
      /^projects\/[^/:]+\/locations\/[^/:]+\/endpoints\/openapi\/chat\/completions$/.test(path)
    ) {
      return { rpc: 'google.cloud.aiplatform.v1beta1.PredictionService.ChatCompletions', chat: true };
    }
    r = /^projects\/([^/:]+)\/locations\/([^/:]+)\/(.+)$/.exec(path);
    if (!r) return undefined;
    const [, , location, rest] = r as unknown as [string, string, string, string];
    const admin = (collection: AdminRoute['collection'], rpc: string, extra: Partial<AdminRoute> = {}): Route => ({
      rpc: `google.cloud.aiplatform.${version}.${rpc}`,
      admin: { version, location, collection, id: undefined, action: undefined, operationPath: '', ...extra },
    });
    if (method === 'GET' && /^endpoints\/[^/:]+$/.test(rest))
      return admin('endpoints', 'EndpointService.GetEndpoint', { id: rest.slice('endpoints/'.length) });
    if (rest === 'customJobs') {
      if (method === 'POST') return admin('customJobs', 'JobService.CreateCustomJob');
      if (method === 'GET') return admin('customJobs', 'JobService.ListCustomJobs');
      return undefined;
    }
    r = /^customJobs\/([^/:]+)(?::(cancel))?$/.exec(rest);
    if (r) {
      const id = r[1]!;
      if (r[2] === 'cancel')
        return method === 'POST' ? admin('customJobs', 'JobService.CancelCustomJob', { id, action: 'cancel' }) : undefined;
      if (method === 'GET') return admin('customJobs', 'JobService.GetCustomJob', { id });
      if (method === 'DELETE') return admin('customJobs', 'JobService.DeleteCustomJob', { id });
      return undefined;
    }
    if (method === 'GET' && /^(?:[^/:]+\/[^/:]+\/)?operations\/[^/:]+$/.test(rest)) return operationRoute(version, location, rest);
    return genericRoute(method, pathname);
  }

  function genericRoute(method: string, pathname: string): Route | undefined {
    let operation: Operation;
    try {
      operation = classify(method, pathname);
    } catch {
      return undefined;
    }
    // The proxy never forwards the express-mode forms; the stand-in does not pretend to serve them.
    if (operation.project === null || operation.location === null) return undefined;
    return { rpc: operation.methodName, generic: operation };
  }

  function operationRoute(version: 'v1' | 'v1beta1', location: string, operationPath: string): Route {
    return {
      rpc: 'google.longrunning.Operations.GetOperation',
      admin: { version, location, collection: 'operations', id: undefined, action: undefined, operationPath },
    };
  }

  function predictionRoute(
    version: 'v1' | 'v1beta1',
    project: string | undefined,
    location: string | undefined,
    kind: Target['kind'],
    id: string,
    publisher: string | undefined,
    verb: string,
  ): Route {
    const [service, rpc] = RPC[verb] ?? ['PredictionService', verb];
    // v1beta1 keeps CountTokens in PredictionService:
    // https://github.com/googleapis/googleapis/blob/master/google/cloud/aiplatform/v1beta1/prediction_service.proto
    const actualService = verb === 'countTokens' && version === 'v1beta1' ? 'PredictionService' : service;
    return {
      rpc: `google.cloud.aiplatform.${version}.${actualService}.${rpc}`,
      target: { project, location, kind, id, publisher, verb },
    };
  }

  const listener = await listenLoopback(handle, {
    ...(options.host !== undefined && { host: options.host }),
    ...(options.port !== undefined && { port: options.port }),
  });
  const standIn: VertexStandIn = {
    url: listener.url,
    port: listener.port,
    projectNumber,
    requests: [],
    requireAuthorization: options.requireAuthorization,
    delayResponseMs: options.delayResponseMs ?? 0,
    streamChunks: options.streamChunks ?? 3,
    streamDelayMs: options.streamDelayMs ?? 0,
    dedicatedEndpoints: new Map(Object.entries(options.dedicatedEndpoints ?? {})),
    thoughtsTokens: options.thoughtsTokens ?? 0,
    failNext(httpStatus, times = 1, error = {}) {
      failures.push({ httpStatus, remaining: times, error });
    },
    hangNext() {
      hangs++;
    },
    addOperation(name, fields = {}) {
      const operation: Json = { name, ...fields, done: fields.done ?? true };
      operations.set(name.replace(/^projects\/[^/]+\//, ''), operation);
      return operation;
    },
    reset() {
      standIn.requests.length = 0;
      failures.length = 0;
      hangs = 0;
    },
    close: async () => {
      closing.abort();
      await listener.close();
    },
  };

  return standIn;
}

interface AdminRoute {
  readonly version: 'v1' | 'v1beta1';
  readonly location: string;
  readonly collection: 'endpoints' | 'customJobs' | 'operations';
  readonly id: string | undefined;
  readonly action: 'cancel' | undefined;
  /** For operations: the path after `locations/L/`. */
  readonly operationPath: string;
}

interface Route {
  /** Fully qualified RPC name, e.g. `google.cloud.aiplatform.v1.PredictionService.Predict`. */
  readonly rpc: string;
  readonly target?: Target;
  readonly admin?: AdminRoute;
  /** Any other method of the operation table. */
  readonly generic?: Operation;
  /** The OpenAI-compatible chat completions endpoint (`endpoints/openapi/chat/completions`). */
  readonly chat?: true;
}

/** Vertex AI's 401 (https://cloud.google.com/apis/design/errors), naming the RPC that was called. */
function unauthenticated(rpc: string): StandInError {
  return {
    status: 'UNAUTHENTICATED',
    message:
      'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid ' +
      'authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
    details: [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'ACCESS_TOKEN_TYPE_UNSUPPORTED',
        metadata: { method: rpc, service: 'aiplatform.googleapis.com' },
      },
    ],
  };
}

function parseJson(body: Buffer): Json | undefined {
  if (body.length === 0) return {};
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
  } catch {
    return undefined;
  }
}

function contentText(content: Json): string {
  const parts = Array.isArray(content['parts']) ? (content['parts'] as Json[]) : [];
  return parts
    .map((p) => (typeof p['text'] === 'string' ? p['text'] : ''))
    .filter((t) => t !== '')
    .join(' ');
}

/** All prompt text of a generate/count request: contents, system instruction, or instances. */
function requestText(request: Json): string {
  const contents = Array.isArray(request['contents']) ? (request['contents'] as Json[]) : [];
  const system = request['systemInstruction'] as Json | undefined;
  const instances = Array.isArray(request['instances']) ? (request['instances'] as unknown[]) : [];
  return [
    ...contents.map(contentText),
    ...(system ? [contentText(system)] : []),
    ...instances.map((i) => (typeof i === 'string' ? i : JSON.stringify(i))),
  ].join(' ');
}

function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}

/**
 * Splits text into exactly `count` pieces that concatenate back to it: on word
 * boundaries (each piece keeps its leading space) when there are enough words,
 * else by character. Tests set `streamChunks` and count the messages.
 */
function splitText(text: string, count: number): string[] {
  const words = text.match(/\s*\S+/g) ?? [];
  const units = words.length >= count ? words : Array.from(text);
  return Array.from({ length: count }, (_, i) =>
    units.slice(Math.floor((i * units.length) / count), Math.floor(((i + 1) * units.length) / count)).join(''),
  );
}

function embedding(text: string, dims: number): number[] {
  const values: number[] = [];
  let block = createHash('sha256').update(text).digest();
  while (values.length < dims) {
    for (let i = 0; i + 1 < block.length && values.length < dims; i += 2) {
      values.push(Math.round(((block.readUInt16BE(i) / 65535) * 2 - 1) * 1e6) / 1e6);
    }
    block = createHash('sha256').update(block).digest();
  }
  return values;
}

function digitsFrom(seed: string, length: number): string {
  const digest = createHash('sha256').update(seed).digest();
  let out = String((digest[0]! % 9) + 1);
  for (let i = 1; out.length < length; i++) out += String(digest[i % digest.length]! % 10);
  return out;
}

function numericId(length: number): string {
  return digitsFrom(randomBytes(16).toString('hex'), length);
}

/** RFC 3339 with microseconds, as Google's Timestamp JSON is written. */
function timestamp(): string {
  return new Date().toISOString().replace(/Z$/, '000Z');
}
