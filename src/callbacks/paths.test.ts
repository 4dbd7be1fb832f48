import { describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import { checkCallbackPath } from './paths.js';

function refusal(path: string): { code: string; reason: string } | undefined {
  try {
    checkCallbackPath(path);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ProxyError);
    return { code: (error as ProxyError).code, reason: (error as ProxyError).reason };
  }
}

describe('checkCallbackPath', () => {
  it.each([
    '/callbacks/training',
    '/callbacks/training/',
    '/callbacks/training/jobs/123:complete',
    '/callbacks/training/%C3%A9t%C3%A9',
    '/callbacks/training/name%20with%20space',
    '/callbacks/training/...',
    '/callbacks/training/.hidden',
    "/callbacks/training/!$&'()*+,=:@~",
  ])('accepts the plain path %s', (path) => {
    expect(refusal(path)).toBeUndefined();
  });

  it.each([
    ['/callbacks/training/../admin', 'path-escape'],
    ['/callbacks/training/./x', 'path-escape'],
    ['/callbacks/training/..', 'path-escape'],
    ['/callbacks/training/..;/admin', 'path-escape'],
    ['/callbacks/training/.;x/admin', 'path-escape'],
    ['/callbacks/training/%2e%2e/admin', 'path-escape'],
    ['/callbacks/training/%2E%2E/admin', 'path-escape'],
    ['/callbacks/training/.%2e/admin', 'path-escape'],
    ['/callbacks/training/..%2fadmin', 'path-escape'],
    ['/callbacks/training%2F..%2Fadmin', 'path-escape'],
    ['/callbacks/training/x%5c..%5cadmin', 'path-escape'],
    ['/callbacks/training/x\\..\\admin', 'path-escape'],
    ['/callbacks/training/%252e%252e/admin', 'path-escape'],
    ['/callbacks/training//admin', 'path-escape'],
    ['/callbacks/training/%00', 'path-escape'],
    ['/callbacks/training/%0d%0aX-Injected:1', 'path-escape'],
    ['/callbacks/training/a;b=c/x', 'path-escape'],
    ['/callbacks/ops/admin;/reset', 'path-escape'],
    ['/callbacks/ops/admin%3b/reset', 'path-escape'],
    ['/callbacks/ops/%61dmin/reset', 'path-escape'],
    ['/callbacks/ops/adm%69n', 'path-escape'],
    ['/callbacks/ops/%7Euser', 'path-escape'],
    ['/callbacks/ops/a%2Db', 'path-escape'],
    ['/callbacks/ops/a%5fb', 'path-escape'],
    ['/callbacks/ops/%30', 'path-escape'],
    ['/callbacks/training/%zz', 'invalid-path'],
    ['/callbacks/training/%C3', 'invalid-path'],
    ['/callbacks/training/a b', 'invalid-path'],
    ['/callbacks/training/\u00e9', 'invalid-path'],
    ['/callbacks/training/<script>', 'invalid-path'],
    ['callbacks/training', 'invalid-path'],
    ['*', 'invalid-path'],
  ])('refuses %s (%s)', (path, reason) => {
    expect(refusal(path)).toEqual({ code: 'ERR_REQUEST_INVALID_PATH', reason });
  });
});
