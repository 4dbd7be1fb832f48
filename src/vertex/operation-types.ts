/**
 * What a classified request is: one Vertex AI REST method bound to concrete
 * project, location and resource. Produced by `classify.ts` from the operation
 * table in `operation-table.ts`; consumed by policy, audit, metrics and forwarding.
 *
 * @module
 */

/** Named operation groups a policy rule may grant instead of listing permissions. */
export const OPERATION_GROUPS = [
  'predict',
  'generate',
  'embed',
  'training',
  'read',
  'cache',
  'tuning',
  'vectorSearch',
  'rag',
  'agents',
  'featureStore',
  'datasets',
  'deploy',
  'evaluate',
  'admin',
] as const;
export type OperationGroup = (typeof OPERATION_GROUPS)[number];

/** Cloud Audit Logs' permission types. */
export type PermissionType = 'ADMIN_READ' | 'ADMIN_WRITE' | 'DATA_READ' | 'DATA_WRITE';

export type HttpMethod = 'GET' | 'POST' | 'DELETE' | 'PATCH';

/** The Vertex AI REST API versions the proxy serves. */
export const API_VERSIONS = ['v1', 'v1beta1'] as const;
export type ApiVersion = (typeof API_VERSIONS)[number];

/** One row of the static operation table. */
export interface OperationSpec {
  /**
   * Stable id `<collection>.<rpc>` in lowerCamelCase, e.g. `endpoints.predict`, `publisherModels.generateContent`, `customJobs.create`;
   * long-running operations nested under a parent are `<parent>.operations.<rpc>` (`endpoints.operations.get`). Bounded set: safe as a
   * metric label.
   */
  readonly id: string;
  /** gRPC service, e.g. `PredictionService` (the audit `methodName` is `google.cloud.aiplatform.{version}.{service}.{rpc}`). */
  readonly service: string;
  /**
   * The service in the versions where it is not `service`: an RPC can move
   * between services across versions (CountTokens is LlmUtilityService in v1,
   * PredictionService in v1beta1), and the audit `methodName` follows the proto.
   */
  readonly serviceByVersion?: Readonly<Partial<Record<ApiVersion, string>>>;
  /**
   * Proto package of `service` when it is not `google.cloud.aiplatform.{version}`:
   * the long-running-operation mixin is `google.longrunning` in every version.
   */
  readonly protoPackage?: string;
  /** RPC name, e.g. `Predict`. */
  readonly rpc: string;
  /** The HTTP method this operation answers to. Any other method on the same path is 405. */
  readonly httpMethod: HttpMethod;
  /** IAM permission Vertex AI checks, e.g. `aiplatform.endpoints.predict`. */
  readonly permission: string;
  readonly permissionType: PermissionType;
  readonly groups: readonly OperationGroup[];
  /** Server-streaming response (SSE with alt=sse, else a streamed JSON array). */
  readonly streaming: boolean;
  /** API versions that have this binding. */
  readonly versions: readonly ApiVersion[];
  /** Creates or returns a long-running operation / job whose name the response carries. */
  readonly longRunning: boolean;
}

/** A request classified against the table. */
export interface Operation {
  readonly spec: OperationSpec;
  readonly version: ApiVersion;
  /** Project id or number from the path; null for the location-less forms (`publishers/*\/models/*`, `endpoints/*`). */
  readonly project: string | null;
  /** Location from the path; null for the location-less forms. */
  readonly location: string | null;
  /**
   * The resource name the call is about, without the `:verb`: `projects/P/locations/L/endpoints/E`, or the collection for create/list
   * (`projects/P/locations/L/customJobs`).
   */
  readonly resource: string;
  /**
   * `google.cloud.aiplatform.{version}.{service}.{rpc}` (`google.longrunning.Operations.{rpc}` for LROs), as Cloud Audit Logs writes it.
   */
  readonly methodName: string;
  /**
   * Only for a path outside `projects/*\/locations/*` (express mode, which the
   * proxy refuses): the form of the same method to use instead, as a template
   * after `/{version}/`, or null when there is none.
   */
  readonly scopedForm?: string | null;
}
