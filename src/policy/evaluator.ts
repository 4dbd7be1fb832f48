/**
 * The indexed policy evaluator: rules compiled once into matchers and placed
 * in lookup tables keyed by what a subject is (namespace, service-account
 * name, namespace labels), so a decision looks at the few rules that could
 * possibly match instead of scanning them all.
 *
 * Correctness of the index rests on one invariant: a rule is filed under a key
 * only if EVERY subject it can match produces that key (an exact namespace, an
 * exact service-account name, a `key=value` label, a label key). The
 * candidates found are then fully checked, so the index only ever saves work,
 * never changes a decision. Rules that cannot be filed that way go to a scan
 * list checked on every call.
 *
 * With thousands of rules the cost of a decision is memory reads, not
 * comparisons, so the layout avoids touching rules that cannot match:
 * candidate lists hold rule numbers, and whether a rule grants the requested
 * permission is one bit in a per-permission (and per-group) bitset computed at
 * compile time from the known permissions. Only rules passing that test are
 * read.
 *
 * The semantics themselves are documented on `CompiledPolicy` (compile.ts).
 *
 * @module
 */
import type { PolicyRule } from '../config/schema.js';
import { compileCallers, type CallerMatcher } from '../callbacks/callers.js';
import type { Decision, PolicyAction, PolicySubject } from './decision.js';
import { compileJobConditions, type CompiledJobConditions } from './job-conditions.js';
import { compileSelector, type SelectorIndexKey, type SelectorMatcher } from './label-selector.js';
import {
  compileGlob,
  compileNameGlob,
  compileResourcePattern,
  compileServiceAccountPattern,
  isGlob,
  MATCH_NOTHING,
  matchAnyText,
  matchText,
  type ServiceAccountMatcher,
  type TextMatcher,
} from './patterns.js';

/** A rule ready for the hot path. */
export interface CompiledRule {
  /** Position in the config: the lower one is reported when several rules match. */
  readonly index: number;
  readonly id: string;
  readonly deny: boolean;
  /** The frozen decision this rule answers with, built once so a decision allocates nothing. */
  readonly decision: Decision;
  /** False for a rule without any subject matcher: it matches nobody (and the loader refuses it). */
  readonly hasSubject: boolean;
  readonly serviceAccounts: readonly ServiceAccountMatcher[] | undefined;
  readonly namespaces: readonly TextMatcher[] | undefined;
  /** Exact namespace names, when every `namespaces` entry is exact. */
  readonly exactNamespaces: readonly string[] | undefined;
  readonly selector: SelectorMatcher | undefined;
  readonly anyPermission: boolean;
  readonly groups: ReadonlySet<string>;
  readonly permissions: ReadonlySet<string>;
  readonly permissionPatterns: readonly TextMatcher[];
  /** The first resource pattern; undefined: any resource. Kept apart from the rest: most rules have one. */
  readonly resource: TextMatcher | undefined;
  /** The other resource patterns. */
  readonly moreResources: readonly TextMatcher[];
  /** Undefined: any project (including none). */
  readonly projects: ReadonlySet<string> | undefined;
  /** Undefined: any location (including none). */
  readonly locations: ReadonlySet<string> | undefined;
  /** `subjects.googleEmails`: such a rule matches Google subjects only, and no other rule does. */
  readonly googleEmails: CallerMatcher | undefined;
  /** `mode: dryRun`: never filed in the index, so it never decides; checked on its own by {@link ruleMatches}. */
  readonly dryRun: boolean;
  /** `conditions.jobs`: for job-creating methods the rule matches only if the body satisfies them. */
  readonly jobConditions: CompiledJobConditions | undefined;
}

/** The default deny. */
export const NO_MATCHING_RULE: Decision = Object.freeze({ allowed: false, ruleId: null, reason: 'no-matching-rule' });

/** How a permission entry is read: a wildcard pattern, an exact permission (has a dot), or a group name. */
export type PermissionEntryKind = 'pattern' | 'permission' | 'group';

export function permissionEntryKind(entry: string): PermissionEntryKind {
  if (isGlob(entry)) return 'pattern';
  return entry.includes('.') ? 'permission' : 'group';
}

