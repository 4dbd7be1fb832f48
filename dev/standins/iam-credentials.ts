/**
 * IAM Service Account Credentials API stand-in on loopback: the one method
 * impersonation uses,
 * `POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`
 * (https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken).
 *
 * Request: the caller's bearer token, body `{"scope": [...], "lifetime": "3600s", "delegates": [...]}`.
 * Answer: `200 {"accessToken": "ya29.…", "expireTime": "RFC 3339"}`, a new
 * distinct token each time, recorded with the account it was minted for.
 * Refusal, for an account the caller may not impersonate (not in
 * `grantable`): `403 {"error": {"code": 403, "status": "PERMISSION_DENIED",
 * "message": "Permission 'iam.serviceAccounts.getAccessToken' denied on
 * resource (or it may not exist)."}}`. Without a bearer token: the real 401.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { sendGoogleError } from './google-error.js';
import { listenLoopback, readBody } from './loopback.js';

export interface IamCredentialsStandInOptions {
  /** Service accounts the caller holds Token Creator on; others are refused. */
  readonly grantable: readonly string[];
  /** Caps the lifetime asked for (Google caps at 3600s unless extended); default 3600. */
  readonly maxLifetimeSec?: number;
}

export interface MintedToken {
  readonly serviceAccount: string;
  readonly accessToken: string;
  /** The caller's (the proxy's own) bearer token. */
  readonly callerToken: string;
  readonly scope: readonly string[];
  readonly lifetime: string | undefined;
}

export interface IamCredentialsStandIn {
  /** `http://127.0.0.1:PORT`: the API base URL (what `vertex.iamCredentialsEndpoint` takes). */
  readonly url: string;
  /** Every token minted, oldest first. */
  readonly minted: MintedToken[];
  /** generateAccessToken calls refused, by account. */
  readonly refused: string[];
  /** Accounts the caller may impersonate (mutable: a test can revoke a grant). */
  readonly grantable: Set<string>;
  close(): Promise<void>;
}

const PATH = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/;
const LIFETIME = /^([0-9]+)(?:\.[0-9]+)?s$/;

export async function startIamCredentialsStandIn(options: IamCredentialsStandInOptions): Promise<IamCredentialsStandIn> {
  const minted: MintedToken[] = [];
  const refused: string[] = [];
  const grantable = new Set(options.grantable);
  const maxLifetimeSec = options.maxLifetimeSec ?? 3600;

  const server = await listenLoopback(async (req, res) => {
    const url = req.url ?? '/';
    const match = req.method === 'POST' ? PATH.exec(url.split('?')[0] ?? '') : null;
    if (match === null) {
      sendGoogleError(res, { status: 'NOT_FOUND', message: 'Requested entity was not found.' });
      return;
    }
    const authorization = req.headers.authorization;
    if (typeof authorization !== 'string' || !authorization.startsWith('Bearer ') || authorization.length <= 7) {
      sendGoogleError(res, {
        status: 'UNAUTHENTICATED',
        message:
          'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other ' +
          'valid authentication credential.',
      });
      return;
    }
    let body: { scope?: unknown; lifetime?: unknown };
    try {
      body = JSON.parse((await readBody(req)).toString('utf8')) as typeof body;
    } catch {
      sendGoogleError(res, { status: 'INVALID_ARGUMENT', message: 'Invalid JSON payload received.' });
      return;
    }
    const scope = Array.isArray(body.scope) ? body.scope.filter((s): s is string => typeof s === 'string') : [];
    if (scope.length === 0) {
      sendGoogleError(res, { status: 'INVALID_ARGUMENT', message: 'Scope is required.' });
      return;
    }
    const account = decodeURIComponent(match[1] as string);
    if (!grantable.has(account)) {
      refused.push(account);
      sendGoogleError(res, {
        status: 'PERMISSION_DENIED',
        message: "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
      });
      return;
    }
    const lifetime = typeof body.lifetime === 'string' ? body.lifetime : undefined;
    const asked = lifetime === undefined ? 3600 : Number(LIFETIME.exec(lifetime)?.[1] ?? Number.NaN);
    if (!Number.isFinite(asked) || asked <= 0 || asked > maxLifetimeSec) {
      sendGoogleError(res, { status: 'INVALID_ARGUMENT', message: `The lifetime must be between 1s and ${maxLifetimeSec}s.` });
      return;
    }
    const accessToken = `ya29.impersonated-${randomBytes(16).toString('hex')}`;
    minted.push({ serviceAccount: account, accessToken, callerToken: authorization.slice(7), scope, lifetime });
    const answer = JSON.stringify({ accessToken, expireTime: new Date(Date.now() + asked * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') });
    res.writeHead(200, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(answer) });
    res.end(answer);
  });

  return {
    url: server.url,
    minted,
    refused,
    grantable,
    close: () => server.close(),
  };
}
