/**
 * The one error type of the proxy and its one serializer.
 *
 * Every refusal the proxy makes is a {@link ProxyError}: a stable `code` (what
 * operators grep for and what the audit record stores), a Google canonical
 * `status` and HTTP code (what the Vertex AI SDKs understand), a message for the
 * caller, and a `cause` that stays inside the process. Bodies are rendered in
 * Google's JSON error shape by {@link toGoogleErrorBody}, the only place that
 * turns an error into bytes for a client; 5xx bodies never carry detail.
 *
 * @module
 */

/** Google canonical codes (google/rpc/code.proto) the proxy emits, with their HTTP mapping. */
export const GOOGLE_STATUS = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  OUT_OF_RANGE: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ABORTED: 409,
  ALREADY_EXISTS: 409,
  RESOURCE_EXHAUSTED: 429,
  CANCELLED: 499,
  INTERNAL: 500,
  UNKNOWN: 500,
  DATA_LOSS: 500,
  UNIMPLEMENTED: 501,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
} as const;
export type GoogleStatus = keyof typeof GOOGLE_STATUS;

/** The gRPC code number of each Google canonical status (google/rpc/code.proto), for the error reference. */
export const GRPC_CODE: Readonly<Record<GoogleStatus, number>> = {
  INVALID_ARGUMENT: 3,
  FAILED_PRECONDITION: 9,
  OUT_OF_RANGE: 11,
  UNAUTHENTICATED: 16,
  PERMISSION_DENIED: 7,
  NOT_FOUND: 5,
  ABORTED: 10,
  ALREADY_EXISTS: 6,
  RESOURCE_EXHAUSTED: 8,
  CANCELLED: 1,
  INTERNAL: 13,
  UNKNOWN: 2,
  DATA_LOSS: 15,
  UNIMPLEMENTED: 12,
  UNAVAILABLE: 14,
  DEADLINE_EXCEEDED: 4,
};

/** What one error code means on the wire: its Google status, its HTTP code, and a sentence for docs/errors.md. */
export interface ErrorCodeSpec {
  readonly status: GoogleStatus;
  /** The HTTP code; differs from the status' usual one only where HTTP has a more exact answer (405, 408, 413, 431, 502). */
  readonly http: number;
  readonly meaning: string;
}

/**
 * Every error code the proxy answers with, and the status it always answers
 * with: a code never has two statuses (two answers are two codes). Stable:
 * `ERR_<STAGE>_<CONDITION>`, never renamed once released. docs/errors.md is
 * generated from this table (`npm run docs:errors`) and a test keeps it so.
 */