export function compileRule(rule: PolicyRule, index: number): CompiledRule {
  const deny = rule.effect === 'deny';
  const { serviceAccounts, namespaces, namespaceSelector, googleEmails } = rule.subjects;
  const groups = new Set<string>();
  const permissions = new Set<string>();
  const permissionPatterns: TextMatcher[] = [];
  const resources = (rule.resources ?? []).map(compileResourcePattern);
  let anyPermission = false;
  for (const entry of rule.permissions) {
    const kind = permissionEntryKind(entry);
    if (kind === 'group') groups.add(entry);
    else if (kind === 'permission') permissions.add(entry);
    else if (/^\*+$/.test(entry)) anyPermission = true;
    else permissionPatterns.push(compileGlob(entry));
  }
  return {
    index,
    id: rule.id,
    deny,
    decision: Object.freeze(
      deny
        ? { allowed: false, ruleId: rule.id, reason: 'denied-by-rule' as const }
        : { allowed: true, ruleId: rule.id, reason: 'allowed-by-rule' as const },
    ),
    hasSubject: serviceAccounts !== undefined || namespaces !== undefined || namespaceSelector !== undefined || googleEmails !== undefined,
    serviceAccounts: serviceAccounts?.map(compileServiceAccountPattern),
    namespaces: namespaces?.map(compileNameGlob),
    exactNamespaces: namespaces !== undefined && !namespaces.some(isGlob) ? namespaces : undefined,
    selector: namespaceSelector === undefined ? undefined : compileSelector(namespaceSelector),
    anyPermission,
    groups,
    permissions,
    permissionPatterns,
    resource: rule.resources === undefined ? undefined : (resources[0] ?? MATCH_NOTHING),
    moreResources: resources.slice(1),
    projects: rule.projects === undefined ? undefined : new Set(rule.projects),
    locations: rule.locations === undefined ? undefined : new Set(rule.locations),
    // Malformed entries match nobody (compileCallers skips them); compile.ts reports them.
    googleEmails: googleEmails === undefined ? undefined : compileCallers(googleEmails).matcher,
    dryRun: rule.mode === 'dryRun',
    jobConditions: rule.conditions?.jobs === undefined ? undefined : compileJobConditions(rule.conditions.jobs),
  };
}

/**
 * Whether the rule's subjects and scope match, ignoring its effect, its mode
 * and its body conditions: for dry-run rules, conditional allows, and limit
 * rules (which reuse the policy's matchers).
 */
export function ruleMatches(rule: CompiledRule, subject: PolicySubject, action: PolicyAction): boolean {
  return rule.hasSubject && permissionMatches(rule, action) && scopeAndSubjectMatch(rule, subject, action);
}

function permissionMatches(rule: CompiledRule, action: PolicyAction): boolean {
  if (rule.anyPermission || rule.permissions.has(action.permission)) return true;
  if (rule.groups.size > 0) {
    for (const group of action.groups) if (rule.groups.has(group)) return true;
  }
  return matchAnyText(rule.permissionPatterns, action.permission);
}

/**
 * Everything but the permission, cheapest and most discriminating tests
 * first. The selector goes last: it is the dearest test, and a rule found
 * through a label bucket usually passes it anyway.
 */
function scopeAndSubjectMatch(rule: CompiledRule, subject: PolicySubject, action: PolicyAction): boolean {
  if (rule.googleEmails !== undefined || subject.googleEmail !== undefined) {
    // A Google account and a Kubernetes service account never match each other's rules.
    if (rule.googleEmails === undefined || subject.googleEmail === undefined) return false;
    if (rule.googleEmails.match({ email: subject.googleEmail, subject: '' }) === undefined) return false;
    if (rule.serviceAccounts !== undefined || rule.namespaces !== undefined || rule.selector !== undefined) return false;
  }
  if (rule.projects !== undefined && (action.project === null || !rule.projects.has(action.project))) return false;
  if (rule.locations !== undefined && (action.location === null || !rule.locations.has(action.location))) return false;
  if (rule.serviceAccounts !== undefined && !serviceAccountMatches(rule.serviceAccounts, subject)) return false;
  if (rule.namespaces !== undefined && !matchAnyText(rule.namespaces, subject.namespace)) return false;
  if (rule.resource !== undefined && !matchText(rule.resource, action.resource) && !matchAnyText(rule.moreResources, action.resource)) {
    return false;
  }
  if (rule.selector !== undefined && !rule.selector.matches(subject.labels)) return false;
  return true;
}

