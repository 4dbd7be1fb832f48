/**
 * Property tests of the callback router: random paths and mutations of the
 * routes' own paths (characters percent-encoded, letter case flipped,
 * separators, dot segments, path parameters inserted) never throw anything
 * but a 4xx ProxyError; and whenever a path is matched, the path forwarded
 * is the one matched (it decodes to the matched prefix's rewrite plus the
 * same rest), and every reading a backend might give it (decoded, decoded
 * without `;` parameters, decoded case-insensitively) lands on that same
 * route, never on another one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import { RouteTable, type CallbackRoute, type RouteMatch } from './routes.js';

const ORIGIN = 'http://backend.svc:8080';

function route(prefix: string, rewritePrefix = prefix, upstreamBasePath = ''): CallbackRoute {
  return {
    prefix,
    upstream: `${ORIGIN}${upstreamBasePath}`,
    upstreamOrigin: ORIGIN,
    upstreamBasePath,
    rewritePrefix,
    methods: new Set(['POST']),
    callers: { match: () => undefined },
    callerEntries: [],
    bodyLimitBytes: 1024,
    timeoutMs: 1000,
    audience: `${ORIGIN}${prefix}`,
    tokenAudiences: undefined,
  };
}

const ROUTES = [
  route('/callbacks/ops'),
  route('/callbacks/ops/admin'),
  route('/callbacks/ops-x', '/x'),
  route('/hooks', '/', '/base'),
  route('/a/b/c'),
  route('/a', '/z'),
];
const table = new RouteTable(ROUTES);

/** The longest route a backend reading `path` would pick (optionally ignoring case). */
function longest(path: string, foldCase: boolean): CallbackRoute | undefined {
  const p = foldCase ? path.toLowerCase() : path;
  return [...ROUTES]
    .sort((a, b) => b.prefix.length - a.prefix.length)
    .find((r) => {
      const prefix = foldCase ? r.prefix.toLowerCase() : r.prefix;
      return p === prefix || p.startsWith(`${prefix}/`);
    });
}

const decode = (path: string) => path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
const stripParams = (path: string) => path.replace(/;[^/]*/g, '');

function attempt(url: string): RouteMatch | ProxyError {
  try {
    return table.match('POST', url);
  } catch (error) {
    if (!(error instanceof ProxyError)) throw error;
    return error;
  }
}

function check(url: string): void {
  const result = attempt(url);
  if (result instanceof ProxyError) {
    expect(result.httpStatus).toBeGreaterThanOrEqual(400);
    expect(result.httpStatus).toBeLessThan(500);
    return;
  }
  const path = url.split('?', 1)[0] as string;
  const { route: matched, target } = result;
  expect(target.startsWith(ORIGIN)).toBe(true);
  const forwarded = target.slice(ORIGIN.length);
  // The forwarded path is the matched one: the route's rewrite plus the same rest, byte for byte.
  const rest = path.slice(matched.prefix.length);
  expect(path.startsWith(matched.prefix)).toBe(true);
  const base = `${matched.upstreamBasePath}${matched.rewritePrefix === '/' ? '' : matched.rewritePrefix}`;
  expect(forwarded).toBe(`${base}${rest}` || '/');
  // Every reading a backend (or a hop before it) may give the request path picks this same route.
  for (const reading of [decode(path), stripParams(decode(path)), decode(stripParams(path))]) {
    expect(longest(reading, false)?.prefix).toBe(matched.prefix);
    expect(longest(reading, true)?.prefix).toBe(matched.prefix);
  }
}

const INSERTS = [
  '/',
  '//',
  '/./',
  '/../',
  '..',
  ';',
  ';x',
  '%2F',
  '%2e',
  '%00',
  '%25',
  '%3B',
  '%3b',
  '\\',
  '%5C',
  ':',
  '@',
  '~',
  '%20',
  'é',
  '%C3%A9',
  '?q=1',
  '#',
];
type Mutation = { kind: 'encode'; at: number } | { kind: 'case'; at: number } | { kind: 'insert'; at: number; text: string };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('encode' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('case' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom(...INSERTS) }),
);

function apply(path: string, m: Mutation): string {
  const at = m.at % (path.length + 1);
  if (m.kind === 'insert') return path.slice(0, at) + m.text + path.slice(at);
  if (at >= path.length) return path;
  const ch = path[at] as string;
  if (m.kind === 'case') return path.slice(0, at) + (ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase()) + path.slice(at + 1);
  if (ch === '%') return path;
  return `${path.slice(0, at)}%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}${path.slice(at + 1)}`;
}

const seeds = [
  '/callbacks/ops/admin/reset',
  '/callbacks/ops/jobs/1',
  '/callbacks/ops-x/y',
  '/hooks/done',
  '/a/b/c/d',
  '/a/b',
  '/callbacks/ops',
  '/callbacks/ops/',
];

describe('callback router: properties', () => {
  it('arbitrary strings never throw anything but a 4xx ProxyError, and a match forwards what it matched', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => check(s)),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }).map((s) => `/callbacks/ops/${s}`),
        (s) => check(s),
      ),
      { numRuns: 3000 },
    );
  });

  it("mutations of the routes' own paths either are refused or reach, under every backend reading, the route they matched", () => {
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 4 }), (seed, mutations) =>
        check(mutations.reduce(apply, seed)),
      ),
      { numRuns: 10_000 },
    );
  });

  it("the attacker review's spellings are all refused", () => {
    for (const path of ['/callbacks/ops/%61dmin/reset', '/callbacks/ops/admin;/reset', '/callbacks/ops/ADMIN/reset']) {
      expect(attempt(path)).toBeInstanceOf(ProxyError);
    }
  });
});
