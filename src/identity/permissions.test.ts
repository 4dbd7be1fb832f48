import { describe, expect, it } from 'vitest';
import { describePermission, requiredPermissions } from './permissions.js';

const names = (k: Parameters<typeof requiredPermissions>[0]) => requiredPermissions(k).map(describePermission);

describe('requiredPermissions', () => {
  it('needs nothing when no mode calls the API server', () => {
    expect(names({ namespaceLabels: 'static', tokenReview: false, uidRevocation: 'off' })).toEqual([]);
    expect(names({ namespaceLabels: 'off', tokenReview: false, uidRevocation: 'off' })).toEqual([]);
  });

  it("names each mode's verbs, as RBAC and kubectl auth can-i name them", () => {
    expect(names({ namespaceLabels: 'watch', tokenReview: false, uidRevocation: 'off' })).toEqual(['list namespaces', 'watch namespaces']);
    expect(names({ namespaceLabels: 'static', tokenReview: true, uidRevocation: 'off' })).toEqual([
      'create tokenreviews.authentication.k8s.io',
    ]);
    expect(names({ namespaceLabels: 'static', tokenReview: false, uidRevocation: 'serviceAccounts' })).toEqual([
      'list serviceaccounts',
      'watch serviceaccounts',
    ]);
    expect(names({ namespaceLabels: 'static', tokenReview: false, uidRevocation: 'serviceAccountsAndPods' })).toEqual([
      'list serviceaccounts',
      'watch serviceaccounts',
      'list pods',
      'watch pods',
    ]);
  });

  it('says which setting needs each permission', () => {
    const all = requiredPermissions({ namespaceLabels: 'watch', tokenReview: true, uidRevocation: 'serviceAccountsAndPods' });
    expect(all).toHaveLength(7);
    expect(all.find((p) => p.resource === 'pods')?.neededBy).toBe('kubernetes.uidRevocation: serviceAccountsAndPods');
    expect(all.find((p) => p.resource === 'tokenreviews')).toEqual({
      verb: 'create',
      resource: 'tokenreviews',
      group: 'authentication.k8s.io',
      neededBy: 'kubernetes.tokenReview: true',
    });
  });
});
