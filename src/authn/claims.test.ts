import { describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import { toGooglePrincipal, toKubernetesPrincipal } from './claims.js';

const now = 1_800_000_000;
const ksa = {
  aud: ['kube-vertex-proxy'],
  exp: now + 3600,
  iat: now,
  nbf: now,
  iss: 'https://container.googleapis.com/v1/projects/p/locations/l/clusters/c',
  jti: 'aed34954-b33a-4142-b1ec-389d6bbb4936',
  'kubernetes.io': {
    namespace: 'ml',
    node: { name: 'node-1', uid: '646e7c5e-32d6-4d42-9dbd-e504e6cbe6b1' },
    pod: { name: 'trainer-7d9f6c4b58-mk2vq', uid: '5e0bd49b-f040-43b0-99b7-22765a53f7f3' },
    serviceaccount: { name: 'trainer', uid: '14ee3fa4-a7e2-420f-9f9a-dbc4507c3798' },
  },
  sub: 'system:serviceaccount:ml:trainer',
};

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return (error as ProxyError).reason;
  }
  return 'no error';
};

describe('toKubernetesPrincipal', () => {
  it('maps a pod-bound projected token to namespace, service account, uid and pod', () => {
    expect(toKubernetesPrincipal(ksa, 'cluster')).toEqual({
      kind: 'kubernetes',
      issuer: 'cluster',
      subject: 'system:serviceaccount:ml:trainer',
      namespace: 'ml',
      serviceAccount: 'trainer',
      uid: '14ee3fa4-a7e2-420f-9f9a-dbc4507c3798',
      pod: { name: 'trainer-7d9f6c4b58-mk2vq', uid: '5e0bd49b-f040-43b0-99b7-22765a53f7f3' },
      tokenId: 'aed34954-b33a-4142-b1ec-389d6bbb4936',
      expiresAt: (now + 3600) * 1000,
    });
  });

  it('accepts a token without pod binding (kubectl create token)', () => {
    const { pod: _pod, node: _node, ...rest } = ksa['kubernetes.io'];
    expect(toKubernetesPrincipal({ ...ksa, 'kubernetes.io': rest }, 'cluster').pod).toBeUndefined();
  });

  it.each([
    ['a subject that is not a service account', { sub: 'admin' }, 'subject-not-service-account'],
    ['a subject with extra parts', { sub: 'system:serviceaccount:ml:trainer:x' }, 'subject-not-service-account'],
    ['no kubernetes.io claim', { 'kubernetes.io': undefined }, 'missing-kubernetes-claim'],
    [
      'a namespace that disagrees with sub',
      { 'kubernetes.io': { ...ksa['kubernetes.io'], namespace: 'kube-system' } },
      'kubernetes-claim-mismatch',
    ],
    [
      'a service account that disagrees with sub',
      { 'kubernetes.io': { ...ksa['kubernetes.io'], serviceaccount: { name: 'admin', uid: 'x' } } },
      'kubernetes-claim-mismatch',
    ],
  ])('refuses %s', (_title, override, reason) => {
    expect(code(() => toKubernetesPrincipal({ ...ksa, ...override }, 'cluster'))).toBe(reason);
  });
});

describe('toGooglePrincipal', () => {
  const google = {
    aud: 'https://cb.example.com',
    azp: '105271527809661757734',
    email: 'service-123@gcp-sa-aiplatform.iam.gserviceaccount.com',
    email_verified: true,
    exp: now + 3600,
    iat: now,
    iss: 'https://accounts.google.com',
    sub: '105271527809661757734',
  };

  it('maps a verified email', () => {
    expect(toGooglePrincipal(google, 'google')).toEqual({
      kind: 'google',
      issuer: 'google',
      subject: '105271527809661757734',
      email: 'service-123@gcp-sa-aiplatform.iam.gserviceaccount.com',
      audiences: ['https://cb.example.com'],
      expiresAt: (now + 3600) * 1000,
    });
  });

  it.each([
    ['an unverified email', { email_verified: false }, 'email-not-verified'],
    ['email_verified as a string', { email_verified: 'true' }, 'email-not-verified'],
    ['no email', { email: undefined }, 'missing-email'],
    ['no subject', { sub: undefined }, 'missing-subject'],
  ])('refuses %s', (_title, override, reason) => {
    expect(code(() => toGooglePrincipal({ ...google, ...override } as never, 'google'))).toBe(reason);
  });
});
