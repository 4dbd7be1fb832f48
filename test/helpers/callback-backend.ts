/**
 * An in-cluster backend stand-in for callback tests: a loopback HTTP server
 * that does what a real backend behind the proxy should do — verify the
 * proxy's identity assertion with `jose` against the proxy's JWKS (fetched
 * from the admin port) before trusting anything — and records every complete
 * request it received (method, path, headers, body, verified claims).
 *
 * Paths starting with `/slow` answer after `slowMs`; everything else answers
 * 200 with a small JSON body echoing the verified caller.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { listenLoopback, type LoopbackServer } from '../../dev/standins/loopback.js';

export interface BackendRequest {
  readonly method: string;
  /** Raw request target as received (path and query). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The verified assertion claims, or the verification error's code. */
  readonly assertion: { readonly claims: JWTPayload } | { readonly error: string };
}

export interface CallbackBackend {
  readonly url: string;
  readonly requests: BackendRequest[];
  /** Where the backend fetches the proxy's public keys: set once the proxy is up. */
  trust(options: { jwksUrl: string; issuer: string; audience: string | string[]; header?: string }): void;
  close(): Promise<void>;
}

export async function startCallbackBackend(options: { slowMs?: number } = {}): Promise<CallbackBackend> {
  const requests: BackendRequest[] = [];
  let trust: { jwks: ReturnType<typeof createRemoteJWKSet>; issuer: string; audience: string | string[]; header: string } | undefined;

  const server: LoopbackServer = await listenLoopback(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = req.url ?? '/';
    let assertion: BackendRequest['assertion'] = { error: 'not-configured' };
    if (trust !== undefined) {
      const token = req.headers[trust.header];
      try {
        if (typeof token !== 'string') throw Object.assign(new Error('no assertion'), { code: 'NO_ASSERTION' });
        const { payload } = await jwtVerify(token, trust.jwks, { issuer: trust.issuer, audience: trust.audience, algorithms: ['ES256'] });
        assertion = { claims: payload };
      } catch (error) {
        assertion = { error: (error as { code?: string }).code ?? 'invalid' };
      }
    }
    requests.push({ method: req.method ?? '', url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), assertion });
    if ('error' in assertion) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: assertion.error }));
      return;
    }
    if (url.startsWith('/slow')) await new Promise((r) => setTimeout(r, options.slowMs ?? 5_000));
    res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'session=backend', 'x-backend': 'trainer' });
    res.end(JSON.stringify({ ok: true, caller: assertion.claims.email, route: assertion.claims.route }));
  });

  return {
    url: server.url,
    requests,
    trust({ jwksUrl, issuer, audience, header = 'x-kvp-assertion' }) {
      trust = { jwks: createRemoteJWKSet(new URL(jwksUrl)), issuer, audience, header };
    },
    close: () => server.close(),
  };
}
