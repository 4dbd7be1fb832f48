/**
 * `attribution.jobLabels`: the caller's namespace and service account as
 * labels on what it creates (jobs, pipelines, persistent resources,
 * endpoints), so a billing export splits the cost by team. The BodyRule
 * `job-labels` adds `kvp-namespace` and `kvp-service-account` to the body's
 * `labels` (replacing a caller's own values for those two keys, which it
 * must not choose); nothing else in the body changes.
 *
 * Google's label rules (https://cloud.google.com/resource-manager/docs/labels-overview#requirements):
 * at most 64 labels; keys and values at most 63 characters of lowercase
 * letters, digits, `_` and `-`. A namespace name always fits. A service
 * account name may carry `.` (written `_`) and may be longer than 63
 * characters: it is then cut to 54 and suffixed with `-` and 8 hex digits of
 * its SHA-256, so distinct names stay distinct.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { ProxyError } from '../errors.js';
import type { BodyRule } from '../inspect/body-rule.js';

export const NAMESPACE_LABEL = 'kvp-namespace';
export const SERVICE_ACCOUNT_LABEL = 'kvp-service-account';
const MAX_LABELS = 64;
const MAX_VALUE = 63;

/** The methods whose body is the created resource, with its `labels` at the top (by RPC name). */
const LABELLED_CREATES: ReadonlySet<string> = new Set([
  'CreateCustomJob',
  'CreateHyperparameterTuningJob',
  'CreateNasJob',
  'CreateTrainingPipeline',
  'CreatePipelineJob',
  'CreateBatchPredictionJob',
  'CreatePersistentResource',
  'CreateTuningJob',
  'CreateEndpoint',
]);

/** A Kubernetes name as a Google label value (see the module comment). */
export function labelValue(name: string): string {
  const value = name.toLowerCase().replace(/[^a-z0-9_-]/g, '_');
  if (value.length <= MAX_VALUE) return value;
  return `${value.slice(0, 54)}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

export function jobLabelsRule(): BodyRule {
  return {
    name: 'job-labels',
    wants: (request) =>
      request.kvp.decision?.allowed === true &&
      request.kvp.principal?.kind === 'kubernetes' &&
      LABELLED_CREATES.has(request.kvp.operation?.spec.rpc ?? ''),
    inspect(request, body) {
      const principal = request.kvp.principal;
      if (principal?.kind !== 'kubernetes') return undefined;
      const labels = (body.json as Record<string, unknown>).labels;
      if (labels !== undefined && labels !== null && (typeof labels !== 'object' || Array.isArray(labels))) {
        return {
          refuse: new ProxyError('ERR_REQUEST_JOB_SPEC_INVALID', 'labels: must be an object of label keys to values.', {
            reason: 'job-spec-invalid',
            metadata: { field: 'labels' },
          }),
        };
      }
      const own = labels === undefined || labels === null ? {} : (labels as Record<string, unknown>);
      const added = [NAMESPACE_LABEL, SERVICE_ACCOUNT_LABEL].filter((key) => !Object.hasOwn(own, key)).length;
      if (Object.keys(own).length + added > MAX_LABELS) {
        return {
          refuse: new ProxyError(
            'ERR_REQUEST_JOB_SPEC_INVALID',
            `labels: at most ${MAX_LABELS - 2} labels of the caller's own fit beside the proxy's ${NAMESPACE_LABEL} and ` +
              `${SERVICE_ACCOUNT_LABEL}.`,
            {
              reason: 'job-spec-invalid',
              metadata: { field: 'labels' },
            },
          ),
        };
      }
      const namespace = labelValue(principal.namespace);
      const serviceAccount = labelValue(principal.serviceAccount);
      return {
        rewrite(json) {
          const current = json.labels;
          json.labels = {
            ...(current !== null && typeof current === 'object' ? current : {}),
            [NAMESPACE_LABEL]: namespace,
            [SERVICE_ACCOUNT_LABEL]: serviceAccount,
          };
        },
      };
    },
  };
}