function serviceAccountMatches(matchers: readonly ServiceAccountMatcher[], subject: PolicySubject): boolean {
  for (const m of matchers) {
    if (matchText(m.namespace, subject.namespace) && matchText(m.name, subject.serviceAccount)) return true;
  }
  return false;
}

/** Candidate rule numbers under one index key, per effect, each list ascending (config order). */
interface Bucket {
  readonly deny: number[];
  readonly allow: number[];
}

interface NamespaceEntry {
  /** Rules for every service account of the namespace. */
  all: Bucket | undefined;
  /** Rules for one service account, by name. */
  readonly byName: Map<string, Bucket>;
}

interface LabelEntry {
  /** Rules needing only that the key exists. */
  any: Bucket | undefined;
  readonly byValue: Map<string, Bucket>;
}

const newBucket = (): Bucket => ({ deny: [], allow: [] });
const bucketSize = (bucket: Bucket): number => bucket.deny.length + bucket.allow.length;

/** Rules are filed in config order, so appending keeps every list sorted; a repeat of the last entry is skipped. */
function file(bucket: Bucket, rule: CompiledRule): void {
  const list = rule.deny ? bucket.deny : bucket.allow;
  if (list[list.length - 1] !== rule.index) list.push(rule.index);
}

/** Shape of the index, for tests and diagnostics. */
export interface IndexStats {
  readonly namespaces: number;
  readonly serviceAccountNames: number;
  readonly labelKeys: number;
  /** Rules checked on every call. */
  readonly scanned: number;
  /** Rules that match nobody (no subject matcher) and are filed nowhere. */
  readonly unreachable: number;
}

export interface IndexedEvaluator {
  evaluate(this: void, subject: PolicySubject, action: PolicyAction): Decision;
  readonly stats: IndexStats;
}

/**
 * Builds the index over `rules` (in config order: `rules[i].index === i`).
 * `knownPermissions` only decides which permissions get a precomputed
 * bitset; a request for any other permission is still decided exactly, by
 * the rules' own matchers.
 */
