/**
 * The contract between the inspect step and the checks that need a request
 * body: which model a call names, which job identity and hardware a job asks
 * for, which labels a body carries. Each check is a {@link BodyRule} that
 * lives with its own concern (policy, usage, vertex); the inspect step reads
 * the body once, parses it once, and runs every rule that wanted it.
 *
 * @module
 */
import type { FastifyRequest } from 'fastify';
import type { ProxyError } from '../errors.js';

/** One request body, read whole (bounded by `server.bodyLimit`) and parsed once. */
export interface InspectedBody {
  /** The bytes the caller sent. Forwarded exactly, unless a rule rewrites. */
  readonly bytes: Buffer;
  /**
   * `JSON.parse(bytes)`; or, when every rule that wanted the body names its
   * {@link BodyRule.topLevelMembers}, an object (without prototype) holding
   * just those members of it, each exactly as `JSON.parse` gives it. Rules
   * read it; only `rewrite` may change (a copy of the whole body) it.
   */
  readonly json: unknown;
}

export type BodyVerdict =
  /** Nothing to say: the body goes on as it is. */
  | undefined
  /** Refuse: nothing is forwarded. The first refusal wins. */
  | { readonly refuse: ProxyError }
  /** Change the body (only where the config says so): called with a private parsed copy, which is then re-serialised. */
  | { readonly rewrite: (json: Record<string, unknown>) => void };

export interface BodyRule {
  /** Short stable name, e.g. `body-resources`, `job-conditions`, `request-labels`. */
  readonly name: string;
  /**
   * Decided before any byte is read, from `request.kvp` (operation, principal,
   * decision): does this rule need the body? Runs on every request of the
   * route family, so it must be cheap.
   */
  wants(request: FastifyRequest): boolean;
  /** Runs once per request it wanted, in registration order. May note facts on `request.kvp`. */
  inspect(request: FastifyRequest, body: InspectedBody): BodyVerdict;
  /**
   * The only members of the body's top-level object `inspect` reads (its
   * `rewrite` still gets the whole body). When every rule wanting a body
   * names them, the body is checked for well-formed JSON but not parsed
   * beyond them (inspect.ts): a generateContent body's inline data is never
   * turned into JavaScript strings. Absent: `json` is the whole parse.
   */
  readonly topLevelMembers?: readonly string[];
}
