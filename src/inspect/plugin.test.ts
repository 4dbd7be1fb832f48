import Fastify, { type FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { afterEach, describe, expect, it } from 'vitest';
import { ProxyError, toGoogleErrorBody } from '../errors.js';
import { newRequestContext } from '../request-context.js';
import type { BodyRule } from './body-rule.js';
import { inspectPlugin } from './plugin.js';

/** Stands in for the steps before inspect: a context and the authorize plugin name inspect depends on. */
const authorizeStandIn = fp(
  async (app) => {
    app.addHook('onRequest', (request, _reply, done) => {
      request.kvp = newRequestContext();
      done();
    });
  },
  { name: 'kvp-authorize' },
);

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function build(rules: BodyRule[]): Promise<FastifyInstance> {
  app = Fastify();
  await app.register(authorizeStandIn);
  await app.register(inspectPlugin, { rules, bodyLimitBytes: 1024 });
  // Like the forwarder: bodies stay streams; the route reports what it would forward.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  app.setErrorHandler((error, request, reply) => {
    const failure = error instanceof ProxyError ? error : new ProxyError('ERR_INTERNAL', 'INTERNAL', 'x');
    void reply.code(failure.httpStatus).send(toGoogleErrorBody(failure, request.id));
  });
  app.post('/*', async (request) => ({
    inspected: request.kvp.forwardBody?.toString('latin1') ?? null,
    failure: request.kvp.failure?.code ?? null,
  }));
  return app;
}

const wantsModels: BodyRule = {
  name: 'models',
  wants: (request) => request.url.startsWith('/models'),
  inspect: (_request, body) => {
    const model = (body.json as { model?: unknown }).model;
    if (model === 'forbidden')
      return { refuse: new ProxyError('ERR_AUTHZ_DENIED', 'PERMISSION_DENIED', 'model: forbidden is not granted') };
    if (model === 'label-me') return { rewrite: (json) => void (json.labels = { team: 'ml' }) };
    return undefined;
  },
};

describe('inspect step', () => {
  it('leaves requests no rule wants as streams', async () => {
    const proxy = await build([wantsModels]);
    const res = await proxy.inject({
      method: 'POST',
      url: '/other',
      headers: { 'content-type': 'application/json' },
      payload: '{"model":"forbidden"}',
    });
    expect(res.json()).toEqual({ inspected: null, failure: null });
  });

  it("hands on the caller's exact bytes", async () => {
    const proxy = await build([wantsModels]);
    const payload = '{ "model" : "ok",  "n": 1.0 }';
    const res = await proxy.inject({ method: 'POST', url: '/models', headers: { 'content-type': 'application/json' }, payload });
    expect(res.json()).toEqual({ inspected: payload, failure: null });
  });

  it("refuses with the rule's error, in Google's shape", async () => {
    const proxy = await build([wantsModels]);
    const res = await proxy.inject({
      method: 'POST',
      url: '/models',
      headers: { 'content-type': 'application/json' },
      payload: '{"model":"forbidden"}',
    });
    expect(res.statusCode).toBe(403);
    expect(res.json<{ error: unknown }>().error).toMatchObject({ status: 'PERMISSION_DENIED', message: 'model: forbidden is not granted' });
  });

  it('forwards a rewrite only when a rule asks for one', async () => {
    const proxy = await build([wantsModels]);
    const res = await proxy.inject({
      method: 'POST',
      url: '/models',
      headers: { 'content-type': 'application/json' },
      payload: '{"model":"label-me"}',
    });
    expect(JSON.parse(res.json<{ inspected: string }>().inspected)).toEqual({ model: 'label-me', labels: { team: 'ml' } });
  });

  it('refuses bodies over the limit with 413, and non-JSON with 400', async () => {
    const proxy = await build([wantsModels]);
    const big = await proxy.inject({
      method: 'POST',
      url: '/models',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      payload: `{"x":"${'a'.repeat(2000)}"}`,
    });
    expect(big.statusCode).toBe(413);
    const text = await proxy.inject({
      method: 'POST',
      url: '/models',
      headers: { 'content-type': 'text/plain' },
      payload: 'model=forbidden',
    });
    expect(text.statusCode).toBe(400);
    expect(text.json<{ error: { details: Array<{ metadata: { code: string } }> } }>().error.details[0]!.metadata.code).toBe(
      'ERR_REQUEST_BODY_NOT_JSON',
    );
  });
});