export function createIndexedEvaluator(rules: readonly CompiledRule[], knownPermissions: ReadonlySet<string>): IndexedEvaluator {
  const byNamespace = new Map<string, NamespaceEntry>();
  const byServiceAccountName = new Map<string, Bucket>();
  const byLabel = new Map<string, LabelEntry>();
  const scan = newBucket();
  // Rules for Google subjects: few (auditors), checked only for Google subjects.
  const google = newBucket();
  let unreachable = 0;

  const namespaceEntry = (namespace: string): NamespaceEntry => {
    let entry = byNamespace.get(namespace);
    if (entry === undefined) byNamespace.set(namespace, (entry = { all: undefined, byName: new Map() }));
    return entry;
  };
  const namespaceBucket = (namespace: string): Bucket => (namespaceEntry(namespace).all ??= newBucket());
  const serviceAccountBucket = (namespace: string, name: string): Bucket => {
    const { byName } = namespaceEntry(namespace);
    let bucket = byName.get(name);
    if (bucket === undefined) byName.set(name, (bucket = newBucket()));
    return bucket;
  };
  const nameBucket = (name: string): Bucket => {
    let bucket = byServiceAccountName.get(name);
    if (bucket === undefined) byServiceAccountName.set(name, (bucket = newBucket()));
    return bucket;
  };
  const labelEntry = (key: string): LabelEntry => {
    let entry = byLabel.get(key);
    if (entry === undefined) byLabel.set(key, (entry = { any: undefined, byValue: new Map() }));
    return entry;
  };
  const labelBucket = (key: string, value: string): Bucket => {
    const { byValue } = labelEntry(key);
    let bucket = byValue.get(value);
    if (bucket === undefined) byValue.set(value, (bucket = newBucket()));
    return bucket;
  };

  // Which label to file a selector rule under is a guess at selectivity: the labels namespaces actually
  // carry are only known at run time. A key the policy compares with many distinct values (`team`,
  // `kubernetes.io/metadata.name`) splits namespaces finely, one with few (`env`) does not; so the
  // estimated share of namespaces carrying `key=value` is 1 / (distinct values of key in the policy).
  const valuesOfKey = new Map<string, Set<string>>();
  const pairUses = new Map<string, Map<string, number>>();
  for (const rule of rules) {
    for (const indexKey of rule.selector?.indexKeys ?? []) {
      if (indexKey.kind === 'exists') continue;
      const values = indexKey.kind === 'pair' ? [indexKey.value] : indexKey.values;
      let seen = valuesOfKey.get(indexKey.key);
      if (seen === undefined) valuesOfKey.set(indexKey.key, (seen = new Set()));
      let uses = pairUses.get(indexKey.key);
      if (uses === undefined) pairUses.set(indexKey.key, (uses = new Map<string, number>()));
      for (const value of values) {
        seen.add(value);
        uses.set(value, (uses.get(value) ?? 0) + 1);
      }
    }
  }
  /** [estimated share of namespaces reaching the bucket(s), rules sharing them]: compared in that order. */
  const labelKeyCost = (indexKey: SelectorIndexKey): readonly [number, number] => {
    if (indexKey.kind === 'exists') return [1, Number.MAX_SAFE_INTEGER];
    const values = indexKey.kind === 'pair' ? [indexKey.value] : indexKey.values;
    const distinct = valuesOfKey.get(indexKey.key)?.size ?? 1;
    let uses = 0;
    for (const value of values) uses += pairUses.get(indexKey.key)?.get(value) ?? 0;
    return [Math.min(1, values.length / distinct), uses];
  };
  const cheaper = (a: readonly [number, number], b: readonly [number, number]): boolean => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

  for (const rule of rules) {
    if (!rule.hasSubject) {
      unreachable++;
      continue;
    }
    if (rule.dryRun) continue;
    if (rule.googleEmails !== undefined) {
      file(google, rule);
      continue;
    }
    const accounts = rule.serviceAccounts;
    // Preference, narrowest first: namespaces named by the service-account patterns, namespaces named
    // exactly, one label pair (the most selective), service-account names, else the scan list.
    if (accounts !== undefined && accounts.every((a) => a.exactNamespace !== undefined)) {
      const wholeNamespaces = new Set(accounts.filter((a) => a.exactName === undefined).map((a) => a.exactNamespace));
      for (const account of accounts) {
        const namespace = account.exactNamespace as string;
        if (wholeNamespaces.has(namespace)) file(namespaceBucket(namespace), rule);
        else file(serviceAccountBucket(namespace, account.exactName as string), rule);
      }
    } else if (rule.exactNamespaces !== undefined) {
      for (const namespace of rule.exactNamespaces) file(namespaceBucket(namespace), rule);
    } else if (rule.selector !== undefined && rule.selector.indexKeys.length > 0) {
      let best = rule.selector.indexKeys[0] as SelectorIndexKey;
      let bestCost = labelKeyCost(best);
      for (const indexKey of rule.selector.indexKeys) {
        const cost = labelKeyCost(indexKey);
        if (cheaper(cost, bestCost)) [best, bestCost] = [indexKey, cost];
      }
      if (best.kind === 'pair') file(labelBucket(best.key, best.value), rule);
      // `In` with no values files the rule nowhere, which is right: it matches nobody.
      else if (best.kind === 'in') for (const value of best.values) file(labelBucket(best.key, value), rule);
      else file((labelEntry(best.key).any ??= newBucket()), rule);
    } else if (accounts !== undefined && accounts.every((a) => a.exactNamespace !== undefined || a.exactName !== undefined)) {
      for (const account of accounts) {
        if (account.exactNamespace !== undefined) file(namespaceBucket(account.exactNamespace), rule);
        else file(nameBucket(account.exactName as string), rule);
      }
    } else {
      file(scan, rule);
    }
  }

  // Bit i of a row: rule i grants that permission (exactly, by pattern or by `*`) or that group.
  const words = (rules.length + 31) >>> 5;
  const grantsPermission = new Map<string, Uint32Array>();
  const grantsGroup = new Map<string, Uint32Array>();
  const known = [...knownPermissions];
  for (const permission of known) grantsPermission.set(permission, new Uint32Array(words));
  const setBit = (row: Uint32Array, index: number): void => {
    row[index >>> 5] = (row[index >>> 5] ?? 0) | (1 << (index & 31));
  };
  for (const rule of rules) {
    if (rule.anyPermission) {
      for (const row of grantsPermission.values()) setBit(row, rule.index);
    } else {
      for (const permission of rule.permissions) {
        const row = grantsPermission.get(permission);
        if (row !== undefined) setBit(row, rule.index);
      }
      for (const pattern of rule.permissionPatterns) {
        for (const permission of known)
          if (matchText(pattern, permission)) setBit(grantsPermission.get(permission) as Uint32Array, rule.index);
      }
    }
    for (const group of rule.groups) {
      let row = grantsGroup.get(group);
      if (row === undefined) grantsGroup.set(group, (row = new Uint32Array(words)));
      setBit(row, rule.index);
    }
  }

  const scanAlways = bucketSize(scan) > 0;
  const hasLabelIndex = byLabel.size > 0;
  // Per-call state, reused between calls (evaluate is synchronous and never re-entered): no allocation.
  const candidates: Bucket[] = [];
  const groupRows: Uint32Array[] = [];
  let groupRowCount = 0;
  let permissionRow: Uint32Array | undefined;

  const grants = (index: number, action: PolicyAction): boolean => {
    // A permission outside the known set has no row: ask the rule itself.
    if (permissionRow === undefined) return permissionMatches(rules[index] as CompiledRule, action);
    const word = index >>> 5;
    const bit = 1 << (index & 31);
    if (((permissionRow[word] as number) & bit) !== 0) return true;
    for (let i = 0; i < groupRowCount; i++) if ((((groupRows[i] as Uint32Array)[word] as number) & bit) !== 0) return true;
    return false;
  };

  /** The lowest-numbered rule of one effect that matches, among the candidate buckets; -1 for none. */
  const firstMatch = (count: number, deny: boolean, subject: PolicySubject, action: PolicyAction): number => {
    let best = rules.length;
    for (let i = 0; i < count; i++) {
      const bucket = candidates[i] as Bucket;
      const list = deny ? bucket.deny : bucket.allow;
      for (const index of list) {
        // Lists are in config order: nothing further down can beat the best so far.
        if (index >= best) break;
        if (grants(index, action) && scopeAndSubjectMatch(rules[index] as CompiledRule, subject, action)) {
          best = index;
          break;
        }
      }
    }
    return best === rules.length ? -1 : best;
  };

  return {
    stats: {
      namespaces: byNamespace.size,
      serviceAccountNames: byServiceAccountName.size,
      labelKeys: byLabel.size,
      scanned: bucketSize(scan),
      unreachable,
    },
    evaluate(subject, action) {
      let count = 0;
      if (subject.googleEmail !== undefined) {
        if (bucketSize(google) === 0) return NO_MATCHING_RULE;
        candidates[count++] = google;
        return decide(count, subject, action);
      }
      const namespace = byNamespace.get(subject.namespace);
      if (namespace !== undefined) {
        if (namespace.all !== undefined) candidates[count++] = namespace.all;
        const account = namespace.byName.get(subject.serviceAccount);
        if (account !== undefined) candidates[count++] = account;
      }
      const named = byServiceAccountName.get(subject.serviceAccount);
      if (named !== undefined) candidates[count++] = named;
      const labels = subject.labels;
      if (labels !== undefined && hasLabelIndex) {
        for (const key in labels) {
          if (!Object.hasOwn(labels, key)) continue;
          const entry = byLabel.get(key);
          if (entry === undefined) continue;
          if (entry.any !== undefined) candidates[count++] = entry.any;
          const value = labels[key];
          const bucket = value === undefined ? undefined : entry.byValue.get(value);
          if (bucket !== undefined) candidates[count++] = bucket;
        }
      }
      if (scanAlways) candidates[count++] = scan;
      if (count === 0) return NO_MATCHING_RULE;
      return decide(count, subject, action);
    },
  };

  /** Deny wins over allow, each the lowest-numbered matching rule among the candidates. */
  function decide(count: number, subject: PolicySubject, action: PolicyAction): Decision {
    permissionRow = grantsPermission.get(action.permission);
    groupRowCount = 0;
    for (const group of action.groups) {
      const row = grantsGroup.get(group);
      if (row !== undefined) groupRows[groupRowCount++] = row;
    }

    const deny = firstMatch(count, true, subject, action);
    if (deny >= 0) return (rules[deny] as CompiledRule).decision;
    const allow = firstMatch(count, false, subject, action);
    return allow >= 0 ? (rules[allow] as CompiledRule).decision : NO_MATCHING_RULE;
  }
}
