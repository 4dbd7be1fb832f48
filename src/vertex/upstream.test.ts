import { describe, expect, it } from 'vitest';

import { DEFAULT_UPSTREAM_TEMPLATE, createUpstreamResolver } from './upstream.js';

const LOCATIONS = ['us-central1', 'europe-west4', 'asia-northeast1', 'global', 'us', 'eu'];

describe('createUpstreamResolver with the default Google template', () => {
  const resolve = createUpstreamResolver(DEFAULT_UPSTREAM_TEMPLATE, LOCATIONS);

  it.each([
    ['us-central1', 'https://us-central1-aiplatform.googleapis.com'],
    ['europe-west4', 'https://europe-west4-aiplatform.googleapis.com'],
    ['asia-northeast1', 'https://asia-northeast1-aiplatform.googleapis.com'],
    ['global', 'https://aiplatform.googleapis.com'],
    ['us', 'https://aiplatform.us.rep.googleapis.com'],
    ['eu', 'https://aiplatform.eu.rep.googleapis.com'],
  ])('sends %s to %s', (location, url) => {
    expect(resolve(location)).toBe(url);
  });

  it('sends the location-less forms (null) to the global host', () => {
    expect(resolve(null)).toBe('https://aiplatform.googleapis.com');
  });

  it.each(['us-east1', 'US-CENTRAL1', '', 'evil.example.com/', '__proto__', 'constructor', 'us-central1.evil.com'])(
    'has no URL for the unconfigured location %j',
    (location) => {
      expect(resolve(location)).toBeUndefined();
    },
  );

  it('accepts the default template with a trailing slash and still returns origins without one', () => {
    const withSlash = createUpstreamResolver(`${DEFAULT_UPSTREAM_TEMPLATE}/`, ['global', 'us-central1']);
    expect(withSlash('global')).toBe('https://aiplatform.googleapis.com');
    expect(withSlash('us-central1')).toBe('https://us-central1-aiplatform.googleapis.com');
  });

  it('works with no configured location: every location is unknown, null is still global', () => {
    const none = createUpstreamResolver(DEFAULT_UPSTREAM_TEMPLATE, []);
    expect(none('us-central1')).toBeUndefined();
    expect(none(null)).toBe('https://aiplatform.googleapis.com');
  });
});

describe('createUpstreamResolver with a custom template', () => {
  it('substitutes every location as is, global, us and eu included, and null as global', () => {
    const resolve = createUpstreamResolver('http://{location}.vertex.test:9000', ['us-central1', 'global', 'us', 'eu']);
    expect(resolve('us-central1')).toBe('http://us-central1.vertex.test:9000');
    expect(resolve('global')).toBe('http://global.vertex.test:9000');
    expect(resolve('us')).toBe('http://us.vertex.test:9000');
    expect(resolve('eu')).toBe('http://eu.vertex.test:9000');
    expect(resolve(null)).toBe('http://global.vertex.test:9000');
    expect(resolve('europe-west4')).toBeUndefined();
  });

  it('sends every configured location, and null, to a fixed URL without {location}', () => {
    const resolve = createUpstreamResolver('http://127.0.0.1:8089', ['us-central1', 'global']);
    expect(resolve('us-central1')).toBe('http://127.0.0.1:8089');
    expect(resolve('global')).toBe('http://127.0.0.1:8089');
    expect(resolve(null)).toBe('http://127.0.0.1:8089');
    expect(resolve('europe-west4')).toBeUndefined();
  });

  it.each([
    ['https://Vertex.Example.com:443/', 'https://vertex.example.com'],
    ['http://localhost:80', 'http://localhost'],
    ['http://[::1]:8080', 'http://[::1]:8080'],
  ])('normalizes %s to the origin %s', (template, origin) => {
    expect(createUpstreamResolver(template, ['global'])('global')).toBe(origin);
  });
});

describe('createUpstreamResolver refuses at construction', () => {
  it.each([
    ['not a URL', 'not a url'],
    ['an empty template', ''],
    ['a non-HTTP scheme', 'ftp://vertex.example.com'],
    ['a file URL', 'file:///etc/passwd'],
    ['a path', 'https://vertex.example.com/v1'],
    ['a path with {location}', 'https://vertex.example.com/{location}'],
    ['a query', 'https://vertex.example.com?x=1'],
    ['an empty query', 'https://vertex.example.com?'],
    ['a fragment', 'https://vertex.example.com#x'],
    ['credentials', 'https://user:pass@vertex.example.com'],
    ['another placeholder', 'https://{region}-aiplatform.googleapis.com'],
  ])('%s (%j) with a TypeError', (_what, template) => {
    expect(() => createUpstreamResolver(template, ['us-central1'])).toThrow(TypeError);
  });

  it.each(['US-CENTRAL1', 'us_central1', 'evil.com/x', '', '-us', 'a'.repeat(64), 'us central1'])(
    'an invalid configured location %j with a TypeError',
    (location) => {
      expect(() => createUpstreamResolver(DEFAULT_UPSTREAM_TEMPLATE, [location])).toThrow(TypeError);
    },
  );

  it('names the template in the message', () => {
    expect(() => createUpstreamResolver('https://vertex.example.com/v1', [])).toThrow(/vertex\.example\.com\/v1.*origin only/);
  });
});
