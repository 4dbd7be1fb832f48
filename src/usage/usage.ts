/**
 * Token usage as Vertex AI reports it, read from responses while they pass.
 *
 * Which responses carry usage, and in which framing:
 * - `generateContent`, `embedContent`: one JSON object with `usageMetadata`
 *   (and `modelVersion`) among its members;
 * - `streamGenerateContent?alt=sse`: server-sent events, one
 *   GenerateContentResponse per `data:` line;
 * - `streamGenerateContent` without `alt=sse`: one JSON array streamed element
 *   by element, each element a GenerateContentResponse;
 * - `endpoints/openapi/chat/completions`: an OpenAI chat completion with
 *   `usage`, or (when streamed) SSE chunks, the last one carrying `usage` when
 *   the caller asked for `stream_options.include_usage`;
 * - `predict` on publisher models: embedding models put
 *   `predictions[].embeddings.statistics.token_count`, summed here.
 *
 * When a stream carries usage several times, the last report wins (Vertex AI
 * may send growing counts). A count that is absent is unknown, not zero.
 * References: https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/GenerateContentResponse
 * and https://cloud.google.com/vertex-ai/generative-ai/docs/migrate/openai/overview
 *
 * @module
 */
import { JsonScanner, type ScanTarget } from './json-scanner.js';
import { SseScanner } from './sse.js';

/** Token counts of one response; an absent field was not reported. */
export interface TokenUsage {
  readonly prompt?: number;
  readonly candidates?: number;
  readonly thoughts?: number;
  readonly cached?: number;
  readonly tool?: number;
  readonly total?: number;
}

/** The `type` label values of `kube_vertex_proxy_model_tokens_total`, in the order of {@link TokenUsage}. */
export const TOKEN_TYPES = ['prompt', 'candidates', 'thoughts', 'cached', 'tool', 'total'] as const;
export type TokenType = (typeof TOKEN_TYPES)[number];

/** What a response said about itself. */
export interface ResponseUsage {
  /** Undefined: the response carried no usage (said so in the audit record). */
  readonly tokens: TokenUsage | undefined;
  /** The model version the response named (`modelVersion`, or OpenAI's `model`). */
  readonly modelVersion: string | undefined;
}

/** How a response's bytes are framed, for usage purposes. */
export type UsageFraming = 'gemini-json' | 'gemini-sse' | 'gemini-array' | 'openai-json' | 'openai-sse' | 'embeddings-json';

/** Reads usage from a response's bytes as they pass. */
export interface UsageMeter {
  push(chunk: Buffer): void;
  /** The stream ended (completely or not): what was seen. */
  finish(): ResponseUsage;
}

const MAX_MODEL_VERSION = 128;

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

function withoutUndefined(usage: Record<string, number | undefined>): TokenUsage | undefined {
  const out: Record<string, number> = {};
  let any = false;
  for (const [k, v] of Object.entries(usage)) {
    if (v !== undefined) {
      out[k] = v;
      any = true;
    }
  }
  return any ? out : undefined;
}

/** Gemini's `usageMetadata` → TokenUsage. */
export function fromUsageMetadata(json: unknown): TokenUsage | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const u = json as Record<string, unknown>;
  return withoutUndefined({
    prompt: count(u.promptTokenCount),
    candidates: count(u.candidatesTokenCount),
    thoughts: count(u.thoughtsTokenCount),
    cached: count(u.cachedContentTokenCount),
    tool: count(u.toolUsePromptTokenCount),
    total: count(u.totalTokenCount),
  });
}

/** OpenAI's `usage` → TokenUsage (`completion_tokens` are candidates; reasoning tokens are thoughts). */
export function fromOpenAiUsage(json: unknown): TokenUsage | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const u = json as Record<string, unknown>;
  const promptDetails = u.prompt_tokens_details as Record<string, unknown> | null | undefined;
  const completionDetails = u.completion_tokens_details as Record<string, unknown> | null | undefined;
  return withoutUndefined({
    prompt: count(u.prompt_tokens),
    candidates: count(u.completion_tokens),
    thoughts: count(typeof completionDetails === 'object' && completionDetails !== null ? completionDetails.reasoning_tokens : undefined),
    cached: count(typeof promptDetails === 'object' && promptDetails !== null ? promptDetails.cached_tokens : undefined),
    total: count(u.total_tokens),
  });
}

function parse(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return undefined;
  }
}

function modelText(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_MODEL_VERSION ? value : undefined;
}

class Meter implements UsageMeter {
  readonly #json: JsonScanner;
  readonly #sse: SseScanner | undefined;
  tokens: TokenUsage | undefined;
  modelVersion: string | undefined;
  #embeddingTokens: number | undefined;

  readonly #onChange: ((usage: ResponseUsage) => void) | undefined;

  constructor(framing: UsageFraming, onChange?: (usage: ResponseUsage) => void) {
    this.#onChange = onChange;
    const openAi = framing === 'openai-json' || framing === 'openai-sse';
    const depth = framing === 'gemini-array' ? 2 : 1;
    const targets: ScanTarget[] =
      framing === 'embeddings-json'
        ? [{ key: 'token_count', depth: 'any' }]
        : openAi
          ? [
              { key: 'usage', depth },
              { key: 'model', depth },
            ]
          : [
              { key: 'usageMetadata', depth },
              { key: 'modelVersion', depth },
            ];
    this.#json = new JsonScanner(targets, (key, text) => this.#value(key, text));
    this.#sse = framing === 'gemini-sse' || framing === 'openai-sse' ? new SseScanner(this.#json) : undefined;
  }

  #value(key: string, text: string): void {
    const value = parse(text);
    switch (key) {
      case 'usageMetadata':
        this.tokens = fromUsageMetadata(value) ?? this.tokens;
        break;
      case 'usage':
        // Streamed chunks before the last one carry `"usage": null`.
        this.tokens = fromOpenAiUsage(value) ?? this.tokens;
        break;
      case 'modelVersion':
      case 'model':
        this.modelVersion = modelText(value) ?? this.modelVersion;
        // Every message of a stream names the same model: one read is enough.
        if (this.modelVersion !== undefined) this.#json.forget(key);
        break;
      case 'token_count': {
        const n = count(value);
        if (n !== undefined) {
          this.#embeddingTokens = (this.#embeddingTokens ?? 0) + n;
          this.tokens = { prompt: this.#embeddingTokens, total: this.#embeddingTokens };
        }
        break;
      }
    }
    this.#onChange?.({ tokens: this.tokens, modelVersion: this.modelVersion });
  }

  push(chunk: Buffer): void {
    if (this.#sse !== undefined) this.#sse.push(chunk);
    else this.#json.push(chunk);
  }

  finish(): ResponseUsage {
    if (this.#sse !== undefined) this.#sse.end();
    else this.#json.end();
    return { tokens: this.tokens, modelVersion: this.modelVersion };
  }
}

/**
 * A meter for one response. `onChange` is told each time a value went by, so
 * whoever reads the request's state mid-stream (a caller that went away) sees
 * what was counted so far.
 */
export function createUsageMeter(framing: UsageFraming, onChange?: (usage: ResponseUsage) => void): UsageMeter {
  return new Meter(framing, onChange);
}

/** The tokens a limit charges for a response: the reported total, else the sum of the parts. */
export function chargeableTokens(tokens: TokenUsage | undefined): number {
  if (tokens === undefined) return 0;
  if (tokens.total !== undefined) return tokens.total;
  return (tokens.prompt ?? 0) + (tokens.candidates ?? 0) + (tokens.thoughts ?? 0) + (tokens.tool ?? 0);
}
