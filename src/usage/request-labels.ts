/**
 * Attribution in Google's own billing records (`attribution.requestLabels`):
 * every call reaches Vertex AI under the proxy's identity, so the proxy adds
 * `labels` naming the caller to `generateContent` / `streamGenerateContent`
 * bodies, which Vertex AI passes on to Cloud Billing
 * (https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/add-labels-to-api-calls):
 *
 *   kvp-namespace:        the caller's namespace
 *   kvp-service-account:  the caller's service account name
 *
 * Labels the caller set are kept as they are; the `kvp-` ones are the
 * proxy's, so a caller setting one is refused (it could bill another team).
 *
 * Google's label rules: at most 64 labels, keys and values at most 63
 * characters of lowercase letters, digits, `_` and `-`. Namespace names always
 * fit; a service-account name is lower-cased, its dots become `_`, and one
 * longer than 63 characters keeps its first 54 characters, then `-` and 8 hex
 * digits of its SHA-256 (so distinct names stay distinct).
 *
 * A BodyRule of the inspect step: only the methods above, only when the
 * config turns it on; everything else in the body is left as the caller sent it.
 *
 * @module
 * @throws ProxyError ERR_REQUEST_RESERVED_LABEL (400), ERR_REQUEST_BODY_INVALID (400)
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';
import type { BodyRule, BodyVerdict, InspectedBody } from '../inspect/body-rule.js';

export const NAMESPACE_LABEL = 'kvp-namespace';
export const SERVICE_ACCOUNT_LABEL = 'kvp-service-account';
const RESERVED_PREFIX = 'kvp-';
const MAX_LABELS = 64;
const MAX_VALUE = 63;

const LABELLED_OPERATIONS: ReadonlySet<string> = new Set([
  'publisherModels.generateContent',
  'publisherModels.streamGenerateContent',
  'endpoints.generateContent',
  'endpoints.streamGenerateContent',
]);

/** A Kubernetes name as a Google label value (see the module comment). */
export function labelValue(name: string): string {
  const value = name.toLowerCase().replace(/[^a-z0-9_-]/g, '_');
  if (value.length <= MAX_VALUE) return value;
  return `${value.slice(0, 54)}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

function invalid(message: string, code: 'ERR_REQUEST_RESERVED_LABEL' | 'ERR_REQUEST_BODY_INVALID', reason: string): ProxyError {
  return new ProxyError(code, message, { reason });
}

export function createRequestLabelsRule(): BodyRule {
  return {
    name: 'request-labels',
    // The caller's labels are all it reads; the rewrite gets the whole body.
    topLevelMembers: ['labels'],
    wants(request: FastifyRequest): boolean {
      const { operation, principal } = request.kvp;
      return operation !== undefined && principal?.kind === 'kubernetes' && LABELLED_OPERATIONS.has(operation.spec.id);
    },
    inspect(request: FastifyRequest, body: InspectedBody): BodyVerdict {
      const principal = request.kvp.principal;
      if (principal?.kind !== 'kubernetes') return undefined;
      const json = body.json;
      // Not a request object: Vertex AI answers that itself; there is nothing to label.
      if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
      const given = (json as Record<string, unknown>).labels;
      if (given !== undefined && (typeof given !== 'object' || given === null || Array.isArray(given))) {
        return { refuse: invalid('labels must be a map of strings.', 'ERR_REQUEST_BODY_INVALID', 'labels-not-a-map') };
      }
      const callerLabels = (given ?? {}) as Record<string, unknown>;
      const keys = Object.keys(callerLabels);
      const reserved = keys.find((k) => k.startsWith(RESERVED_PREFIX));
      if (reserved !== undefined) {
        return {
          refuse: invalid(
            `Label "${reserved.slice(0, 63)}" is reserved: labels starting with "${RESERVED_PREFIX}" are set by the proxy.`,
            'ERR_REQUEST_RESERVED_LABEL',
            'reserved-label',
          ),
        };
      }
      if (keys.length + 2 > MAX_LABELS) {
        return {
          refuse: invalid(
            `At most ${MAX_LABELS - 2} labels may be set: the proxy adds ${NAMESPACE_LABEL} and ${SERVICE_ACCOUNT_LABEL}.`,
            'ERR_REQUEST_BODY_INVALID',
            'too-many-labels',
          ),
        };
      }
      const namespace = labelValue(principal.namespace);
      const serviceAccount = labelValue(principal.serviceAccount);
      return {
        rewrite: (copy) => {
          copy.labels = {
            ...(copy.labels as Record<string, unknown> | undefined),
            [NAMESPACE_LABEL]: namespace,
            [SERVICE_ACCOUNT_LABEL]: serviceAccount,
          };
        },
      };
    },
  };
}
