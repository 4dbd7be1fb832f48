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

/** Stable error codes: `ERR_<STAGE>_<CONDITION>`. Never renamed once released. */
export type ProxyErrorCode =
  | 'ERR_AUTHN_MISSING_CREDENTIALS'
  | 'ERR_AUTHN_MALFORMED_CREDENTIALS'
  | 'ERR_AUTHN_INVALID_TOKEN'
  | 'ERR_AUTHN_UNTRUSTED_ISSUER'
  | 'ERR_AUTHN_VERIFIER_UNAVAILABLE'
  | 'ERR_IDENTITY_INVALID_CLAIMS'
  | 'ERR_IDENTITY_LABELS_STALE'
  | 'ERR_REQUEST_INVALID_PATH'
  | 'ERR_REQUEST_MALFORMED'
  | 'ERR_REQUEST_UNKNOWN_METHOD'
  | 'ERR_REQUEST_UNKNOWN_ROUTE'
  | 'ERR_REQUEST_METHOD_NOT_ALLOWED'
  | 'ERR_REQUEST_LOCATION_NOT_SERVED'
  | 'ERR_REQUEST_PROJECT_REQUIRED'
  | 'ERR_REQUEST_FORBIDDEN_PARAMETER'
  | 'ERR_REQUEST_FORBIDDEN_HEADER'
  | 'ERR_REQUEST_BODY_TOO_LARGE'
  | 'ERR_REQUEST_BODY_INCOMPLETE'
  | 'ERR_REQUEST_TIMEOUT'
  | 'ERR_REQUEST_HEADERS_TOO_LARGE'
  | 'ERR_REQUEST_BODY_NOT_JSON'
  | 'ERR_REQUEST_BODY_INVALID'
  | 'ERR_AUTHZ_PROJECT_NOT_ALLOWED'
  | 'ERR_AUTHZ_DENIED'
  | 'ERR_FORWARD_CREDENTIAL_UNAVAILABLE'
  | 'ERR_FORWARD_UPSTREAM_UNREACHABLE'
  | 'ERR_FORWARD_UPSTREAM_TIMEOUT'
  | 'ERR_FORWARD_CREDENTIAL_REJECTED'
  | 'ERR_AUDIT_UNAVAILABLE'
  | 'ERR_AUDIT_INVALID_QUERY'
  | 'ERR_INTERNAL'
  | 'ERR_REQUEST_TOO_MANY_IN_FLIGHT'
  | 'ERR_REQUEST_INVALID_BODY_RESOURCE'
  | 'ERR_AUTHZ_BODY_RESOURCE_DENIED'
  | 'ERR_AUTHZ_JOB_CONDITIONS'
  | 'ERR_REQUEST_JOB_SPEC_INVALID'
  | 'ERR_FORWARD_IDENTITY_UNAVAILABLE'
  | 'ERR_LIMIT_EXCEEDED'
  | 'ERR_LIMIT_STORE_UNAVAILABLE'
  | 'ERR_REQUEST_RESERVED_LABEL';

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
  /** HTTP status when it differs from the Google status' usual one (502 for an unreachable upstream, 405, 413). */
  httpStatus?: number;
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

  constructor(code: ProxyErrorCode, status: GoogleStatus, message: string, options: ProxyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.status = status;
    this.httpStatus = options.httpStatus ?? GOOGLE_STATUS[status];
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
  return new ProxyError(code, 'UNAUTHENTICATED', message, { ...options, headers: { 'www-authenticate': challenge } });
}

/**
 * Turns any thrown value into a ProxyError. Anything that is not already one is
 * a bug or an unexpected library failure: it becomes a generic INTERNAL error
 * whose cause is kept for the log, never shown.
 */
export function toProxyError(error: unknown): ProxyError {
  if (error instanceof ProxyError) return error;
  return new ProxyError('ERR_INTERNAL', 'INTERNAL', 'internal error', { cause: error, reason: 'internal' });
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
