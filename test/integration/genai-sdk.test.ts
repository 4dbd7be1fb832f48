/**
 * Google's Gen AI SDK for Python (google-genai, Vertex AI mode, from the test
 * venv) streams Gemini through the proxy — deploy/examples/python/generate_stream.py
 * as it is — and the proxy counts the stream's usage; a token limit then
 * refuses the SDK's next call with the 429 it understands.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/proxy-process.js';
import { findPythonExamplesInterpreter, runToolAsync } from '../helpers/tools.js';
import { LOCATION, PROJECT, startWorld, type World } from '../helpers/world.js';

let world: World;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kvp-genai-'));
  world = await startWorld({
    config: (defaults) => ({
      ...defaults,
      // The stand-in reports a token per word plus 5 thinking tokens: about 21 per call, so 30 a day admits two calls.
      limits: {
        rules: [
          {
            id: 'sdk-tokens',
            subjects: { serviceAccounts: ['ml/trainer'] },
            permissions: ['generate'],
            per: 'serviceAccount',
            tokensPerDay: 30,
          },
        ],
      },
    }),
  });
  world.vertex.streamChunks = 4;
  world.vertex.thoughtsTokens = 5;
});
afterAll(async () => {
  await world?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('google-genai (Python) through the proxy', () => {
  it(
    'streams generate_content_stream chunk by chunk, its usage is counted, and a token limit answers the SDK with 429',
    { timeout: 120_000 },
    async () => {
      const python = findPythonExamplesInterpreter();
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, world.token('ml', 'trainer'));
      const env = {
        VERTEX_ENDPOINT: world.proxy.dataUrl,
        VERTEX_TOKEN_FILE: tokenFile,
        VERTEX_PROJECT: PROJECT,
        VERTEX_LOCATION: LOCATION,
        VERTEX_MODEL: 'gemini-2.5-flash',
      };
      const script = join(REPO_ROOT, 'deploy', 'examples', 'python', 'generate_stream.py');
      const run = () => runToolAsync(python, [script], { env, timeoutMs: 60_000 });

      const first = await run();
      expect(first.status, first.stderr).toBe(0);
      const out = JSON.parse(first.stdout) as { chunks: string[]; totalTokenCount: number };
      expect(out.chunks).toHaveLength(4);
      const entry = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.operation === 'publisherModels.streamGenerateContent');
      const record = entry.kubeVertexProxy;
      // The SDK asked for server-sent events; the proxy read the same total the SDK saw.
      expect(record.path).toContain(':streamGenerateContent');
      expect(record.tokens?.total).toBe(out.totalTokenCount);
      expect(record.tokens?.thoughts).toBe(5);
      expect(record.model).toBe('google/gemini-2.5-flash');
      expect(record.userAgent).toContain('google-genai-sdk');

      // 2 × ~20 tokens > 30: the third call is refused before anything is forwarded.
      expect((await run()).status).toBe(0);
      const refused = await run();
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain('429');
      expect(refused.stderr).toContain('RESOURCE_EXHAUSTED');
      const refusal = await world.proxy.waitForAudit((e) => e.kubeVertexProxy.limitRule === 'sdk-tokens');
      expect(refusal.kubeVertexProxy.status).toBe(429);
    },
  );
});