export const ERROR_CODES = {
  ERR_AUTHN_MISSING_CREDENTIALS: {
    status: 'UNAUTHENTICATED',
    http: 401,
    meaning: 'The request has no `Authorization: Bearer` header.',
  },
  ERR_AUTHN_MALFORMED_CREDENTIALS: {
    status: 'UNAUTHENTICATED',
    http: 401,
    meaning: 'The `Authorization` header (or the IAP assertion header) is repeated or is not `Bearer <JWT>`.',
  },
  ERR_AUTHN_INVALID_TOKEN: {
    status: 'UNAUTHENTICATED',
    http: 401,
    meaning:
      'The token failed verification: signature, algorithm, audience, expiry, an unknown signing key, or a revoked service ' +
      'account or pod (the ErrorInfo `reason` in the audit record says which).',
  },
  ERR_AUTHN_UNTRUSTED_ISSUER: {
    status: 'UNAUTHENTICATED',
    http: 401,
    meaning: 'The token comes from an issuer not listed in `issuers`, or of a kind this path does not accept.',
  },
  ERR_AUTHN_VERIFIER_UNAVAILABLE: {
    status: 'UNAVAILABLE',
    http: 503,
    meaning:
      "The token could not be checked: the issuer's keys, the TokenReview API or the revocation view is unavailable. Not " +
      "the caller's fault; nothing is forwarded.",
  },
  ERR_IDENTITY_INVALID_CLAIMS: {
    status: 'UNAUTHENTICATED',
    http: 401,
    meaning: 'The token verified but its claims do not name a workload (a service-account subject and namespace) or a Google account.',
  },
  ERR_IDENTITY_LABELS_STALE: {
    status: 'PERMISSION_DENIED',
    http: 403,
    meaning: "The decision depends on namespace labels and the proxy's view of them is older than `kubernetes.maxStaleness`.",
  },
  ERR_REQUEST_INVALID_PATH: {
    status: 'INVALID_ARGUMENT',
    http: 400,
    meaning:
      'The path is malformed or ambiguous (dot segments, encoded slashes, `;` parameters, bad ids): refused rather than interpreted.',
  },
  ERR_REQUEST_MALFORMED: {
    status: 'INVALID_ARGUMENT',
    http: 400,
    meaning: 'The request is not valid HTTP, or fastify could not read it.',
  },
  ERR_REQUEST_UNKNOWN_METHOD: {
    status: 'NOT_FOUND',
    http: 404,
    meaning: 'The path and HTTP method are not a Vertex AI method the proxy knows (or not an audit API method).',
  },
  ERR_REQUEST_UNKNOWN_ROUTE: {
    status: 'NOT_FOUND',
    http: 404,
    meaning: 'No callback route serves the path, or the audit console has no record with that id.',
  },
  // 405 has no canonical status of its own; INVALID_ARGUMENT is what Google's front end answers with.
  ERR_REQUEST_METHOD_NOT_ALLOWED: {
    status: 'INVALID_ARGUMENT',
    http: 405,
    meaning: 'The path is known but not with this HTTP method; the `Allow` header lists the methods it answers to.',
  },
  ERR_REQUEST_LOCATION_NOT_SERVED: {
    status: 'INVALID_ARGUMENT',
    http: 400,
    meaning: 'The location in the path is not one this proxy serves (`vertex.locations`).',
  },
  ERR_REQUEST_PROJECT_REQUIRED: {
    status: 'INVALID_ARGUMENT',
    http: 400,
    meaning: 'The path has no `projects/PROJECT/locations/LOCATION` (Vertex AI express mode paths are not served).',
  },
  ERR_REQUEST_FORBIDDEN_PARAMETER: {
    status: 'INVALID_ARGUMENT',
    http: 400,
    meaning:
      "A query parameter would replace the proxy's credential, method or billing project (`key`, `access_token`, method or " +
      'billing overrides).',
  },
  ERR_REQUEST_FORBIDDEN_HEADER: {
    status: 'INVALID_ARGUMENT',
    http: 400,
    meaning: "A request header would replace the proxy's credential or billing project (`x-goog-user-project`, `x-goog-api-key`).",
  },
  ERR_REQUEST_BODY_TOO_LARGE: {
    status: 'INVALID_ARGUMENT',
    http: 413,
    meaning: 'The request body is over `server.bodyLimit` (or `callbacks.routes[].bodyLimit`); the connection is closed after the answer.',
  },
  ERR_REQUEST_BODY_INCOMPLETE: {
    status: 'CANCELLED',
    http: 499,
    meaning: 'The caller went away before sending the whole body it declared.',
  },
  ERR_REQUEST_TIMEOUT: {
    status: 'DEADLINE_EXCEEDED',
    http: 408,
    meaning: 'The request (or a part of its body) did not arrive within `server.requestTimeout` or `server.bodyIdleTimeout`.',
  },
  ERR_REQUEST_HEADERS_TOO_LARGE: {
    status: 'INVALID_ARGUMENT',
    http: 431,
    meaning: "The request headers are over node's header size limit.",
  },
  ERR_REQUEST_BODY_NOT_JSON: {
    status: 'INVALID_ARGUMENT',
    http: 400,
    meaning: 'The method needs its body inspected and the body is not `application/json`.',
  },
  ERR_REQUEST_BODY_INVALID: {
    status: 'INVALID_ARGUMENT',
    http: 400,
    meaning: 'A body the proxy inspects is not valid JSON, or a field it reads (such as `labels`) is malformed.',
  },
  ERR_AUTHZ_PROJECT_NOT_ALLOWED: {
    status: 'PERMISSION_DENIED',
    http: 403,
    meaning: 'The project in the path is not one this proxy serves (`vertex.projects`).',
  },
  ERR_AUTHZ_DENIED: {
    status: 'PERMISSION_DENIED',
    http: 403,
    meaning:
      'No policy rule allows the caller this permission on this resource (or a deny rule matched; or the caller is not ' +
      'listed on the callback route).',
  },
  ERR_FORWARD_CREDENTIAL_UNAVAILABLE: {
    status: 'UNAVAILABLE',
    http: 503,
    meaning: 'The proxy has no Google access token of its own (Application Default Credentials failed); nothing is forwarded.',
  },
  ERR_FORWARD_UPSTREAM_UNREACHABLE: {
    status: 'UNAVAILABLE',
    http: 502,
    meaning: 'Vertex AI (or the callback backend) could not be reached, or the connection broke.',
  },
  ERR_FORWARD_UPSTREAM_TIMEOUT: {
    status: 'DEADLINE_EXCEEDED',
    http: 504,
    meaning: 'Vertex AI (or the callback backend) did not answer in time.',
  },
  ERR_FORWARD_CREDENTIAL_REJECTED: {
    status: 'UNAVAILABLE',
    http: 502,
    meaning: "Vertex AI answered 401 to the proxy's own credential; the caller is not told Google's reason.",
  },
  ERR_AUDIT_UNAVAILABLE: {
    status: 'UNAVAILABLE',
    http: 503,
    meaning: 'The audit store could not record the decision (strict durability) or answer a query; nothing is forwarded.',
  },
  ERR_AUDIT_INVALID_QUERY: {
    status: 'INVALID_ARGUMENT',
    http: 400,
    meaning: 'An audit API or console query has a bad filter, time range or page token.',
  },
  ERR_INTERNAL: {
    status: 'INTERNAL',
    http: 500,
    meaning: 'A bug or an unexpected library failure; the log has the cause under the request id.',
  },
  ERR_REQUEST_TOO_MANY_IN_FLIGHT: {
    status: 'RESOURCE_EXHAUSTED',
    http: 429,
    meaning: 'The caller already has `server.maxInFlightPerCaller` requests in flight; `Retry-After: 1`.',
  },
  ERR_REQUEST_INVALID_BODY_RESOURCE: {
    status: 'INVALID_ARGUMENT',
    http: 400,
    meaning: 'A resource named in the request body (a model, dataset, endpoint…) is not a well-formed resource name.',
  },
  ERR_AUTHZ_BODY_RESOURCE_DENIED: {
    status: 'PERMISSION_DENIED',
    http: 403,
    meaning: 'A resource named in the request body is not granted to the caller; the message names the field.',
  },
  ERR_AUTHZ_JOB_CONDITIONS: {
    status: 'PERMISSION_DENIED',
    http: 403,
    meaning:
      'The job in the body does not meet the `conditions.jobs` of the rules that would allow the call (service account, ' +
      'machine and accelerator types, images…); the message names each field, the value found and what is allowed.',
  },
  ERR_REQUEST_JOB_SPEC_INVALID: {
    status: 'INVALID_ARGUMENT',
    http: 400,
    meaning:
      'The job in the body cannot be checked against the job conditions (a field of the wrong type, an unknown enum), or ' +
      'its labels are malformed.',
  },
  ERR_FORWARD_IDENTITY_UNAVAILABLE: {
    status: 'UNAVAILABLE',
    http: 503,
    meaning: "The team's Google identity (`vertex.identities`, by impersonation) has no token; nothing is forwarded.",
  },
  ERR_LIMIT_EXCEEDED: {
    status: 'RESOURCE_EXHAUSTED',
    http: 429,
    meaning: 'A limit (`limits.rules`) is reached; the details carry `google.rpc.QuotaFailure` and `RetryInfo`, and `Retry-After` is set.',
  },
  ERR_LIMIT_STORE_UNAVAILABLE: {
    status: 'UNAVAILABLE',
    http: 503,
    meaning: 'The limit store (Redis) is unreachable and `limits.store.onUnavailable` is `failClosed`.',
  },
  ERR_REQUEST_RESERVED_LABEL: {
    status: 'INVALID_ARGUMENT',
    http: 400,
    meaning: 'The body sets a label starting with `kvp-`, which the proxy sets itself.',
  },
  ERR_CONSOLE_CROSS_SITE: {
    status: 'PERMISSION_DENIED',
    http: 403,
    meaning:
      "A state-changing console request did not come from the console's own page (no console header, or `Sec-Fetch-Site` " +
      'not `same-origin`).',
  },
} as const satisfies Record<`ERR_${string}`, ErrorCodeSpec>;

