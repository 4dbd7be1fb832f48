/**
 * Who is calling, once their token has been verified.
 *
 * @module
 */

/** A Kubernetes service account, from a projected service-account token. */
export interface KubernetesPrincipal {
  readonly kind: 'kubernetes';
  /** Issuer name from the config (not the URL), for logs and metrics. */
  readonly issuer: string;
  /** `system:serviceaccount:NS:NAME`. */
  readonly subject: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The service account's UID (`kubernetes.io.serviceaccount.uid`). */
  readonly uid: string | undefined;
  /** The pod the token is bound to, when it is pod-bound. */
  readonly pod: { readonly name: string; readonly uid: string } | undefined;
  /** `jti`, when the cluster sets it: joins audit records to TokenReview/apiserver logs. */
  readonly tokenId: string | undefined;
  /** Token expiry, epoch milliseconds. */
  readonly expiresAt: number;
}

/** A Google identity, from a Google-signed ID token. */
export interface GooglePrincipal {
  readonly kind: 'google';
  readonly issuer: string;
  /** Google's numeric unique id of the account (`sub`). */
  readonly subject: string;
  readonly email: string;
  /** The token's `aud` values (a route may accept only some of the issuer's audiences). */
  readonly audiences: readonly string[];
  readonly expiresAt: number;
}

export type Principal = KubernetesPrincipal | GooglePrincipal;

/** The principal as an audit log names it. */
export function principalName(principal: Principal): string {
  return principal.kind === 'kubernetes' ? principal.subject : principal.email;
}
