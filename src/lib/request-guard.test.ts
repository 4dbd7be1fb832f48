import { describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import { checkRequestHeaders } from './request-guard.js';

describe('checkRequestHeaders', () => {
  it.each(['x-goog-user-project', 'x-goog-api-key', 'x-http-method-override', 'x-http-method', 'x-method-override'])(
    'refuses %s with 400 INVALID_ARGUMENT',
    (name) => {
      try {
        checkRequestHeaders({ [name]: 'other-project' });
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(ProxyError);
        expect((error as ProxyError).code).toBe('ERR_REQUEST_FORBIDDEN_HEADER');
        expect((error as ProxyError).httpStatus).toBe(400);
      }
    },
  );

  it('accepts ordinary headers', () => {
    expect(() => checkRequestHeaders({ 'content-type': 'application/json', 'x-goog-api-client': 'x' })).not.toThrow();
  });
});
