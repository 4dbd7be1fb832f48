/**
 * OIDC issuer stand-in on loopback: the GKE cluster issuer that signs
 * Kubernetes projected service-account tokens, or Google's ID-token issuer.
 *
 * Wire formats:
 * - `kubernetes` (service-account tokens,
 *   https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/;
 *   issuer discovery,
 *   https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/#service-account-issuer-discovery;
 *   GKE's, https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.clusters/getJwks): discovery at
 *   `{issuer}/.well-known/openid-configuration` in GKE's shape, JWKS at
 *   `{issuer}/jwks` as `application/jwk-set+json`, `Cache-Control: public,
 *   max-age=3600`, keys written in go-jose field order; `kid` =
 *   base64url(SHA-256(SPKI DER)); token header `{alg, kid}` with no `typ`;
 *   claims as kube-apiserver writes them for a custom audience (alphabetical,
 *   `aud` always an array, `iat = nbf`, `exp = iat + expiresIn`, no `warnafter`).
 * - `google` (https://developers.google.com/identity/openid-connect/openid-connect): discovery whose `jwks_uri` is
 *   `{origin}/oauth2/v3/certs`, the v3 certs document with 40-hex `kid`s and `Cache-Control: public,
 *   max-age=21600, must-revalidate, no-transform`; token header
 *   `{alg: RS256, kid, typ: JWT}`; claims `aud, azp, email, email_verified, exp,
 *   iat, iss, sub` with `azp = sub` = a 21-digit id.
 *
 * The issuer URL is `http://127.0.0.1:PORT` plus a path (real issuers are https;
 * jose does not care, kube-apiserver would). Hostile tokens are made with
 * {@link IssuerStandIn.signRaw}, `header`/`overrideClaims` and the foreign key.
 *
 * @module
 */
import { createHash, createHmac, createPublicKey, KeyObject, randomUUID, sign as cryptoSign, constants } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import { sendGoogleError } from './google-error.js';
import { listenLoopback } from './loopback.js';

export type IssuerKind = 'kubernetes' | 'google';
export type IssuerAlgorithm = 'RS256' | 'ES256';

export interface IssuerOptions {
  readonly kind: IssuerKind;
  /** Loopback address; default `127.0.0.1`. */
  readonly host?: string;
  /** Default 0 (a free port). */
  readonly port?: number;
  /**
   * Path appended to `http://HOST:PORT` to form the issuer. Default for
   * `kubernetes`: GKE's `/v1/projects/demo-project/locations/us-central1/clusters/demo-cluster`;
   * for `google`: none.
   */
  readonly issuerPath?: string;
  /** Signing algorithm. Default RS256; `google` supports RS256 only (as Google does). */
  readonly algorithm?: IssuerAlgorithm;
}

/** One signing key, with its public half as the JWKS publishes it. */
export interface StandInKey {
  readonly kid: string;
  readonly alg: IssuerAlgorithm;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The public JWK exactly as it appears in the JWKS document. */
  readonly jwk: Readonly<Record<string, string>>;
}

export interface KubernetesTokenOptions {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Always emitted as an array, as kube-apiserver does. */
  readonly audience: string | readonly string[];
  /** Seconds; default 3600 (the projected-volume default). */
  readonly expiresIn?: number;
  /** A pod-bound (kubelet-projected) token carries `kubernetes.io.pod`. */
  readonly podName?: string;
  /** Default: a random UUID when `podName` is given. */
  readonly podUid?: string;
  /** Default: one stable UUID per namespace/name for the life of the issuer, like a real ServiceAccount object. */
  readonly saUid?: string;
  /** `kubernetes.io.node` is added when given (ServiceAccountTokenPodNodeInfo). */
  readonly nodeName?: string;
  /** Default: one stable UUID per node name. */
  readonly nodeUid?: string;
  /** Default: a random UUID (ServiceAccountTokenJTI). */
  readonly jti?: string;
  /** Seconds since the epoch; default now. */
  readonly iat?: number;
  /** Default `iat`. */
  readonly nbf?: number;
  /** Merged over the claims; a claim set to `undefined` is removed. */
  readonly overrideClaims?: Readonly<Record<string, unknown>>;
  /** Merged over the header `{alg, kid}`; a field set to `undefined` is removed. */
  readonly header?: Readonly<Record<string, unknown>>;
  /** Default: the current key. */
  readonly signingKey?: StandInKey;
}