/** Stable error codes: `ERR_<STAGE>_<CONDITION>`. */
export type ProxyErrorCode = keyof typeof ERROR_CODES;

/** Google's ErrorInfo `domain` for errors the proxy itself raises. */
export const ERROR_DOMAIN = 'kube-vertex-proxy.dev';

export interface ProxyErrorOptions {
  /** Kept for logs and audit only; never sent to the caller. */
  cause?: unknown;
  /** Extra response headers, e.g. `WWW-Authenticate` or `Allow`. */
  headers?: Readonly<Record<string, string>>;
  /** Short machine-readable reason (kebab-case) for the audit record and metrics. */
  reason?: string;
  /** ErrorInfo metadata shown to the caller (only for 4xx). */
  metadata?: Readonly<Record<string, string>>;
  /** More `google.rpc` details for the caller (only for 4xx), e.g. QuotaFailure and RetryInfo on a 429. */
  details?: ReadonlyArray<Readonly<Record<string, unknown>>>;
}

export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  readonly status: GoogleStatus;
  readonly httpStatus: number;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly reason: string;
  readonly metadata: Readonly<Record<string, string>> | undefined;
  readonly details: ReadonlyArray<Readonly<Record<string, unknown>>> | undefined;

  /** The status and HTTP code come from the code ({@link ERROR_CODES}). */
  constructor(code: ProxyErrorCode, message: string, options: ProxyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProxyError';
    this.code = code;
    const spec: ErrorCodeSpec = ERROR_CODES[code];
    this.status = spec.status;
    this.httpStatus = spec.http;
    this.headers = options.headers;
    this.reason = options.reason ?? code.toLowerCase().replace(/^err_/, '').replaceAll('_', '-');
    this.metadata = options.metadata;
    this.details = options.details;
  }

  /** Whether `message` may reach the caller. 5xx messages never do. */
  get expose(): boolean {
    return this.httpStatus < 500;
  }
}

