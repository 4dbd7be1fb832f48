/**
 * The shape of `operations.generated.ts`: what the Vertex AI protos say about
 * each RPC, and nothing the proxy decides (see `derive-operations.ts`).
 *
 * @module
 */
import type { ApiVersion, HttpMethod } from './operation-types.js';

/**
 * One `option (google.api.http)` binding: the HTTP method and the path template as the proto writes it
 * (`/v1/{name=projects/*\/locations/*\/endpoints/*}:predict`).
 */
export interface HttpBindingFact {
  readonly method: HttpMethod | 'PUT';
  readonly path: string;
}

/** One RPC of `google.cloud.aiplatform.{version}`. */
export interface GeneratedRpc {
  readonly version: ApiVersion;
  readonly service: string;
  readonly rpc: string;
  /** Server-streaming response (`returns (stream …)`). */
  readonly streaming: boolean;
  /** Returns a `google.longrunning.Operation`. */
  readonly longRunning: boolean;
  /** Empty for gRPC-only RPCs. */
  readonly bindings: readonly HttpBindingFact[];
}

/** One HTTP binding of a `google.longrunning.Operations` RPC. */
export interface GeneratedLroBinding {
  readonly version: ApiVersion;
  readonly rpc: string;
  readonly method: HttpMethod;
  readonly path: string;
}