export interface GoogleIdTokenOptions {
  readonly email: string;
  readonly audience: string;
  /** The service account's 21-digit unique id; default derived from `email`. */
  readonly sub?: string;
  /** Default true. */
  readonly emailVerified?: boolean;
  /** Seconds; default 3600. */
  readonly expiresIn?: number;
  /** Seconds since the epoch; default now. */
  readonly iat?: number;
  /** Merged over the claims (e.g. `{ iss: 'https://accounts.google.com' }`); `undefined` removes a claim. */
  readonly overrideClaims?: Readonly<Record<string, unknown>>;
  /** Merged over the header `{alg, kid, typ}`; `undefined` removes a field. */
  readonly header?: Readonly<Record<string, unknown>>;
  /** Default: the current key. */
  readonly signingKey?: StandInKey;
}

/** A JSON object, a pre-serialised JSON string, or raw bytes for a JWS part. */
export type JwsPart = Readonly<Record<string, unknown>> | string | Uint8Array;

export interface IssuerStandIn {
  readonly kind: IssuerKind;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** The `iss` of every token and the discovery document's `issuer`. */
  readonly issuer: string;
  readonly discoveryUrl: string;
  readonly jwksUri: string;
  /** The key new tokens are signed with. */
  readonly currentKey: StandInKey;
  /** Every published key, oldest first. */
  readonly keys: readonly StandInKey[];
  /** A key pair that is never published: tokens signed with it must be rejected. */
  readonly foreignKey: StandInKey;
  /** Number of JWKS GETs served (including 503s). */
  readonly jwksRequests: number;
  /** Number of discovery GETs served (including 503s). */
  readonly discoveryRequests: number;
  mintKubernetesToken(options: KubernetesTokenOptions): string;
  mintGoogleIdToken(options: GoogleIdTokenOptions): string;
  /** Same claims and header (including the published current `kid`, unless overridden) but signed with {@link foreignKey}. */
  mintWithForeignKey(options: KubernetesTokenOptions | GoogleIdTokenOptions): string;
  /**
   * Signs arbitrary header and claims, byte for byte. The algorithm is the
   * header's `alg` (RS/PS/ES 256–512, HS 256–512 with a `Uint8Array` secret, or
   * `none`); `key: null` or `alg: 'none'` leaves the signature empty.
   *
   * @throws TypeError for an `alg` it cannot sign with the given key.
   */
  signRaw(header: JwsPart, claims: JwsPart, key?: StandInKey | Uint8Array | null): string;
  /** Adds a new key (published at once) and signs new tokens with it; old keys stay published. */
  rotateKey(): Promise<StandInKey>;
  /** Unpublishes every key except the current one. */
  retireOldKeys(): void;
  /** When false, JWKS and discovery answer 503 (for last-good-key tests). */
  setJwksAvailable(available: boolean): void;
  /** The JWKS document as currently served. */
  jwks(): { keys: Array<Record<string, string>> };
  close(): Promise<void>;
}

const DEFAULT_GKE_PATH = '/v1/projects/demo-project/locations/us-central1/clusters/demo-cluster';
/** kube-apiserver's value for both its documents; also sent with Google's discovery document [I]. */
const DEFAULT_CACHE_CONTROL = 'public, max-age=3600';
const GOOGLE_CERTS_CACHE_CONTROL = 'public, max-age=21600, must-revalidate, no-transform';
const GOOGLE_CERTS_PATH = '/oauth2/v3/certs';

/**
 * Starts an issuer stand-in with one signing key (and one unpublished foreign key).
 *
 * @throws TypeError for a non-loopback host, or `google` with a non-RS256 algorithm.
 */