const INVALID_TOKEN_CHALLENGE = 'Bearer realm="kube-vertex-proxy", error="invalid_token"';

/** 401 with the RFC 6750 challenge. `reason` names the check that failed (for audit and the caller). */
export function unauthenticated(
  code: Extract<ProxyErrorCode, `ERR_AUTHN_${string}` | 'ERR_IDENTITY_INVALID_CLAIMS'>,
  message: string,
  options: Omit<ProxyErrorOptions, 'headers'> = {},
): ProxyError {
  const challenge = code === 'ERR_AUTHN_MISSING_CREDENTIALS' ? 'Bearer realm="kube-vertex-proxy"' : INVALID_TOKEN_CHALLENGE;
  return new ProxyError(code, message, { ...options, headers: { 'www-authenticate': challenge } });
}

/**
 * Turns any thrown value into a ProxyError. Anything that is not already one is
 * a bug or an unexpected library failure: it becomes a generic INTERNAL error
 * whose cause is kept for the log, never shown.
 */
export function toProxyError(error: unknown): ProxyError {
  if (error instanceof ProxyError) return error;
  return new ProxyError('ERR_INTERNAL', 'internal error', { cause: error, reason: 'internal' });
}

export interface GoogleErrorBody {
  error: {
    code: number;
    message: string;
    status: GoogleStatus;
    details: Array<Record<string, unknown>>;
  };
}

const GENERIC_5XX_MESSAGE: Partial<Record<GoogleStatus, string>> = {
  UNAVAILABLE: 'The service is currently unavailable.',
  DEADLINE_EXCEEDED: 'The upstream did not answer in time.',
  INTERNAL: 'Internal error encountered.',
};

/** The only serializer of errors for clients: Google's `{"error":{…}}` envelope. */
export function toGoogleErrorBody(error: ProxyError, requestId: string): GoogleErrorBody {
  const expose = error.expose;
  const message = expose ? error.message : (GENERIC_5XX_MESSAGE[error.status] ?? 'Internal error encountered.');
  const metadata: Record<string, string> = { code: error.code };
  if (expose && error.metadata) Object.assign(metadata, error.metadata);
  return {
    error: {
      code: error.httpStatus,
      message,
      status: error.status,
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: error.code.replace(/^ERR_/, ''),
          domain: ERROR_DOMAIN,
          metadata,
        },
        { '@type': 'type.googleapis.com/google.rpc.RequestInfo', requestId },
        ...(expose && error.details !== undefined ? error.details : []),
      ],
    },
  };
}

export const GOOGLE_ERROR_CONTENT_TYPE = 'application/json; charset=UTF-8';
