/**
 * The JWS signature check of a compact JWT, with node:crypto on a KeyObject.
 *
 * jose verifies through WebCrypto (`crypto.subtle.verify`), which hands every
 * check to the libuv thread pool and back: for an RS256 token that doubles the
 * CPU of the check itself (measured in `npm run bench`'s micro-benchmarks,
 * `jwt-verify-jose-rs256` vs `signature-crypto-rs256`). `crypto.verify` runs the
 * same OpenSSL check synchronously. jose still parses the token, imports and
 * selects the keys (`createLocalJWKSet`) and validates the claims.
 *
 * The algorithm parameters are RFC 7518 §3: PKCS#1 v1.5 for RS*, PSS with a
 * salt as long as the hash for PS*, and for ES* the raw `R || S` signature of
 * fixed length (§3.4), never the DER form OpenSSL produces by default.
 *
 * @module
 */
import { KeyObject, constants, verify } from 'node:crypto';

interface AlgorithmParameters {
  /** Digest for `crypto.verify` (null: EdDSA, which hashes internally). */
  readonly hash: string | null;
  /** `KeyObject.asymmetricKeyType` values that fit. */
  readonly keyTypes: readonly string[];
  readonly pss?: true;
  /** ES*: the named curve and the length of the raw R || S signature. */
  readonly curve?: string;
  readonly signatureBytes?: number;
}

const PARAMETERS: Readonly<Record<string, AlgorithmParameters>> = {
  RS256: { hash: 'sha256', keyTypes: ['rsa'] },
  RS384: { hash: 'sha384', keyTypes: ['rsa'] },
  RS512: { hash: 'sha512', keyTypes: ['rsa'] },
  PS256: { hash: 'sha256', keyTypes: ['rsa'], pss: true },
  PS384: { hash: 'sha384', keyTypes: ['rsa'], pss: true },
  PS512: { hash: 'sha512', keyTypes: ['rsa'], pss: true },
  ES256: { hash: 'sha256', keyTypes: ['ec'], curve: 'prime256v1', signatureBytes: 64 },
  ES384: { hash: 'sha384', keyTypes: ['ec'], curve: 'secp384r1', signatureBytes: 96 },
  ES512: { hash: 'sha512', keyTypes: ['ec'], curve: 'secp521r1', signatureBytes: 132 },
  EdDSA: { hash: null, keyTypes: ['ed25519', 'ed448'] },
};

/** RFC 7518 §3.3 and §3.5: RSA keys of fewer bits are refused (jose's rule too). */
const MIN_RSA_BITS = 2048;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Why a compact JWS does not verify: the verifier maps each to its refusal. */
export type SignatureFailure = 'malformed' | 'unsupported-algorithm' | 'key-mismatch' | 'bad-signature';

/**
 * Checks the signature of a compact JWS (`header.payload.signature`) made
 * with `alg` by `key`. Synchronous: no thread-pool round trip.
 *
 * @returns undefined when the signature is valid, else why not.
 * @throws TypeError for an RSA key shorter than 2048 bits (as jose does: a
 *   key the issuer must not publish, not a fault of the caller's token).
 */
export function checkJwsSignature(token: string, alg: string, key: KeyObject): SignatureFailure | undefined {
  const parameters = PARAMETERS[alg];
  if (parameters === undefined) return 'unsupported-algorithm';
  if (!keyFits(key, parameters)) return 'key-mismatch';
  const dot = token.lastIndexOf('.');
  const encodedSignature = token.slice(dot + 1);
  // Buffer's base64url decoder skips characters outside the alphabet; a JWS must not contain any.
  if (dot <= 0 || !BASE64URL.test(encodedSignature)) return 'malformed';
  const signature = Buffer.from(encodedSignature, 'base64url');
  if (parameters.signatureBytes !== undefined && signature.length !== parameters.signatureBytes) return 'bad-signature';
  const signingInput = Buffer.from(token.slice(0, dot), 'latin1');
  const ok = verify(
    parameters.hash,
    signingInput,
    parameters.pss === true
      ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
      : parameters.curve !== undefined
        ? { key, dsaEncoding: 'ieee-p1363' }
        : key,
    signature,
  );
  return ok ? undefined : 'bad-signature';
}

function keyFits(key: KeyObject, parameters: AlgorithmParameters): boolean {
  if (key.type !== 'public') return false;
  const type = key.asymmetricKeyType ?? '';
  // An RSA-PSS-only key (SPKI id-RSASSA-PSS) never comes from a JWK; `rsa` serves both RS* and PS*.
  if (!parameters.keyTypes.includes(type)) return false;
  const details = key.asymmetricKeyDetails;
  if (type === 'rsa' && (details?.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw new TypeError(`RSA keys must be ${String(MIN_RSA_BITS)} bits or larger`);
  }
  return parameters.curve === undefined || details?.namedCurve === parameters.curve;
}
