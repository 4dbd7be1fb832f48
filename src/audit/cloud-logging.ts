/**
 * An AuditRecord as a Cloud Logging structured entry on stdout: the special
 * keys GKE's logging agent lifts into the LogEntry (`severity`, `message`,
 * `time`, `httpRequest`, `logging.googleapis.com/trace`, …) and a payload
 * shaped like Cloud Audit Logs' `AuditLog`, so the proxy's records read like
 * Vertex AI's own Data Access logs in Logs Explorer and BigQuery sinks.
 *
 * @module
 */
import { GOOGLE_STATUS } from '../errors.js';
import type { AuditRecord } from './record.js';

const RPC_CODE: Readonly<Record<string, number>> = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14,
  DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

/** HTTP status → google.rpc.Code name (the inverse of the table in errors.ts, first match wins). */
function rpcStatusName(status: number): string {
  if (status >= 200 && status < 300) return 'OK';
  for (const [name, http] of Object.entries(GOOGLE_STATUS)) if (http === status) return name;
  if (status === 405 || status === 413) return 'INVALID_ARGUMENT';
  if (status === 502) return 'UNAVAILABLE';
  return status >= 500 ? 'UNKNOWN' : 'FAILED_PRECONDITION';
}

export interface CloudLoggingOptions {
  /** Project used in `logging.googleapis.com/trace` (`projects/P/traces/T`). */
  readonly traceProject: string;
}

export function toCloudLoggingEntry(record: AuditRecord, options: CloudLoggingOptions): Record<string, unknown> {
  const statusName = rpcStatusName(record.status);
  const entry: Record<string, unknown> = {
    severity: record.status >= 500 ? 'ERROR' : record.decision === 'deny' ? 'NOTICE' : 'INFO',
    message: `${record.decision.toUpperCase()} ${record.operation ?? (record.route === undefined ? `${record.httpMethod} (unclassified)` : `${record.httpMethod} callback ${record.route}`)} ${record.principal ?? '(unauthenticated)'} ${record.status}${record.ruleId === undefined ? '' : ` rule=${record.ruleId}`} reason=${record.reason}`,
    time: record.time,
    'logging.googleapis.com/labels': {
      'kube-vertex-proxy/kind': 'audit',
      'kube-vertex-proxy/decision': record.decision,
      ...(record.namespace === undefined ? {} : { 'kube-vertex-proxy/namespace': record.namespace }),
    },
    httpRequest: {
      requestMethod: record.httpMethod,
      requestUrl: record.path,
      status: record.status,
      requestSize: String(record.requestBytes),
      responseSize: String(record.responseBytes),
      latency: `${(record.latencyMs / 1000).toFixed(6).replace(/0+$/, '').replace(/\.$/, '')}s`,
      ...(record.clientIp === undefined ? {} : { remoteIp: record.clientIp }),
      ...(record.userAgent === undefined ? {} : { userAgent: record.userAgent }),
      protocol: 'HTTP/1.1',
    },
    '@type': 'type.googleapis.com/google.cloud.audit.AuditLog',
    serviceName: 'aiplatform.googleapis.com',
    methodName: record.methodName,
    resourceName: record.resource,
    authenticationInfo:
      record.principal === undefined
        ? {}
        : { principalEmail: record.principal, ...(record.namespace === undefined ? {} : { principalSubject: record.principal }) },
    authorizationInfo:
      record.permission === undefined
        ? []
        : [{ resource: record.resource, permission: record.permission, granted: record.decision === 'allow', permissionType: record.permissionType }],
    requestMetadata: {
      ...(record.clientIp === undefined ? {} : { callerIp: record.clientIp }),
      ...(record.userAgent === undefined ? {} : { callerSuppliedUserAgent: record.userAgent }),
    },
    status: { code: RPC_CODE[statusName] ?? 2, ...(statusName === 'OK' ? {} : { message: statusName }) },
    kubeVertexProxy: record,
  };
  if (record.traceId !== undefined) {
    entry['logging.googleapis.com/trace'] = `projects/${options.traceProject}/traces/${record.traceId}`;
    if (record.spanId !== undefined) entry['logging.googleapis.com/spanId'] = record.spanId;
    if (record.traceSampled !== undefined) entry['logging.googleapis.com/trace_sampled'] = record.traceSampled;
  }
  return entry;
}
