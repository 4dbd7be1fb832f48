import { describe, expect, it } from 'vitest';
import { compileCallers } from './callers.js';

const PRINCIPAL =
  'principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-proj.svc.id.goog/subject/ns/ml/sa/trainer';

function admits(entries: string[], email: string, subject = '105271527809661757734'): string | undefined {
  const { matcher, problems } = compileCallers(entries);
  expect(problems).toEqual([]);
  return matcher.match({ email, subject });
}

describe('compileCallers', () => {
  it.each([
    [['trainer@my-proj.iam.gserviceaccount.com'], 'trainer@my-proj.iam.gserviceaccount.com', 'trainer@my-proj.iam.gserviceaccount.com'],
    [['Trainer@My-Proj.iam.gserviceaccount.com'], 'trainer@my-proj.iam.gserviceaccount.com', 'Trainer@My-Proj.iam.gserviceaccount.com'],
    [
      ['service-123456789012@gcp-sa-aiplatform.iam.gserviceaccount.com'],
      'service-123456789012@gcp-sa-aiplatform.iam.gserviceaccount.com',
      'service-123456789012@gcp-sa-aiplatform.iam.gserviceaccount.com',
    ],
    [['*-ci@my-proj.iam.gserviceaccount.com'], 'build-ci@my-proj.iam.gserviceaccount.com', '*-ci@my-proj.iam.gserviceaccount.com'],
    [['*@my-proj.iam.gserviceaccount.com'], 'pipelines@my-proj.iam.gserviceaccount.com', '*@my-proj.iam.gserviceaccount.com'],
    [['105271527809661757734'], 'anyone@example.com', '105271527809661757734'],
    [[PRINCIPAL], PRINCIPAL, PRINCIPAL],
  ])('%j admits %s', (entries, email, entry) => {
    expect(admits(entries, email)).toBe(entry);
  });

  it.each([
    [['trainer@my-proj.iam.gserviceaccount.com'], 'trainer2@my-proj.iam.gserviceaccount.com'],
    [['service-1@gcp-sa-aiplatform.iam.gserviceaccount.com'], 'service-1@gcp-sa-aiplatform-cc.iam.gserviceaccount.com'],
    [['service-1@gcp-sa-aiplatform.iam.gserviceaccount.com'], 'service-2@gcp-sa-aiplatform.iam.gserviceaccount.com'],
    [['*-ci@my-proj.iam.gserviceaccount.com'], 'evil@example.com'],
    [['*@my-proj.iam.gserviceaccount.com'], 'x@other-proj.iam.gserviceaccount.com'],
    [['*@my-proj.iam.gserviceaccount.com'], 'x@my-proj.iam.gserviceaccount.com.evil.com'],
    [['105271527809661757734'], 'x@example.com', '105271527809661757735'],
    [[PRINCIPAL], `${PRINCIPAL}x`],
  ])('%j does not admit %s', (entries, email, subject = '111') => {
    expect(admits(entries, email, subject)).toBeUndefined();
  });

  it.each([
    ['service-*@*.iam.gserviceaccount.com', 'before the "@"'],
    ['*@*', 'before the "@"'],
    ['principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p.svc.id.goog/namespace/ml', 'principalSet://'],
    ['principal://example.com/x', 'principal://iam.googleapis.com'],
    ['not-an-email', 'must be an email'],
    ['a@@b.com', 'must be an email'],
    ['a b@example.com', 'not a valid email'],
    ['a@localhost', 'not a valid email'],
    // Domains Google shares between customers: the message gives the exact form to write.
    ['service-*@gcp-sa-aiplatform.iam.gserviceaccount.com', '"service-PROJECT_NUMBER@gcp-sa-aiplatform.iam.gserviceaccount.com"'],
    ['service-*@gcp-sa-aiplatform-cc.iam.gserviceaccount.com', '"service-PROJECT_NUMBER@gcp-sa-aiplatform-cc.iam.gserviceaccount.com"'],
    ['*-compute@developer.gserviceaccount.com', '"PROJECT_NUMBER-compute@developer.gserviceaccount.com"'],
    ['*@appspot.gserviceaccount.com', '"PROJECT_ID@appspot.gserviceaccount.com"'],
    ['*@cloudbuild.gserviceaccount.com', '"PROJECT_NUMBER@cloudbuild.gserviceaccount.com"'],
    ['*@cloudservices.gserviceaccount.com', 'Google shares that domain'],
    ['service-*@cloud-ml.google.com.iam.gserviceaccount.com', 'Google shares that domain'],
    ['service-*@container-engine-robot.iam.gserviceaccount.com', 'Google shares that domain'],
    ['*@gmail.com', 'Google shares that domain'],
  ])('refuses the entry %s', (entry, message) => {
    const { problems } = compileCallers(['ok@example.com', entry]);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.index).toBe(1);
    expect(problems[0]?.message).toContain(message);
  });
});
