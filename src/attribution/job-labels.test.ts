import { describe, expect, it } from 'vitest';
import { labelValue } from './job-labels.js';

describe('labelValue', () => {
  it('keeps names that fit Google label values, writes "." as "_"', () => {
    expect(labelValue('ml')).toBe('ml');
    expect(labelValue('trainer.v2')).toBe('trainer_v2');
  });

  it('shortens names over 63 characters deterministically, keeping distinct names distinct', () => {
    const a = labelValue(`${'a'.repeat(70)}-one`);
    const b = labelValue(`${'a'.repeat(70)}-two`);
    expect(a).toHaveLength(63);
    expect(a).toMatch(/^[a-z0-9_-]+$/);
    expect(a).not.toBe(b);
    expect(labelValue(`${'a'.repeat(70)}-one`)).toBe(a);
  });
});
