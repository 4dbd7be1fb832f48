import { describe, expect, it } from 'vitest';

import type { PolicyRule } from '../config/schema.js';
import { ProxyError } from '../errors.js';
import { compilePolicy } from '../policy/compile.js';
import type { PolicySubject } from '../policy/decision.js';
import { bodyResourceFieldOf, bodyResourceName, checkBodyResource, type BodyResourcesOptions } from './body-resources.js';
import { classify } from './classify.js';
import { KNOWN_PERMISSIONS } from './operation-table.js';

const LOC = 'projects/my-proj/locations/us-central1';
const SUBJECT: PolicySubject = { namespace: 'ml', serviceAccount: 'trainer', labels: {} };

function options(rules: PolicyRule[]): BodyResourcesOptions {
  const { policy, problems } = compilePolicy(rules, {
    knownPermissions: KNOWN_PERMISSIONS,
    projects: ['my-proj', 'other-proj'],
    locations: ['us-central1'],
  });
  if (problems.length > 0) throw new Error(problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  return {
    policy: () => policy,
    scope: { projects: new Set(['my-proj', 'other-proj']), projectIdByNumber: new Map([['123456789012', 'my-proj']]) },
  };
}

/** The path's resource is granted by `path`, the body's resource only by `bodyGrant`. */
const allowOnly = (bodyGrant: string): BodyResourcesOptions =>
  options([
    {
      id: 'scoped',
      effect: 'allow',
      subjects: { serviceAccounts: ['ml/*'] },
      permissions: ['*'],
      resources: [
        `${LOC}/endpoints/**`,
        `${LOC}/batchPredictionJobs`,
        `${LOC}/tuningJobs`,
        `${LOC}/publishers/google/models/gemini-2.5-flash`,
        bodyGrant,
      ],
    },
  ]);

const CASES = [
  {
    field: 'model',
    method: 'POST',
    path: `/v1beta1/${LOC}/endpoints/openapi/chat/completions`,
    body: { model: 'google/gemini-2.5-pro', messages: [] },
    resource: `${LOC}/publishers/google/models/gemini-2.5-pro`,
  },
  {
    field: 'cachedContent',
    method: 'POST',
    path: `/v1/${LOC}/publishers/google/models/gemini-2.5-flash:generateContent`,
    body: { contents: [], cachedContent: `${LOC}/cachedContents/777` },
    resource: `${LOC}/cachedContents/777`,
  },
  {
    field: 'model',
    method: 'POST',
    path: `/v1/${LOC}/batchPredictionJobs`,
    body: { displayName: 'b', model: `${LOC}/models/42@3` },
    resource: `${LOC}/models/42@3`,
  },
  {
    field: 'baseModel',
    method: 'POST',
    path: `/v1/${LOC}/tuningJobs`,
    body: { baseModel: 'gemini-2.5-flash-001', supervisedTuningSpec: {} },
    resource: `${LOC}/publishers/google/models/gemini-2.5-flash-001`,
  },
  {
    field: 'deployedModel.model',
    method: 'POST',
    path: `/v1/${LOC}/endpoints/9:deployModel`,
    body: { deployedModel: { model: `${LOC}/models/42` } },
    resource: `${LOC}/models/42`,
  },
] as const;

describe('resources named in the body', () => {
  it.each(CASES)('$field of $path is allowed when its resource is granted', ({ method, path, body, resource }) => {
    expect(checkBodyResource(classify(method, path), SUBJECT, body, allowOnly(resource))).toBeUndefined();
  });

  it.each(CASES)('$field of $path is a 403 naming the field when only the path is granted', ({ field, method, path, body, resource }) => {
    const refusal = checkBodyResource(classify(method, path), SUBJECT, body, allowOnly(`${LOC}/nothing/else`));
    expect(refusal).toBeInstanceOf(ProxyError);
    expect(refusal).toMatchObject({ code: 'ERR_AUTHZ_BODY_RESOURCE_DENIED', httpStatus: 403, metadata: { field, resource } });
    expect(refusal?.message).toContain(`"${field}"`);
  });

  it.each(CASES)('$field of $path that names something else is a 400', ({ field, method, path }) => {
    const operation = classify(method, path);
    const spec = bodyResourceFieldOf(operation);
    if (spec === undefined) throw new Error('no field');
    let body: Record<string, unknown> = { [spec.path[0] as string]: '../../secrets/x' };
    if (spec.path.length === 2) body = { [spec.path[0] as string]: { [spec.path[1] as string]: `${LOC}/endpoints/1` } };
    expect(checkBodyResource(operation, SUBJECT, body, allowOnly('**'))).toMatchObject({
      code: 'ERR_REQUEST_INVALID_BODY_RESOURCE',
      httpStatus: 400,
      metadata: { field },
    });
    expect(
      checkBodyResource(operation, SUBJECT, spec.path.length === 1 ? { [field]: 7 } : { deployedModel: { model: 7 } }, allowOnly('**')),
    ).toMatchObject({
      code: 'ERR_REQUEST_INVALID_BODY_RESOURCE',
    });
  });

  it('an absent field leaves the decision to the path', () => {
    const operation = classify('POST', `/v1/${LOC}/publishers/google/models/gemini-2.5-flash:generateContent`);
    expect(checkBodyResource(operation, SUBJECT, { contents: [] }, allowOnly(`${LOC}/nothing`))).toBeUndefined();
    expect(checkBodyResource(operation, SUBJECT, [], allowOnly(`${LOC}/nothing`))).toBeUndefined();
  });

  it('a body resource in a project the proxy does not serve is refused even by an allow-all rule', () => {
    const operation = classify('POST', `/v1/${LOC}/batchPredictionJobs`);
    const allowAll = options([{ id: 'all', effect: 'allow', subjects: { serviceAccounts: ['*/*'] }, permissions: ['*'] }]);
    expect(
      checkBodyResource(operation, SUBJECT, { model: 'projects/someone-else/locations/us-central1/models/1' }, allowAll),
    ).toMatchObject({
      code: 'ERR_AUTHZ_BODY_RESOURCE_DENIED',
    });
    expect(
      checkBodyResource(operation, SUBJECT, { model: 'projects/other-proj/locations/us-central1/models/1' }, allowAll),
    ).toBeUndefined();
  });

  it('a project number in the body is authorized as the project id', () => {
    const operation = classify('POST', `/v1/${LOC}/endpoints/9:deployModel`);
    const refusal = checkBodyResource(
      operation,
      SUBJECT,
      { deployedModel: { model: 'projects/123456789012/locations/us-central1/models/42' } },
      allowOnly(`${LOC}/models/42`),
    );
    expect(refusal).toBeUndefined();
  });

  it('short and relative forms resolve in the path project and location', () => {
    const chat = classify('POST', `/v1beta1/${LOC}/endpoints/openapi/chat/completions`);
    const field = bodyResourceFieldOf(chat);
    if (field === undefined) throw new Error('no field');
    expect(bodyResourceName(chat, field, { model: 'meta/llama-3.3-70b-instruct-maas' })).toBe(
      `${LOC}/publishers/meta/models/llama-3.3-70b-instruct-maas`,
    );
    const generate = classify('POST', `/v1/${LOC}/endpoints/5:generateContent`);
    const cached = bodyResourceFieldOf(generate);
    if (cached === undefined) throw new Error('no field');
    expect(bodyResourceName(generate, cached, { cachedContent: 'cachedContents/9' })).toBe(`${LOC}/cachedContents/9`);
  });

  it('only endpoints/openapi takes the chat model from the body; a deployed endpoint is its own resource', () => {
    expect(bodyResourceFieldOf(classify('POST', `/v1beta1/${LOC}/endpoints/openapi/chat/completions`))?.field).toBe('model');
    expect(bodyResourceFieldOf(classify('POST', `/v1beta1/${LOC}/endpoints/123/chat/completions`))).toBeUndefined();
    expect(bodyResourceFieldOf(classify('POST', `/v1/${LOC}/endpoints/123:predict`))).toBeUndefined();
  });
});
