/**
 * Which classified operations carry usage, how their responses are framed,
 * and which model a call used. Pure.
 *
 * @module
 */
import type { Operation } from '../vertex/operation-types.js';
import type { UsageFraming } from './usage.js';

/** Operation ids whose successful responses report token usage. */
const USAGE_OPERATIONS: ReadonlyMap<string, 'gemini' | 'openai' | 'embeddings'> = new Map([
  ['publisherModels.generateContent', 'gemini'],
  ['publisherModels.streamGenerateContent', 'gemini'],
  ['endpoints.generateContent', 'gemini'],
  ['endpoints.streamGenerateContent', 'gemini'],
  ['publisherModels.embedContent', 'gemini'],
  ['endpoints.chatCompletions', 'openai'],
  // Embedding models answer predict with per-instance token statistics.
  ['publisherModels.predict', 'embeddings'],
]);

/** Whether this operation's responses may carry usage (decided before forwarding: cheap). */
export function carriesUsage(operation: Operation | undefined): boolean {
  return operation !== undefined && USAGE_OPERATIONS.has(operation.spec.id);
}

/**
 * The framing of a successful response, from the operation and the response's
 * content type; undefined when it carries no usage.
 */
export function usageFraming(operation: Operation | undefined, contentType: string | undefined): UsageFraming | undefined {
  if (operation === undefined) return undefined;
  const family = USAGE_OPERATIONS.get(operation.spec.id);
  if (family === undefined) return undefined;
  const sse = contentType !== undefined && contentType.toLowerCase().includes('text/event-stream');
  if (family === 'openai') return sse ? 'openai-sse' : 'openai-json';
  if (family === 'embeddings') return 'embeddings-json';
  if (sse) return 'gemini-sse';
  return operation.spec.streaming ? 'gemini-array' : 'gemini-json';
}

const PUBLISHER_MODEL = /(?:^|\/)publishers\/([^/]+)\/models\/([^/]+)$/;
const ENDPOINT = /(?:^|\/)endpoints\/([^/]+)$/;

/**
 * The model a call used, as named in its path: `google/gemini-2.5-flash` for a
 * publisher model, `endpoints/E` for an endpoint. The OpenAI-compatible
 * endpoint (`endpoints/openapi`) names its model in the body, so its response's
 * `model` is used instead when there is one.
 */
export function modelOf(operation: Operation | undefined, responseModel: string | undefined): string | undefined {
  if (operation === undefined || !USAGE_OPERATIONS.has(operation.spec.id)) return undefined;
  const publisher = PUBLISHER_MODEL.exec(operation.resource);
  if (publisher) return `${publisher[1]}/${publisher[2]}`;
  const endpoint = ENDPOINT.exec(operation.resource);
  if (endpoint) {
    if (endpoint[1] === 'openapi' && responseModel !== undefined) return responseModel;
    return `endpoints/${endpoint[1]}`;
  }
  return undefined;
}
