/**
 * An AuditRecord as a Cloud Logging structured entry on stdout: the special
 * keys GKE's logging agent lifts into the LogEntry (`severity`, `time`,
 * `httpRequest`, `logging.googleapis.com/trace`, …) and the record. Two shapes
 * (`audit.stdout.format`): `compact`, each fact once; `full`, also a payload
 * shaped like Cloud Audit Logs' `AuditLog` and a `message`, so the records read
 * like Vertex AI's own Data Access logs in Logs Explorer and BigQuery sinks.
 *
 * @module
 */
import { GOOGLE_STATUS } from '../errors.js';
import type { AuditRecord } from './record.js';

const RPC_CODE: Readonly<Record<string, number>> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
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
  /**
   * `full` (the default here, as before): the AuditLog-shaped payload beside the
   * whole record. `compact` (`audit.stdout.format`'s default): each fact once.
   */
  readonly format?: 'compact' | 'full';
}

/**
 * Record fields the compact entry carries in the keys the logging agent lifts (`httpRequest`, trace, labels, `time`), not again in the
 * record.
 */
const LIFTED = [
  'time',
  'traceId',
  'spanId',
  'traceSampled',
  'httpMethod',
  'path',
  'status',
  'latencyMs',
  'requestBytes',
  'responseBytes',
  'clientIp',
  'userAgent',
  'decision',
  'namespace',
] as const;

/**
 * Record fields the compact entry leaves to the durable store: each follows
 * from another field of the line (`methodName`, `permissionType`, `project`,
 * `location` from the operation and the resource) or serves an investigation
 * that reads the store anyway (the namespace's labels, the policy version, the
 * token and pod UIDs). `audit.stdout.format: full` has them.
 */
export const COMPACT_OMITS = [
  'methodName',
  'permissionType',
  'project',
  'location',
  'namespaceLabels',
  'policyVersion',
  'tokenId',
  'podUid',
] as const;

const ALLOWED_BY_RULE = 'allowed-by-rule';

/** Record fields the compact entry's `kubeVertexProxy` leaves out: lifted elsewhere, or left to the store. */
const COMPACT_SKIPS: ReadonlySet<string> = new Set<string>([...LIFTED, ...COMPACT_OMITS]);

/** `system:serviceaccount:NS:SA` → SA: the compact line does not repeat it. */
const SERVICE_ACCOUNT = /^system:serviceaccount:[^:]+:([^:]+)$/;

export function toCloudLoggingEntry(record: AuditRecord, options: CloudLoggingOptions): Record<string, unknown> {
  return options.format === 'compact' ? compactEntry(record, options) : fullEntry(record, options);
}

function severityOf(record: AuditRecord): string {
  return record.status >= 500 ? 'ERROR' : record.decision === 'deny' ? 'NOTICE' : 'INFO';
}

function latencyOf(record: AuditRecord): string {
  return `${(record.latencyMs / 1000).toFixed(6).replace(/0+$/, '').replace(/\.$/, '')}s`;
}

function labelsOf(record: AuditRecord): Record<string, string> {
  return {
    'kube-vertex-proxy/kind': 'audit',
    'kube-vertex-proxy/decision': record.decision,
    ...(record.namespace === undefined ? {} : { 'kube-vertex-proxy/namespace': record.namespace }),
  };
}

function addTrace(entry: Record<string, unknown>, record: AuditRecord, options: CloudLoggingOptions): void {
  if (record.traceId !== undefined) {
    entry['logging.googleapis.com/trace'] = `projects/${options.traceProject}/traces/${record.traceId}`;
    if (record.spanId !== undefined) entry['logging.googleapis.com/spanId'] = record.spanId;
    if (record.traceSampled !== undefined) entry['logging.googleapis.com/trace_sampled'] = record.traceSampled;
  }
}

/**
 * Each fact of the record once (but {@link COMPACT_OMITS}, left to the
 * store). What Logs Explorer indexes or shows comes in
 * the keys GKE's logging agent lifts into the LogEntry (severity, time, labels,
 * trace, `httpRequest`: method, path, status, sizes, latency, caller address and
 * agent); the rest of the record follows under `kubeVertexProxy`, without the
 * fields those keys already carry. Cloud Logging bills ingestion by the byte
 * (https://cloud.google.com/stackdriver/pricing): the full entry repeats the
 * principal four times and the resource three.
 */
