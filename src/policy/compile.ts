/**
 * Turns the config's `policy.rules` into a {@link CompiledPolicy}: every
 * semantic problem found at once, a checksum naming the policy in audit
 * records, and an indexed evaluator whose cost does not grow with the number
 * of rules.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { compileCallers } from '../callbacks/callers.js';
import type { PolicyRule } from '../config/schema.js';
import { OPERATION_GROUPS } from '../vertex/operation-types.js';
import type { Decision, PolicyAction, PolicySubject } from './decision.js';
import { compileRule, createIndexedEvaluator, permissionEntryKind, type CompiledRule } from './evaluator.js';
import { jobConditionsProblems } from './job-conditions.js';
import { checkSelector } from './label-selector.js';
import { compileGlob, isGlob, matchText, resourcePatternProblem, serviceAccountPatternProblem } from './patterns.js';

/** One semantic problem, with its path in the config file (`policy.rules[3].permissions[1]`). */
export interface PolicyProblem {
  readonly path: string;
  readonly message: string;
}

/** What the rules are checked against. */
export interface PolicyContext {
  /**
   * Every IAM permission of an operation the proxy forwards. Checks entries
   * against it, and precomputes for each of them which rules grant it: a
   * request for a permission outside this set is still decided exactly, but
   * by asking each candidate rule, which is slower.
   */
  readonly knownPermissions: ReadonlySet<string>;
  /** `vertex.projects`. */
  readonly projects: readonly string[];
  /** `vertex.locations`. */
  readonly locations: readonly string[];
}

/**
 * A policy ready to answer. Its semantics, exactly:
 *
 * The rules form a set. A rule matches a (subject, action) pair when ALL of:
 * - **subjects**: every matcher present matches (a rule with none matches
 *   nobody; the loader refuses it anyway):
 *   - `serviceAccounts`: any `NAMESPACE/NAME` pattern matches, the namespace
 *     part against the subject's namespace and the name part against its
 *     service account; `*` matches any run of characters within its part (it
 *     never crosses the `/`);
 *   - `namespaces`: any pattern matches the namespace (`*` as above);
 *   - `namespaceSelector`: Kubernetes label-selector semantics on the
 *     namespace's labels: every `matchLabels` pair AND every
 *     `matchExpressions` requirement (`In`: key present with a value in the
 *     set; `NotIn`: key absent or value not in the set; `Exists`;
 *     `DoesNotExist`); `{}` matches every known namespace. When the
 *     namespace is unknown to the label source (`labels` undefined) a
 *     selector never matches: not `{}`, not `NotIn`, not `DoesNotExist`.
 *   - `googleEmails`: the subject is a Google account (`googleEmail` set)
 *     and any entry matches its email, case-insensitively: an exact email,
 *     or a pattern whose `*` stands for any run of characters before the
 *     `@`. Such a rule matches no Kubernetes subject, and no rule without
 *     `googleEmails` matches a Google subject.
 * - **permissions**: any entry matches: a group name (no dot, no `*`) that is
 *   in `action.groups`, an exact permission equal to `action.permission`, or
 *   a pattern over `action.permission` where `*` matches any run of
 *   characters including dots (a lone `*` matches every permission);
 * - **resources** (default: any): any pattern matches `action.resource`, `*`
 *   matching any run of characters within one `/` segment and `**` (a whole
 *   segment) zero or more whole segments;
 * - **projects** (default: any): contains `action.project`; a request without
 *   a project (`null`) never matches an explicit list;
 * - **locations** (default: any): likewise for `action.location`.
 *
 * The decision: if any deny rule matches, deny, naming the first matching
 * deny rule in config order; else if any allow rule matches, allow, naming the
 * first matching allow rule in config order; else the default deny
 * (`ruleId: null`). Order never changes WHETHER a request is allowed, only
 * which rule is named.
 */
export interface CompiledPolicy {
  /** SHA-256 (hex) of the rules' canonical JSON: the policy checksum written to audit records. */
  readonly version: string;
  readonly ruleCount: number;
  /** Pure and synchronous; reads precomputed tables and allocates nothing. The decision is frozen and shared between calls. */
  evaluate(subject: PolicySubject, action: PolicyAction): Decision;
  /** Every rule compiled, in config order (`rules[i].index === i`): dry-run rules and job conditions are read from here. */
  readonly rules: readonly CompiledRule[];
  /** Rules with `mode: dryRun`, in config order. */
  readonly dryRunRules: readonly CompiledRule[];
  /** Whether any enforced allow rule has job conditions. */
  readonly hasJobConditions: boolean;
}

