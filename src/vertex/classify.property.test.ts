/**
 * Property tests of the path classifier against mutated paths: a valid
 * Vertex AI path from the operation table, mutated (characters
 * percent-encoded, letter case flipped, separators, dot segments, path
 * parameters and escapes inserted), never throws anything but a ProxyError,
 * and whenever it classifies, it classifies exactly as its canonical form
 * (every escape decoded) does: the same operation, permission and resource.
 * A mutation that only encodes characters classifies to the original.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.js';
import { classify } from './classify.js';
import type { Operation } from './operation-types.js';
import { OPERATION_BINDINGS } from './operation-table.js';

const SAMPLE: Record<string, string> = {
  project: 'my-proj',
  location: 'us-central1',
  endpoint: '1234567890',
  publisher: 'google',
  model: 'gemini-2.5-flash@001',
  customJob: '111',
  trainingPipeline: '222',
  pipelineJob: 'my-pipeline-run-20250101',
  batchPredictionJob: '333',
  hyperparameterTuningJob: '444',
  operation: '5555',
};

const PATHS = OPERATION_BINDINGS.flatMap((binding) => {
  const resource = binding.resource.replace(/\{([a-zA-Z]+)\}/g, (_, name: string) => SAMPLE[name] ?? 'x1');
  return binding.spec.versions.map((version) => ({
    method: binding.spec.httpMethod,
    spec: binding.spec,
    resource,
    path:
      `/${version}/${resource}${binding.suffix === undefined ? '' : `/${binding.suffix}`}` +
      (binding.verb === undefined ? '' : `:${binding.verb}`),
  }));
});

const INSERTS = [
  '/',
  '//',
  '/./',
  '/../',
  '..',
  ';',
  ';x=1',
  '%2F',
  '%2f',
  '%2e',
  '%2E%2E',
  '%00',
  '%25',
  '%252e',
  ':',
  '@',
  '~',
  '\\',
  '%5C',
  '?',
  '#',
  ' ',
  '%20',
  'é',
  '%C3%A9',
  '%3B',
  '%3A',
];

type Mutation =
  { kind: 'encode'; at: number; lower: boolean } | { kind: 'case'; at: number } | { kind: 'insert'; at: number; text: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('encode' as const), at: fc.nat(), lower: fc.boolean() }),
  fc.record({ kind: fc.constant('case' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom(...INSERTS) }),
);

function apply(path: string, m: Mutation): string {
  const at = m.at % (path.length + 1);
  if (m.kind === 'insert') return path.slice(0, at) + m.text + path.slice(at);
  if (at >= path.length) return path;
  const ch = path[at] as string;
  if (m.kind === 'case') {
    const flipped = ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase();
    return path.slice(0, at) + flipped + path.slice(at + 1);
  }
  if (ch === '%') return path;
  const hex = ch.charCodeAt(0).toString(16).padStart(2, '0');
  return `${path.slice(0, at)}%${m.lower ? hex : hex.toUpperCase()}${path.slice(at + 1)}`;
}

/** Every `%XX` decoded once, byte-wise (the path's canonical reading). */
function canonical(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

function attempt(method: string, url: string): Operation | ProxyError {
  try {
    return classify(method, url);
  } catch (error) {
    if (!(error instanceof ProxyError)) throw error;
    return error;
  }
}

describe('classify: mutated paths', () => {
  it('never throw anything but a ProxyError, and classify only as their canonical form does', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PATHS),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        ({ method, spec, resource, path }, mutations) => {
          const mutated = mutations.reduce(apply, path);
          const result = attempt(method, mutated);
          if (result instanceof ProxyError) {
            expect(result.httpStatus).toBeGreaterThanOrEqual(400);
            expect(result.httpStatus).toBeLessThan(500);
            return;
          }
          const canon = attempt(method, canonical(mutated));
          expect(canon).not.toBeInstanceOf(ProxyError);
          const expected = canon as Operation;
          expect(result.spec.id).toBe(expected.spec.id);
          expect(result.spec.permission).toBe(expected.spec.permission);
          expect(result.resource).toBe(expected.resource);
          if (canonical(mutated) === path) {
            // Only characters were encoded: the very operation of the original path.
            expect(result.spec).toBe(spec);
            expect(result.resource).toBe(resource);
          }
        },
      ),
      { numRuns: 10_000 },
    );
  });
});
