import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, GOOGLE_STATUS, GRPC_CODE, ProxyError, type ProxyErrorCode } from './errors.js';
import { errorReference } from './errors-reference.js';

const SRC = import.meta.dirname;
const DOC = readFileSync(join(SRC, '../docs/errors.md'), 'utf8');
const CODES = Object.keys(ERROR_CODES) as ProxyErrorCode[];

/** The code and tests of the proxy, without this table itself. */
const sources = readdirSync(SRC, { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !/^errors(-reference)?\.ts$/.test(e.name))
  .map((e) => ({ path: join(e.parentPath, e.name), text: readFileSync(join(e.parentPath, e.name), 'utf8') }));

describe('docs/errors.md', () => {
  it.each(CODES)('lists %s with its HTTP status and gRPC code', (code) => {
    const { http, status } = ERROR_CODES[code];
    expect(DOC, `${code} is missing from docs/errors.md: run \`npm run docs:errors\``).toContain(
      `| \`${code}\` | ${String(http)} | \`${status}\` (${String(GRPC_CODE[status])}) |`,
    );
  });

  it('is the reference generated from the table in src/errors.ts (run `npm run docs:errors` after changing it)', () => {
    expect(DOC).toBe(errorReference());
  });

  it('lists no code the proxy does not have', () => {
    const listed = [...DOC.matchAll(/^\| `(ERR_[A-Z0-9_]+)`/gm)].map((m) => m[1]);
    expect(listed.filter((code) => code === undefined || !(code in ERROR_CODES))).toEqual([]);
    expect(listed).toHaveLength(CODES.length);
  });
});

describe('the code table', () => {
  it('every code is raised somewhere in src/ (no code documented that cannot happen)', () => {
    const unused = CODES.filter((code) => !sources.some(({ text }) => text.includes(`'${code}'`)));
    expect(unused).toEqual([]);
  });

  it('every ERR_<STAGE>_ code named in src/ (comments included) is in the table', () => {
    const stages = new Set(CODES.map((code) => code.split('_')[1]));
    const unknown = sources.flatMap(({ path, text }) =>
      [...text.matchAll(/\bERR_([A-Z0-9]+)_[A-Z0-9_]*[A-Z0-9]\b/g)]
        .filter((m) => stages.has(m[1]) && !(m[0] in ERROR_CODES))
        .map((m) => `${path}: ${m[0]}`),
    );
    expect(unknown).toEqual([]);
  });

  it('an HTTP status other than the canonical one only where HTTP has a more exact answer', () => {
    const differing = CODES.filter((code) => ERROR_CODES[code].http !== GOOGLE_STATUS[ERROR_CODES[code].status]).map(
      (code) => `${code} ${String(ERROR_CODES[code].http)}`,
    );
    expect(differing.sort()).toEqual([
      'ERR_FORWARD_CREDENTIAL_REJECTED 502',
      'ERR_FORWARD_UPSTREAM_UNREACHABLE 502',
      'ERR_REQUEST_BODY_TOO_LARGE 413',
      'ERR_REQUEST_HEADERS_TOO_LARGE 431',
      'ERR_REQUEST_METHOD_NOT_ALLOWED 405',
      'ERR_REQUEST_TIMEOUT 408',
    ]);
  });

  it.each(CODES)('new ProxyError(%s) answers with the status of its code', (code) => {
    const error = new ProxyError(code, 'm');
    expect([error.httpStatus, error.status]).toEqual([ERROR_CODES[code].http, ERROR_CODES[code].status]);
    expect(error.expose).toBe(ERROR_CODES[code].http < 500);
  });
});