/**
 * Compiles the rules. Never throws on bad rules: every problem is collected
 * and returned, and the returned policy is fit to serve only when `problems`
 * is empty. It still evaluates (so tools like `can-i` can show what a broken
 * policy would do): unknown groups and permissions simply never match, a
 * malformed service-account pattern or selector operator matches nothing,
 * and everything else is read literally.
 */
export function compilePolicy(rules: readonly PolicyRule[], context: PolicyContext): { policy: CompiledPolicy; problems: PolicyProblem[] } {
  const problems = checkRules(rules, context);
  const compiled = rules.map(compileRule);
  const evaluator = createIndexedEvaluator(compiled, context.knownPermissions);
  const policy: CompiledPolicy = Object.freeze({
    version: policyVersion(rules),
    ruleCount: rules.length,
    evaluate: evaluator.evaluate,
    rules: compiled,
    dryRunRules: compiled.filter((rule) => rule.dryRun),
    hasJobConditions: compiled.some((rule) => !rule.dryRun && rule.jobConditions !== undefined),
  });
  return { policy, problems };
}

/** SHA-256 hex of {@link canonicalJson} of the rules. Key order and formatting in the file do not change it; rule order does. */
export function policyVersion(rules: readonly PolicyRule[]): string {
  return createHash('sha256').update(canonicalJson(rules)).digest('hex');
}

/** JSON with object keys sorted and `undefined` members left out, so equal rules always serialize alike. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item: unknown) => canonicalJson(item ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const members = Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
    return `{${members.join(',')}}`;
  }
  // JSON.stringify returns undefined for undefined and functions, which its declared type omits.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
  return JSON.stringify(value) ?? 'null';
}

const GROUPS: ReadonlySet<string> = new Set(OPERATION_GROUPS);

function checkRules(rules: readonly PolicyRule[], context: PolicyContext): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const report = (path: string, message: string): void => {
    problems.push({ path, message });
  };
  const projects = new Set(context.projects);
  const locations = new Set(context.locations);
  const firstIndexOfId = new Map<string, number>();
  const known = [...context.knownPermissions];

  rules.forEach((rule, i) => {
    const at = `policy.rules[${i}]`;
    const first = firstIndexOfId.get(rule.id);
    if (first === undefined) firstIndexOfId.set(rule.id, i);
    else report(`${at}.id`, `duplicate rule id "${rule.id}" (first used by policy.rules[${first}])`);

    const { serviceAccounts, namespaces, namespaceSelector, googleEmails } = rule.subjects;
    if (serviceAccounts === undefined && namespaces === undefined && namespaceSelector === undefined && googleEmails === undefined) {
      report(
        `${at}.subjects`,
        'names no subject: give serviceAccounts, namespaces or namespaceSelector (a rule for everyone must say so, e.g. ' +
          'serviceAccounts: ["*/*"])',
      );
    }
    if (googleEmails !== undefined) {
      if (serviceAccounts !== undefined || namespaces !== undefined || namespaceSelector !== undefined) {
        report(
          `${at}.subjects.googleEmails`,
          'cannot be combined with serviceAccounts, namespaces or namespaceSelector: a subject is a Google account or a ' +
            'Kubernetes service account, never both (write two rules)',
        );
      }
      checkNonEmpty(googleEmails, `${at}.subjects.googleEmails`, report);
      for (const problem of compileCallers(googleEmails).problems) {
        if (googleEmails[problem.index]?.includes('@') !== true)
          report(`${at}.subjects.googleEmails[${problem.index}]`, 'must be an email or an email pattern');
        else report(`${at}.subjects.googleEmails[${problem.index}]`, problem.message);
      }
    }
    checkNonEmpty(serviceAccounts, `${at}.subjects.serviceAccounts`, report);
    serviceAccounts?.forEach((pattern, j) => {
      const problem = serviceAccountPatternProblem(pattern);
      if (problem !== undefined) report(`${at}.subjects.serviceAccounts[${j}]`, problem);
    });
    checkNonEmpty(namespaces, `${at}.subjects.namespaces`, report);
    if (namespaceSelector !== undefined) checkSelector(namespaceSelector, `${at}.subjects.namespaceSelector`, report);

    checkNonEmpty(rule.permissions, `${at}.permissions`, report);
    rule.permissions.forEach((entry, j) => {
      const problem = permissionProblem(entry, context.knownPermissions, known);
      if (problem !== undefined) report(`${at}.permissions[${j}]`, problem);
    });

    checkNonEmpty(rule.resources, `${at}.resources`, report);
    rule.resources?.forEach((pattern, j) => {
      const problem = resourcePatternProblem(pattern) ?? resourceScopeProblem(pattern, projects, locations);
      if (problem !== undefined) report(`${at}.resources[${j}]`, problem);
    });

    checkNonEmpty(rule.projects, `${at}.projects`, report);
    rule.projects?.forEach((project, j) => {
      if (!projects.has(project)) report(`${at}.projects[${j}]`, notServed('project', project, 'vertex.projects', context.projects));
    });
    checkNonEmpty(rule.locations, `${at}.locations`, report);
    rule.locations?.forEach((location, j) => {
      if (!locations.has(location)) report(`${at}.locations[${j}]`, notServed('location', location, 'vertex.locations', context.locations));
    });

    const jobs = rule.conditions?.jobs;
    if (jobs !== undefined) {
      // A deny "unless the job is fine" would read two ways; guard rails are allow rules with conditions.
      if (rule.effect === 'deny')
        report(`${at}.conditions`, 'conditions apply to allow rules only (an allow rule whose conditions fail does not match)');
      for (const p of jobConditionsProblems(jobs, `${at}.conditions.jobs`)) report(p.path, p.message);
    }
  });
  return problems;
}

