import { describe, expect, it } from 'vitest';
import type { KubernetesPrincipal } from './principal.js';
import { check } from './token-review.js';

const principal: KubernetesPrincipal = {
  kind: 'kubernetes',
  issuer: 'cluster',
  subject: 'system:serviceaccount:ml:trainer',
  namespace: 'ml',
  serviceAccount: 'trainer',
  uid: 'sa-uid',
  pod: { name: 'trainer-0', uid: 'pod-uid' },
  tokenId: undefined,
  expiresAt: 0,
};
const user = (extra: Record<string, string[]> = { 'authentication.kubernetes.io/pod-uid': ['pod-uid'] }) => ({
  username: 'system:serviceaccount:ml:trainer',
  uid: 'sa-uid',
  extra,
});

describe('the TokenReview verdict', () => {
  it('accepts an authenticated review for the same service account and pod', () => {
    expect(check({ status: { authenticated: true, user: user() } }, principal)).toBeUndefined();
  });

  it.each([
    [
      'the failure shape (no `authenticated`, empty user)',
      { user: {}, error: '[invalid bearer token, service account token has been invalidated]' },
    ],
    ['authenticated: false', { authenticated: false, user: user() }],
    ['another user', { authenticated: true, user: { ...user(), username: 'system:serviceaccount:ml:other' } }],
    ['another pod UID', { authenticated: true, user: user({ 'authentication.kubernetes.io/pod-uid': ['other'] }) }],
  ])('refuses %s with 401 token-review-rejected', (_title, status) => {
    const refusal = check({ status }, principal);
    expect(refusal).toMatchObject({ code: 'ERR_AUTHN_INVALID_TOKEN', httpStatus: 401, reason: 'token-review-rejected' });
    expect(refusal?.message).not.toContain('invalidated');
  });
});
