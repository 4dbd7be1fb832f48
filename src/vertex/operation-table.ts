/**
 * The Vertex AI operation table: every REST method the proxy knows, with the
 * IAM permission Vertex AI checks for it, and the path bindings the
 * classifier matches. A method that is not in this table is refused.
 *
 * The table is derived at load from `operations.generated.ts` (the HTTP rules
 * of every RPC of the protos `@google-cloud/aiplatform` ships; regenerate with
 * `npm run gen:operations`) by `derive-operations.ts`, which holds the
 * hand-written parts: permission exceptions, groups, long-running-operation
 * parents. Permissions reference:
 * https://cloud.google.com/vertex-ai/docs/general/access-control
 *
 * Long-running operations: Vertex AI checks the *parent* resource's `.get` to
 * read an LRO nested under it (`…/endpoints/E/operations/O` needs
 * `aiplatform.endpoints.get`). The permission therefore depends on the parent
 * collection, so each parent collection gets its own specs
 * (`endpoints.operations.get`, `customJobs.operations.wait`, …) and the
 * top-level `projects/P/locations/L/operations/O` has `operations.*`. Every
 * spec keeps one static permission, the id set stays bounded, and policy
 * rules can tell "poll my deploy" from "poll anything".
 *
 * @module
 */

import { deriveOperationTable, type OperationBinding } from './derive-operations.js';
import type { ApiVersion, OperationSpec } from './operation-types.js';
import { LRO_BINDINGS, RPCS } from './operations.generated.js';

export type { OperationBinding } from './derive-operations.js';

const TABLE = deriveOperationTable(RPCS, LRO_BINDINGS);

/** Every operation the proxy knows. Anything else is refused by the classifier. */
export const OPERATIONS: readonly OperationSpec[] = Object.freeze([...TABLE.specs]);

/** Every path binding of {@link OPERATIONS}, for the classifier (and tests that generate paths). */
export const OPERATION_BINDINGS: readonly OperationBinding[] = Object.freeze([...TABLE.bindings]);

/** RPCs the protos give no REST binding (gRPC only), as `version Service.Rpc`. */
export const GRPC_ONLY_RPCS: readonly string[] = Object.freeze([...TABLE.grpcOnly]);

/** Every permission any operation can require: what a policy may name without a pattern. */
export const KNOWN_PERMISSIONS: ReadonlySet<string> = new Set(OPERATIONS.map((spec) => spec.permission));

const BY_ID: ReadonlyMap<string, OperationSpec> = new Map(OPERATIONS.map((spec) => [spec.id, spec]));

if (BY_ID.size !== OPERATIONS.length) throw new Error('operation table: duplicate operation id');

/** The spec with this id, or undefined (never a prototype property: the lookup is a Map). */
export function operationById(id: string): OperationSpec | undefined {
  return BY_ID.get(id);
}

/** Cloud Audit Logs' `methodName` for this spec in this version, e.g. `google.cloud.aiplatform.v1.PredictionService.Predict`. */
export function methodNameOf(spec: OperationSpec, version: ApiVersion): string {
  const service = spec.serviceByVersion?.[version] ?? spec.service;
  const pkg = spec.protoPackage ?? `google.cloud.aiplatform.${version}`;
  return `${pkg}.${service}.${spec.rpc}`;
}