export async function startIssuer(options: IssuerOptions): Promise<IssuerStandIn> {
  const { kind } = options;
  const algorithm = options.algorithm ?? 'RS256';
  if (kind === 'google' && algorithm !== 'RS256') {
    throw new TypeError('Google signs ID tokens with RS256 only');
  }
  const issuerPath = normalisePath(options.issuerPath ?? (kind === 'kubernetes' ? DEFAULT_GKE_PATH : ''));
  const [first, foreignKey] = await Promise.all([createKey(kind, algorithm), createKey(kind, algorithm)]);
  let keys: StandInKey[] = [first];
  let current = first;
  let available = true;
  let jwksRequests = 0;
  let discoveryRequests = 0;
  const serviceAccountUids = new Map<string, string>();
  const nodeUids = new Map<string, string>();

  const discoveryPath = `${issuerPath}/.well-known/openid-configuration`;
  const jwksPath = kind === 'kubernetes' ? `${issuerPath}/jwks` : GOOGLE_CERTS_PATH;

  const listener = await listenLoopback(handle, {
    ...(options.host !== undefined && { host: options.host }),
    ...(options.port !== undefined && { port: options.port }),
  });
  const issuer = `${listener.url}${issuerPath}`;
  const jwksUri = `${listener.url}${jwksPath}`;

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://stand-in').pathname;
    const isDiscovery = path === discoveryPath;
    const isJwks = path === jwksPath;
    if ((!isDiscovery && !isJwks) || (req.method !== 'GET' && req.method !== 'HEAD')) {
      sendGoogleError(res, { status: 'NOT_FOUND', message: 'Requested entity was not found.' });
      return;
    }
    if (isDiscovery) discoveryRequests++;
    else jwksRequests++;
    if (!available) {
      sendGoogleError(res, { status: 'UNAVAILABLE', message: 'The service is currently unavailable.' });
      return;
    }
    const body = JSON.stringify(isDiscovery ? discoveryDocument() : jwksDocument());
    const contentType =
      kind === 'kubernetes' ? (isJwks ? 'application/jwk-set+json' : 'application/json') : 'application/json; charset=UTF-8';
    res.writeHead(200, {
      'Content-Type': contentType,
      'Cache-Control': kind === 'google' && isJwks ? GOOGLE_CERTS_CACHE_CONTROL : DEFAULT_CACHE_CONTROL,
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function discoveryDocument(): Record<string, unknown> {
    const algs = [...new Set(keys.map((k) => k.alg))].sort();
    if (kind === 'kubernetes') {
      // GKE's document (projects.locations.clusters.well-known/getOpenid-configuration): upstream's five fields plus
      // claims_supported and grant_types.
      return {
        issuer,
        jwks_uri: jwksUri,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: algs,
        claims_supported: ['iss', 'sub', 'kubernetes.io'],
        grant_types: ['urn:kubernetes:grant_type:programmatic_authorization'],
      };
    }
    // accounts.google.com's document also lists authorization/token/userinfo
    // endpoints; they are left out so nothing is ever pointed at Google.
    return {
      issuer,
      jwks_uri: jwksUri,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      claims_supported: ['aud', 'email', 'email_verified', 'exp', 'iat', 'iss', 'sub'],
    };
  }

  function jwksDocument(): { keys: Array<Record<string, string>> } {
    return { keys: keys.map((k) => ({ ...k.jwk })) };
  }

  function uidFor(map: Map<string, string>, key: string): string {
    let uid = map.get(key);
    if (uid === undefined) {
      uid = randomUUID();
      map.set(key, uid);
    }
    return uid;
  }

  function kubernetesParts(o: KubernetesTokenOptions): { header: Record<string, unknown>; claims: Record<string, unknown> } {
    const signingKey = o.signingKey ?? current;
    const iat = o.iat ?? Math.floor(Date.now() / 1000);
    const nbf = o.nbf ?? iat;
    // Keys in alphabetical order at every level: go-jose merges the public and
    // private claim structs through a map before marshalling.
    const k8s: Record<string, unknown> = { namespace: o.namespace };
    if (o.nodeName !== undefined) {
      k8s['node'] = { name: o.nodeName, uid: o.nodeUid ?? uidFor(nodeUids, o.nodeName) };
    }
    if (o.podName !== undefined) {
      k8s['pod'] = { name: o.podName, uid: o.podUid ?? randomUUID() };
    }
    k8s['serviceaccount'] = {
      name: o.serviceAccount,
      uid: o.saUid ?? uidFor(serviceAccountUids, `${o.namespace}/${o.serviceAccount}`),
    };
    const claims: Record<string, unknown> = {
      aud: typeof o.audience === 'string' ? [o.audience] : [...o.audience],
      exp: iat + (o.expiresIn ?? 3600),
      iat,
      iss: issuer,
      jti: o.jti ?? randomUUID(),
      'kubernetes.io': k8s,
      nbf,
      sub: `system:serviceaccount:${o.namespace}:${o.serviceAccount}`,
    };
    return {
      header: { alg: signingKey.alg, kid: signingKey.kid, ...o.header },
      claims: { ...claims, ...o.overrideClaims },
    };
  }

  function googleParts(o: GoogleIdTokenOptions): { header: Record<string, unknown>; claims: Record<string, unknown> } {
    const signingKey = o.signingKey ?? current;
    const iat = o.iat ?? Math.floor(Date.now() / 1000);
    const sub = o.sub ?? uniqueIdFor(o.email);
    const claims: Record<string, unknown> = {
      aud: o.audience,
      azp: sub,
      email: o.email,
      email_verified: o.emailVerified ?? true,
      exp: iat + (o.expiresIn ?? 3600),
      iat,
      iss: issuer,
      sub,
    };
    return {
      header: { alg: 'RS256', kid: signingKey.kid, typ: 'JWT', ...o.header },
      claims: { ...claims, ...o.overrideClaims },
    };
  }

  const standIn: IssuerStandIn = {
    kind,
    url: listener.url,
    port: listener.port,
    issuer,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    jwksUri,
    get currentKey() {
      return current;
    },
    get keys() {
      return [...keys];
    },
    foreignKey,
    get jwksRequests() {
      return jwksRequests;
    },
    get discoveryRequests() {
      return discoveryRequests;
    },
    mintKubernetesToken(o) {
      const { header, claims } = kubernetesParts(o);
      return signJws(header, claims, o.signingKey ?? current);
    },
    mintGoogleIdToken(o) {
      const { header, claims } = googleParts(o);
      return signJws(header, claims, o.signingKey ?? current);
    },
    mintWithForeignKey(o) {
      // The header keeps the *published* kid: only the signature gives the forgery away.
      const { header, claims } = 'email' in o ? googleParts(o) : kubernetesParts(o);
      return signJws(header, claims, foreignKey);
    },
    signRaw(header, claims, key = current) {
      return signJws(header, claims, key);
    },
    async rotateKey() {
      const next = await createKey(kind, algorithm);
      keys = [...keys, next];
      current = next;
      return next;
    },
    retireOldKeys() {
      keys = [current];
    },
    setJwksAvailable(value) {
      available = value;
    },
    jwks: jwksDocument,
    close: () => listener.close(),
  };
  return standIn;
}

/** A deterministic 21-digit service-account unique id for an email (real ones start with 1). */
export function uniqueIdFor(email: string): string {
  const digest = createHash('sha256').update(email).digest();
  let digits = '1';
  for (let i = 0; digits.length < 21; i++) digits += String((digest[i % digest.length] ?? 0) % 10);
  return digits;
}

async function createKey(kind: IssuerKind, alg: IssuerAlgorithm): Promise<StandInKey> {
  const pair = await generateKeyPair(alg, { extractable: true });
  const privateKey = KeyObject.from(pair.privateKey);
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const exported = await exportJWK(pair.publicKey);
  let kid: string;
  let jwk: Record<string, string>;
  if (kind === 'kubernetes') {
    // kube-apiserver's keyIDFromPublicKey: base64url(SHA-256(DER SPKI)), no padding.
    kid = createHash('sha256').update(spki).digest('base64url');
    // go-jose's JSONWebKey field order: use, kty, kid, crv, alg, x, y / n, e.
    jwk =
      alg === 'RS256'
        ? { use: 'sig', kty: 'RSA', kid, alg, n: exported.n ?? '', e: exported.e ?? '' }
        : { use: 'sig', kty: 'EC', kid, crv: exported.crv ?? '', alg, x: exported.x ?? '', y: exported.y ?? '' };
  } else {
    // Google's v3 kids are 40 hex characters; a SHA-1 of the key gives that shape.
    kid = createHash('sha1').update(spki).digest('hex');
    jwk = { kty: 'RSA', alg: 'RS256', use: 'sig', kid, n: exported.n ?? '', e: exported.e ?? '' };
  }
  return { kid, alg, privateKey, publicKey, jwk };
}

function encodePart(part: JwsPart): string {
  if (typeof part === 'string') return Buffer.from(part, 'utf8').toString('base64url');
  if (part instanceof Uint8Array) return Buffer.from(part).toString('base64url');
  return Buffer.from(JSON.stringify(part), 'utf8').toString('base64url');
}

function headerAlg(header: JwsPart): unknown {
  if (typeof header === 'string' || header instanceof Uint8Array) {
    try {
      return (JSON.parse(Buffer.from(header).toString('utf8')) as { alg?: unknown }).alg;
    } catch {
      return undefined;
    }
  }
  return header['alg'];
}

function signJws(header: JwsPart, claims: JwsPart, key: StandInKey | Uint8Array | null): string {
  const input = `${encodePart(header)}.${encodePart(claims)}`;
  const alg = headerAlg(header);
  if (key === null || alg === 'none') return `${input}.`;
  if (typeof alg !== 'string') throw new TypeError('header has no alg to sign with');
  const match = /^(RS|PS|ES|HS)(256|384|512)$/.exec(alg);
  if (!match) throw new TypeError(`cannot sign alg ${alg}`);
  const [, family, bits] = match;
  const hash = `sha${bits}`;
  if (family === 'HS') {
    if (!(key instanceof Uint8Array)) throw new TypeError(`${alg} needs a Uint8Array secret`);
    return `${input}.${createHmac(hash, key).update(input).digest('base64url')}`;
  }
  if (key instanceof Uint8Array) throw new TypeError(`${alg} needs a StandInKey`);
  const signature =
    family === 'ES'
      ? cryptoSign(hash, Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      : family === 'PS'
        ? cryptoSign(hash, Buffer.from(input), {
            key: key.privateKey,
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
          })
        : cryptoSign(hash, Buffer.from(input), key.privateKey);
  return `${input}.${signature.toString('base64url')}`;
}

function normalisePath(path: string): string {
  if (path === '' || path === '/') return '';
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  return withSlash.replace(/\/+$/, '');
}
