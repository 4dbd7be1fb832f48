/**
 * What the proxy's spans say, from what the pipeline learnt. Pure.
 *
 * The server span carries the audit record's facts (operation, permission,
 * resource, decision and rule, the caller's namespace, status) — never the
 * token, the caller's full identity beyond its namespace, a body or the query.
 * The client span to Vertex AI follows the HTTP client and, for generative
 * calls, the GenAI semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/).
 *
 * @module
 */
import type { AuditRecord } from '../audit/record.js';
import type { RequestContext } from '../request-context.js';
import type { Operation } from '../vertex/operation-types.js';
import type { SpanAttributes } from './tracing.js';

/** `gen_ai.operation.name` by Vertex AI RPC; other RPCs are not generative calls in the conventions' sense. */
const GEN_AI_OPERATION: Readonly<Record<string, string>> = {
  GenerateContent: 'generate_content',
  StreamGenerateContent: 'generate_content',
  ChatCompletions: 'chat',
  EmbedContent: 'embeddings',
};

/** The conventions' value for Vertex AI (`gen_ai.system`, and its successor `gen_ai.provider.name`). */
export const GEN_AI_SYSTEM = 'gcp.vertex_ai';

const PUBLISHER_MODEL = /(?:^|\/)publishers\/[^/]+\/models\/([^/]+)$/;

/** The server span's name once the request is classified: `POST endpoints.predict`, `POST callback:/callbacks/training`. */
export function serverSpanName(record: AuditRecord): string {
  const what = record.operation ?? (record.route === undefined ? 'unclassified' : `callback:${record.route}`);
  return `${record.httpMethod} ${what}`;
}

/** The server span's attributes, from the request's audit record. */
export function serverSpanAttributes(record: AuditRecord): SpanAttributes {
  return {
    'http.request.method': record.httpMethod,
    'url.path': record.path,
    'http.response.status_code': record.status,
    'kvp.request_id': record.requestId,
    'kvp.direction': record.direction,
    'kvp.operation': record.operation,
    'kvp.callback_route': record.route,
    'kvp.permission': record.permission,
    'kvp.resource': record.resource,
    'kvp.project': record.project,
    'kvp.location': record.location,
    'kvp.decision': record.decision,
    'kvp.rule': record.ruleId,
    'kvp.reason': record.reason,
    'kvp.error_code': record.errorCode,
    'kvp.principal.namespace': record.namespace,
    'kvp.policy_version': record.policyVersion,
  };
}

/** A server span is an error only for 5xx: a refusal (4xx) is the proxy doing its job (HTTP server span conventions). */
export function serverSpanFailed(record: AuditRecord): boolean {
  return record.status >= 500 || record.upstreamError !== undefined;
}

export interface UpstreamSpanStart {
  readonly name: string;
  readonly attributes: SpanAttributes;
}

/** The upstream (client) span for a Vertex AI call: HTTP client attributes, plus GenAI ones for generative calls. */
export function vertexSpanStart(operation: Operation | undefined, method: string, origin: string, host: string): UpstreamSpanStart {
  const rpc = operation?.spec.rpc;
  const genAiOperation = rpc === undefined ? undefined : GEN_AI_OPERATION[rpc];
  const base: SpanAttributes = {
    'http.request.method': method,
    'server.address': host,
    'url.scheme': origin.startsWith('https:') ? 'https' : 'http',
    'kvp.operation': operation?.spec.id,
    'rpc.system': 'http',
    'rpc.method': operation?.methodName,
  };
  if (genAiOperation === undefined) return { name: `${method} ${operation?.spec.id ?? 'vertex'}`, attributes: base };
  const model = operation === undefined ? undefined : PUBLISHER_MODEL.exec(operation.resource)?.[1];
  return {
    // The conventions' span name: `{gen_ai.operation.name} {gen_ai.request.model}`.
    name: model === undefined ? genAiOperation : `${genAiOperation} ${model}`,
    attributes: {
      ...base,
      'gen_ai.system': GEN_AI_SYSTEM,
      'gen_ai.provider.name': GEN_AI_SYSTEM,
      'gen_ai.operation.name': genAiOperation,
      'gen_ai.request.model': model,
    },
  };
}

/** The upstream span's closing attributes: Vertex AI's status and request id, and token usage when known. */
export function upstreamSpanEndAttributes(ctx: RequestContext): SpanAttributes {
  return {
    'http.response.status_code': ctx.upstreamStatus,
    'kvp.upstream_request_id': ctx.upstreamRequestId,
    ...genAiUsageAttributes(ctx),
  };
}

/**
 * `gen_ai.usage.input_tokens` / `output_tokens` and `gen_ai.response.model`
 * from the usage the response reported (read as it streamed past; see
 * src/usage/). Output counts what the model generated: candidates plus
 * thinking tokens, as Vertex AI bills them. Nothing when no usage was read.
 */
export function genAiUsageAttributes(ctx: RequestContext): SpanAttributes {
  const usage = ctx.usage;
  if (usage === undefined) return {};
  const tokens = usage.tokens;
  const output =
    tokens?.candidates === undefined && tokens?.thoughts === undefined ? undefined : (tokens.candidates ?? 0) + (tokens.thoughts ?? 0);
  return {
    ...(tokens?.prompt === undefined ? {} : { 'gen_ai.usage.input_tokens': tokens.prompt }),
    ...(output === undefined ? {} : { 'gen_ai.usage.output_tokens': output }),
    ...(usage.modelVersion === undefined ? {} : { 'gen_ai.response.model': usage.modelVersion }),
  };
}

/** A client span is an error when the upstream answered 5xx, failed, or broke mid-stream. */
export function upstreamSpanFailed(ctx: RequestContext): string | undefined {
  if (ctx.upstreamStreamError !== undefined) return 'upstream-stream-error';
  if (ctx.upstreamStatus === undefined) return ctx.failure?.code ?? 'no-response';
  if (ctx.upstreamStatus >= 500) return `http-${ctx.upstreamStatus}`;
  return undefined;
}