function compactEntry(record: AuditRecord, options: CloudLoggingOptions): Record<string, unknown> {
  const dropServiceAccount =
    record.serviceAccount !== undefined && SERVICE_ACCOUNT.exec(record.principal ?? '')?.[1] === record.serviceAccount;
  // Copied key by key, not spread and then deleted from: deleting a property
  // turns the object into a hash table (slower to build, and JSON.stringify
  // takes its slow path), and this runs for every request.
  const rest: Record<string, unknown> = {};
  for (const key in record) {
    if (COMPACT_SKIPS.has(key)) continue;
    if (key === 'direction' && record.direction === 'outbound') continue;
    // The usual reason of an allow, implied by decision + rule.
    if (key === 'reason' && record.decision === 'allow' && record.reason === ALLOWED_BY_RULE) continue;
    if (key === 'serviceAccount' && dropServiceAccount) continue;
    const value = record[key as keyof AuditRecord];
    // JSON.stringify leaves undefined out anyway; not copying it keeps the object small.
    if (value !== undefined) rest[key] = value;
  }
  const entry: Record<string, unknown> = {
    severity: severityOf(record),
    time: record.time,
    'logging.googleapis.com/labels': labelsOf(record),
    httpRequest: httpRequestOf(record),
  };
  addTrace(entry, record, options);
  entry.kubeVertexProxy = rest;
  return entry;
}

/** Cloud Logging's `HttpRequest` of a record: the part of the entry Logs Explorer shows and filters on. */
function httpRequestOf(record: AuditRecord): Record<string, unknown> {
  return {
    requestMethod: record.httpMethod,
    requestUrl: record.path,
    status: record.status,
    requestSize: String(record.requestBytes),
    responseSize: String(record.responseBytes),
    latency: latencyOf(record),
    ...(record.clientIp === undefined ? {} : { remoteIp: record.clientIp }),
    ...(record.userAgent === undefined ? {} : { userAgent: record.userAgent }),
  };
}

/**
 * The record an entry on stdout carries, from either shape: the full entry's
 * `kubeVertexProxy` as it is, the compact entry's with the lifted fields (and
 * the direction, service account and usual reason it left out) put back — all but
 * {@link COMPACT_OMITS}. For readers of the stdout stream (tests, log
 * pipelines that want one object).
 */
export function auditRecordOfEntry(entry: Record<string, unknown>): AuditRecord | undefined {
  const rest = entry.kubeVertexProxy;
  if (typeof rest !== 'object' || rest === null) return undefined;
  if ('status' in rest) return rest as AuditRecord;
  const http = (entry.httpRequest ?? {}) as Record<string, unknown>;
  const labels = (entry['logging.googleapis.com/labels'] ?? {}) as Record<string, string>;
  const trace = entry['logging.googleapis.com/trace'];
  const latency = typeof http.latency === 'string' ? Number(http.latency.slice(0, -1)) : 0;
  return {
    time: entry.time,
    traceId: typeof trace === 'string' ? trace.slice(trace.lastIndexOf('/') + 1) : undefined,
    spanId: entry['logging.googleapis.com/spanId'],
    traceSampled: entry['logging.googleapis.com/trace_sampled'],
    httpMethod: http.requestMethod,
    path: http.requestUrl,
    status: http.status,
    latencyMs: Math.round(latency * 100_000) / 100,
    requestBytes: Number(http.requestSize),
    responseBytes: Number(http.responseSize),
    clientIp: http.remoteIp,
    userAgent: http.userAgent,
    decision: labels['kube-vertex-proxy/decision'],
    namespace: labels['kube-vertex-proxy/namespace'],
    direction: 'outbound',
    ...(labels['kube-vertex-proxy/decision'] === 'allow' ? { reason: ALLOWED_BY_RULE } : {}),
    serviceAccount: SERVICE_ACCOUNT.exec(
      typeof (rest as { principal?: unknown }).principal === 'string' ? (rest as { principal: string }).principal : '',
    )?.[1],
    ...rest,
  } as AuditRecord;
}

/** How the message names a request no Vertex AI operation was classified for. */
function unclassifiedName(record: AuditRecord): string {
  return record.route === undefined ? `${record.httpMethod} (unclassified)` : `${record.httpMethod} callback ${record.route}`;
}

function fullEntry(record: AuditRecord, options: CloudLoggingOptions): Record<string, unknown> {
  const statusName = rpcStatusName(record.status);
  const entry: Record<string, unknown> = {
    severity: severityOf(record),
    message:
      `${record.decision.toUpperCase()} ${record.operation ?? unclassifiedName(record)} ${record.principal ?? '(unauthenticated)'} ` +
      `${record.status}${record.ruleId === undefined ? '' : ` rule=${record.ruleId}`} reason=${record.reason}`,
    time: record.time,
    'logging.googleapis.com/labels': labelsOf(record),
    httpRequest: { ...httpRequestOf(record), protocol: 'HTTP/1.1' },
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
        : [
            {
              resource: record.resource,
              permission: record.permission,
              granted: record.decision === 'allow',
              permissionType: record.permissionType,
            },
          ],
    requestMetadata: {
      ...(record.clientIp === undefined ? {} : { callerIp: record.clientIp }),
      ...(record.userAgent === undefined ? {} : { callerSuppliedUserAgent: record.userAgent }),
    },
    status: { code: RPC_CODE[statusName] ?? 2, ...(statusName === 'OK' ? {} : { message: statusName }) },
    kubeVertexProxy: record,
  };
  addTrace(entry, record, options);
  return entry;
}
