import { describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import { resolveOperation, type VertexScope } from './scope.js';

const scope: VertexScope = {
  projects: new Set(['my-proj']),
  projectIdByNumber: new Map([['123456789012', 'my-proj']]),
  locations: new Set(['us-central1']),
  upstreamFor: (location) => (location === 'us-central1' ? 'https://us-central1-aiplatform.googleapis.com' : undefined),
};

const code = (method: string, url: string) => {
  try {
    resolveOperation(method, url, scope);
  } catch (error) {
    return (error as ProxyError).code;
  }
  return 'accepted';
};

describe('resolveOperation', () => {
  it('returns the operation and the upstream its location picks', () => {
    const { operation, upstream } = resolveOperation('POST', '/v1/projects/my-proj/locations/us-central1/endpoints/1:predict', scope);
    expect(operation.resource).toBe('projects/my-proj/locations/us-central1/endpoints/1');
    expect(upstream).toBe('https://us-central1-aiplatform.googleapis.com');
  });

  it('authorizes a call addressed by project number as the project id', () => {
    const { operation } = resolveOperation('GET', '/v1/projects/123456789012/locations/us-central1/customJobs/7', scope);
    expect(operation.project).toBe('my-proj');
    expect(operation.resource).toBe('projects/my-proj/locations/us-central1/customJobs/7');
  });

  it.each([
    [
      'a location that is not configured',
      'POST',
      '/v1/projects/my-proj/locations/europe-west4/endpoints/1:predict',
      'ERR_REQUEST_LOCATION_NOT_SERVED',
    ],
    [
      'a project that is not configured',
      'POST',
      '/v1/projects/other/locations/us-central1/endpoints/1:predict',
      'ERR_AUTHZ_PROJECT_NOT_ALLOWED',
    ],
    ['an unknown project number', 'POST', '/v1/projects/999/locations/us-central1/endpoints/1:predict', 'ERR_AUTHZ_PROJECT_NOT_ALLOWED'],
    ['the location-less form', 'POST', '/v1/publishers/google/models/gemini-2.5-flash:generateContent', 'ERR_REQUEST_PROJECT_REQUIRED'],
  ])('refuses %s', (_title, method, url, expected) => {
    expect(code(method, url)).toBe(expected);
  });
});