/** An empty list makes a rule silently dead ("any of none"); the schema refuses it too, but compilePolicy may see unvalidated rules. */
function checkNonEmpty(list: readonly unknown[] | undefined, path: string, report: (path: string, message: string) => void): void {
  if (list !== undefined && list.length === 0) report(path, 'must not be empty (leave it out to mean "any")');
}

function permissionProblem(entry: string, knownPermissions: ReadonlySet<string>, known: readonly string[]): string | undefined {
  switch (permissionEntryKind(entry)) {
    case 'group':
      if (GROUPS.has(entry)) return undefined;
      return `unknown group "${entry}" (groups: ${OPERATION_GROUPS.join(', ')})${didYouMean(entry, OPERATION_GROUPS)}`;
    case 'permission':
      if (knownPermissions.has(entry)) return undefined;
      return `unknown permission "${entry}": no operation the proxy forwards needs it${didYouMean(entry, known)}`;
    case 'pattern': {
      const pattern = compileGlob(entry);
      if (known.some((permission) => matchText(pattern, permission))) return undefined;
      return `pattern "${entry}" matches no permission of an operation the proxy forwards`;
    }
  }
}

/**
 * A resource pattern that spells out a project or location the proxy does not
 * serve can never match a request that reaches the policy.
 */
function resourceScopeProblem(pattern: string, projects: ReadonlySet<string>, locations: ReadonlySet<string>): string | undefined {
  const segments = pattern.split('/');
  if (segments[0] !== 'projects') return undefined;
  const project = segments[1];
  if (project !== undefined && !isGlob(project) && !projects.has(project)) {
    return `project "${project}" is not in vertex.projects: this pattern can never match`;
  }
  const location = segments[3];
  if (segments[2] === 'locations' && location !== undefined && !isGlob(location) && !locations.has(location)) {
    return `location "${location}" is not in vertex.locations: this pattern can never match`;
  }
  return undefined;
}

function notServed(what: string, value: string, field: string, served: readonly string[]): string {
  return `${what} "${value}" is not in ${field} (${served.join(', ')}): the proxy never serves it${didYouMean(value, served)}`;
}

/** A suggestion when some candidate is within a few edits; cheap because it only runs on an error path. */
function didYouMean(input: string, candidates: readonly string[]): string {
  const limit = Math.max(2, Math.floor(input.length / 4));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    if (Math.abs(candidate.length - input.length) >= bestDistance) continue;
    const distance = editDistance(input, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best === undefined ? '' : `; did you mean "${best}"?`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
