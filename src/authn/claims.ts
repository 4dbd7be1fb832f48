/**
 * Verified JWT claims → Principal. Pure: the signature and the registered
 * claims (iss, aud, exp, nbf, iat) have been checked before these run.
 *
 * @module
 */
import type { JWTPayload } from 'jose';
import { unauthenticated } from '../errors.js';
import type { GooglePrincipal, KubernetesPrincipal } from './principal.js';

const SA_SUBJECT = /^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/;

interface KubernetesClaim {
  namespace?: unknown;
  serviceaccount?: { name?: unknown; uid?: unknown };
  pod?: { name?: unknown; uid?: unknown };
}

function invalidClaims(message: string, reason: string) {
  return unauthenticated('ERR_IDENTITY_INVALID_CLAIMS', message, { reason });
}

/**
 * A projected service-account token's identity. `sub` and the `kubernetes.io`
 * claim must name the same namespace and service account: a token where they
 * disagree was not minted by a kube-apiserver and is refused.
 *
 * @throws ProxyError ERR_IDENTITY_INVALID_CLAIMS (401)
 */
export function toKubernetesPrincipal(payload: JWTPayload, issuerName: string): KubernetesPrincipal {
  const match = typeof payload.sub === 'string' ? SA_SUBJECT.exec(payload.sub) : null;
  if (!match)
    throw invalidClaims(
      'The token subject is not a Kubernetes service account (system:serviceaccount:NAMESPACE:NAME).',
      'subject-not-service-account',
    );
  const namespace = match[1] as string;
  const serviceAccount = match[3] as string;
  const claim = payload['kubernetes.io'] as KubernetesClaim | null | undefined;
  if (claim === null || typeof claim !== 'object') {
    throw invalidClaims('The token has no kubernetes.io claim.', 'missing-kubernetes-claim');
  }
  if (claim.namespace !== namespace || claim.serviceaccount?.name !== serviceAccount) {
    throw invalidClaims('The token subject and its kubernetes.io claim name different service accounts.', 'kubernetes-claim-mismatch');
  }
  const saUid = claim.serviceaccount.uid;
  const pod = claim.pod;
  return {
    kind: 'kubernetes',
    issuer: issuerName,
    subject: payload.sub as string,
    namespace,
    serviceAccount,
    uid: typeof saUid === 'string' ? saUid : undefined,
    pod: pod && typeof pod.name === 'string' && typeof pod.uid === 'string' ? { name: pod.name, uid: pod.uid } : undefined,
    tokenId: typeof payload.jti === 'string' ? payload.jti : undefined,
    expiresAt: (payload.exp as number) * 1000,
  };
}

/**
 * A Google ID token's identity. Only a verified email names a principal:
 * `email_verified` must be literally true.
 *
 * @throws ProxyError ERR_IDENTITY_INVALID_CLAIMS (401)
 */
export function toGooglePrincipal(payload: JWTPayload, issuerName: string): GooglePrincipal {
  if (typeof payload.sub !== 'string' || payload.sub === '') throw invalidClaims('The token has no subject.', 'missing-subject');
  if (typeof payload.email !== 'string' || payload.email === '') throw invalidClaims('The token has no email claim.', 'missing-email');
  if (payload.email_verified !== true) throw invalidClaims('The token email is not verified.', 'email-not-verified');
  const audiences = Array.isArray(payload.aud)
    ? payload.aud.filter((a): a is string => typeof a === 'string')
    : typeof payload.aud === 'string'
      ? [payload.aud]
      : [];
  return {
    kind: 'google',
    issuer: issuerName,
    subject: payload.sub,
    email: payload.email,
    audiences,
    expiresAt: (payload.exp as number) * 1000,
  };
}
