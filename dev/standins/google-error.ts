/**
 * Google's JSON error envelope as the stand-ins send it (https://cloud.google.com/apis/design/errors):
 * `{"error":{"code":HTTP,"message":…,"status":CANONICAL,"details":[…]}}` with
 * `Content-Type: application/json; charset=UTF-8`. `details` is omitted when
 * empty, as in the real 404s.
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import { GOOGLE_ERROR_CONTENT_TYPE, GOOGLE_STATUS, type GoogleStatus } from '../../src/errors.js';

export interface StandInError {
  readonly status: GoogleStatus;
  readonly message: string;
  readonly details?: ReadonlyArray<Readonly<Record<string, unknown>>>;
}

/**
 * The canonical status Google pairs with an HTTP code: the first entry of
 * code.proto's mapping (400 → INVALID_ARGUMENT, 409 → ABORTED, 500 → INTERNAL).
 */
export function statusForHttp(httpStatus: number): GoogleStatus {
  for (const [status, http] of Object.entries(GOOGLE_STATUS) as Array<[GoogleStatus, number]>) {
    if (http === httpStatus) return status;
  }
  return httpStatus >= 500 ? 'UNKNOWN' : 'FAILED_PRECONDITION';
}

export function googleErrorBody(error: StandInError, httpStatus: number = GOOGLE_STATUS[error.status]): string {
  return JSON.stringify({
    error: {
      code: httpStatus,
      message: error.message,
      status: error.status,
      ...(error.details && error.details.length > 0 && { details: error.details }),
    },
  });
}

export function sendGoogleError(res: ServerResponse, error: StandInError, httpStatus: number = GOOGLE_STATUS[error.status]): void {
  const body = googleErrorBody(error, httpStatus);
  res.writeHead(httpStatus, { 'Content-Type': GOOGLE_ERROR_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
