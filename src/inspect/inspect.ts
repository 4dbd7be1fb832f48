/**
 * Running body rules over one body: parse once, refuse on the first refusal,
 * apply rewrites to a private copy. Plain code, no fastify: the step's plugin
 * reads the bytes and calls {@link inspectBody}.
 *
 * When every rule that wanted the body reads only named members of its
 * top-level object (`BodyRule.topLevelMembers`: the body-resource and
 * request-label rules), the body is read with top-level.ts instead of
 * `JSON.parse`: checked whole against JSON's grammar, parsed only for those
 * members. Its answer is `JSON.parse`'s (or none, and then `JSON.parse` runs
 * and refuses in its own words), so the decisions are the same; what is
 * saved is turning megabytes of inline data into strings nobody reads.
 *
 * @module
 * @throws nothing; refusals are returned: ERR_REQUEST_BODY_NOT_JSON (400), ERR_REQUEST_BODY_INVALID (400)
 */
import type { FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';
import type { BodyRule } from './body-rule.js';
import { readTopLevelMembers } from './top-level.js';

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
  /** `json` holds only the members the rules named (see the module comment). */
  let partial = false;
  if (bytes.length === 0) json = {};
  else {
    if (!isJsonContentType(contentType)) return { refuse: notJson() };
    const members = membersWanted(rules);
    const read = members === undefined ? undefined : readTopLevelMembers(bytes, members);
    if (read !== undefined) {
      json = read;
      partial = true;
    } else {
      try {
        json = JSON.parse(bytes.toString('utf8'));
      } catch (error) {
        // The parser's message names a position, never the content.
        return { refuse: invalid(error instanceof Error ? error.message.replace(/".*"/s, '…') : 'unparseable') };
      }
      if (json === null || typeof json !== 'object' || Array.isArray(json)) return { refuse: invalid('the body must be a JSON object') };
    }
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
  // Rules saw the caller's parse; rewrites work on a copy so no rule sees another's change half-way
  // (a fresh whole parse where the rules saw only some members: the body is well-formed, top-level.ts checked it).
  const copy = (partial ? JSON.parse(bytes.toString('utf8')) : structuredClone(json)) as Record<string, unknown>;
  for (const rewrite of rewrites) rewrite(copy);
  return { forward: Buffer.from(JSON.stringify(copy), 'utf8'), rewritten: true };
}

/** The members every rule reads, when each names them; undefined when one reads the whole body. */
function membersWanted(rules: readonly BodyRule[]): ReadonlySet<string> | undefined {
  const first = rules[0]?.topLevelMembers;
  if (first === undefined) return undefined;
  if (rules.length === 1) return membersOf(first);
  const all = new Set<string>();
  for (const rule of rules) {
    if (rule.topLevelMembers === undefined) return undefined;
    for (const member of rule.topLevelMembers) all.add(member);
  }
  return all;
}

/** One set per list: rules name theirs once, at start-up. */
const memberSets = new WeakMap<readonly string[], ReadonlySet<string>>();
function membersOf(list: readonly string[]): ReadonlySet<string> {
  let set = memberSets.get(list);
  if (set === undefined) {
    set = new Set(list);
    memberSets.set(list, set);
  }
  return set;
}
