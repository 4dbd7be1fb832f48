/**
 * A stand-in for Identity-Aware Proxy's side of the signed header: an ES256
 * key set served on loopback (as https://www.gstatic.com/iap/verify/public_key-jwk
 * serves IAP's) and assertions shaped like the `x-goog-iap-jwt-assertion`
 * IAP adds to every request it lets through.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export const IAP_AUDIENCE = '/projects/123456789012/global/backendServices/4567890123';

export interface IapStandIn {
  readonly jwksUri: string;
  assertion(email: string, options?: { audience?: string; issuer?: string; expiresIn?: number }): Promise<string>;
  close(): Promise<void>;
}

export async function startIapStandIn(): Promise<IapStandIn> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'iap-test-1', alg: 'ES256', use: 'sig' };
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    jwksUri: `http://127.0.0.1:${port}/iap/verify/public_key-jwk`,
    assertion(email, options = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ email, sub: `accounts.google.com:${Buffer.from(email).toString('hex').slice(0, 20)}`, hd: email.split('@')[1] })
        .setProtectedHeader({ alg: 'ES256', kid: 'iap-test-1' })
        .setIssuer(options.issuer ?? 'https://cloud.google.com/iap')
        .setAudience(options.audience ?? IAP_AUDIENCE)
        .setIssuedAt(now - 5)
        .setExpirationTime(now + (options.expiresIn ?? 600))
        .sign(privateKey);
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
