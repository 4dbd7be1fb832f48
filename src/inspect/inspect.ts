/**
 * Running body rules over one body: parse once, refuse on the first refusal,
 * apply rewrites to a private copy. Plain code, no fastify: the step's plugin
 * reads the bytes and calls {@link inspectBody}.
 *
 * @module
 * @throws nothing; refusals are returned: ERR_REQUEST_BODY_NOT_JSON (400), ERR_REQUEST_BODY_INVALID (400)
 */
import type { FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';
import type { BodyRule } from './body-rule.js';

export type InspectionResult =
  | { readonly refuse: ProxyError }
  /** The bytes to forward: the caller's own, or the rewritten body. */
  | { readonly forward: Buffer; readonly rewritten: boolean };

/** `application/json` and `+json` types; Vertex AI's REST surface takes nothing else in the bodies rules read. */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const type = contentType.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || type.endsWith('+json');
}

function notJson(): ProxyError {
  return new ProxyError('ERR_REQUEST_BODY_NOT_JSON', "This method's request body must be JSON (Content-Type: application/json).", {
    reason: 'body-not-json',
  });
}

function invalid(message: string): ProxyError {
  return new ProxyError('ERR_REQUEST_BODY_INVALID', `The request body is not valid JSON: ${message}`, {
    reason: 'body-invalid',
  });
}

/**
 * `rules` are the ones that wanted this request. An empty body is parsed as
 * `{}` (a POST without body is how some create calls look), any other body
 * must be a JSON object.
 */
export function inspectBody(
  request: FastifyRequest,
  bytes: Buffer,
  contentType: string | undefined,
  rules: readonly BodyRule[],
): InspectionResult {
  let json: unknown;
  if (bytes.length === 0) json = {};
  else {
    if (!isJsonContentType(contentType)) return { refuse: notJson() };
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (error) {
      // The parser's message names a position, never the content.
      return { refuse: invalid(error instanceof Error ? error.message.replace(/".*"/s, '…') : 'unparseable') };
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) return { refuse: invalid('the body must be a JSON object') };
  }
  const body = Object.freeze({ bytes, json });
  let rewrites: Array<(json: Record<string, unknown>) => void> | undefined;
  for (const rule of rules) {
    const verdict = rule.inspect(request, body);
    if (verdict === undefined) continue;
    if ('refuse' in verdict) return { refuse: verdict.refuse };
    (rewrites ??= []).push(verdict.rewrite);
  }
  if (rewrites === undefined) return { forward: bytes, rewritten: false };
  // Rules saw the caller's parse; rewrites work on a copy so no rule sees another's change half-way.
  const copy = structuredClone(json) as Record<string, unknown>;
  for (const rewrite of rewrites) rewrite(copy);
  return { forward: Buffer.from(JSON.stringify(copy), 'utf8'), rewritten: true };
}
