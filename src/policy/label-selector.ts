/**
 * Kubernetes label selectors over a namespace's labels: validation with
 * Kubernetes' own syntax rules, and a compiled matcher with Kubernetes'
 * semantics (`matchLabels` AND every `matchExpressions` requirement; `NotIn`
 * also matches when the key is absent), plus one deliberate difference: a
 * namespace whose labels are unknown (`undefined`) matches no selector at all,
 * not even `{}`, `NotIn` or `DoesNotExist`.
 *
 * @module
 */
import type { LabelSelector } from '../config/schema.js';

type Labels = Readonly<Record<string, string>>;

/** `Equals` is a `matchLabels` pair; `Invalid` an operator the schema would have refused (never matches). */
type Op = 'Equals' | 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Invalid';

interface Requirement {
  readonly key: string;
  readonly op: Op;
  /** For Equals. */
  readonly value: string;
  /** For In / NotIn. */
  readonly values: ReadonlySet<string>;
}

/**
 * One way to find a selector's candidates by label: every namespace the
 * selector matches has `key=value` (`pair`), `key` with one of `values` (`in`),
 * or at least `key` (`exists`).
 */
export type SelectorIndexKey =
  | { readonly kind: 'pair'; readonly key: string; readonly value: string }
  | { readonly kind: 'in'; readonly key: string; readonly values: readonly string[] }
  | { readonly kind: 'exists'; readonly key: string };

export interface SelectorMatcher {
  matches(labels: Labels | undefined): boolean;
  /** Necessary conditions usable as index keys; empty when the selector can match without any specific label. */
  readonly indexKeys: readonly SelectorIndexKey[];
}

const EMPTY_SET: ReadonlySet<string> = new Set();

function toOp(operator: string): Op {
  return operator === 'In' || operator === 'NotIn' || operator === 'Exists' || operator === 'DoesNotExist' ? operator : 'Invalid';
}

/** Compiles a selector; never throws (malformed requirements never match). */
export function compileSelector(selector: LabelSelector): SelectorMatcher {
  const requirements: Requirement[] = [];
  const indexKeys: SelectorIndexKey[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    requirements.push({ key, op: 'Equals', value, values: EMPTY_SET });
    indexKeys.push({ kind: 'pair', key, value });
  }
  for (const expression of selector.matchExpressions ?? []) {
    const op = toOp(expression.operator);
    const values = expression.values ?? [];
    requirements.push({ key: expression.key, op, value: '', values: new Set(values) });
    if (op === 'In') indexKeys.push({ kind: 'in', key: expression.key, values: [...new Set(values)] });
    else if (op === 'Exists') indexKeys.push({ kind: 'exists', key: expression.key });
  }
  return {
    indexKeys,
    matches(labels) {
      if (labels === undefined) return false;
      for (const requirement of requirements) {
        // Own properties only: a label source handing us a plain object must not make `toString` "exist".
        const present = Object.hasOwn(labels, requirement.key);
        const value = present ? labels[requirement.key] : undefined;
        switch (requirement.op) {
          case 'Equals':
            if (!present || value !== requirement.value) return false;
            break;
          case 'In':
            if (!present || value === undefined || !requirement.values.has(value)) return false;
            break;
          case 'NotIn':
            if (present && value !== undefined && requirement.values.has(value)) return false;
            break;
          case 'Exists':
            if (!present) return false;
            break;
          case 'DoesNotExist':
            if (present) return false;
            break;
          default:
            return false;
        }
      }
      return true;
    },
  };
}

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME_MAX = 63;
const PREFIX_MAX = 253;
const NAME_SYNTAX = 'up to 63 characters: alphanumerics, "-", "_" and ".", starting and ending with an alphanumeric';

/** Why `key` is not a Kubernetes label key (`[prefix/]name`), if it is not. */
export function labelKeyProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return `label key "${key}" has more than one "/"`;
  const name = parts.length === 2 ? (parts[1] ?? '') : key;
  if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    if (prefix === '') return `label key "${key}" has an empty prefix before "/"`;
    if (prefix.length > PREFIX_MAX || !DNS_SUBDOMAIN.test(prefix)) {
      return (
        `label key prefix "${prefix}" must be a DNS subdomain (lowercase alphanumerics, "-" and ".", at most ${PREFIX_MAX} ` + `characters)`
      );
    }
  }
  if (name === '') return `label key "${key}" has an empty name`;
  if (name.length > LABEL_NAME_MAX || !LABEL_NAME.test(name)) return `label key name "${name}" must be ${NAME_SYNTAX}`;
  return undefined;
}

/** Why `value` is not a Kubernetes label value (empty is valid), if it is not. */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > LABEL_NAME_MAX || !LABEL_NAME.test(value)) return `label value "${value}" must be empty or ${NAME_SYNTAX}`;
  return undefined;
}

/**
 * Every problem of a selector, reported through `report` with a path below
 * `path`. Mirrors the API server's validation of a `LabelSelector`.
 */
export function checkSelector(selector: LabelSelector, path: string, report: (path: string, message: string) => void): void {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    const at = `${path}.matchLabels.${key}`;
    const keyProblem = labelKeyProblem(key);
    if (keyProblem !== undefined) report(at, keyProblem);
    const valueProblem = labelValueProblem(value);
    if (valueProblem !== undefined) report(at, valueProblem);
  }
  (selector.matchExpressions ?? []).forEach((expression, i) => {
    const at = `${path}.matchExpressions[${i}]`;
    const keyProblem = labelKeyProblem(expression.key);
    if (keyProblem !== undefined) report(`${at}.key`, keyProblem);
    const op = toOp(expression.operator);
    const values = expression.values ?? [];
    if (op === 'Invalid') {
      report(`${at}.operator`, `unknown operator "${expression.operator}" (In, NotIn, Exists, DoesNotExist)`);
    } else if ((op === 'In' || op === 'NotIn') && values.length === 0) {
      report(`${at}.values`, `operator ${expression.operator} needs at least one value`);
    } else if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) {
      report(`${at}.values`, `operator ${expression.operator} takes no values`);
    }
    values.forEach((value, j) => {
      const valueProblem = labelValueProblem(value);
      if (valueProblem !== undefined) report(`${at}.values[${j}]`, valueProblem);
    });
  });
}
