/**
 * The indexed policy evaluator: rules compiled once into matchers and placed
 * in lookup tables keyed by what a subject is (namespace, service-account
 * name, namespace labels), so a decision looks at the few rules that could
 * possibly match instead of scanning them all.
 *
 * Correctness of the index rests on one invariant: a rule is filed under a key
 * only if EVERY subject it can match produces that key (an exact namespace, an
 * exact service-account name, a `key=value` label, a label key). The
 * candidates found are then fully checked by {@link ruleMatches}, so the index
 * only ever saves work, never changes a decision. Rules that cannot be filed
 * that way go to a scan list checked on every call.
 *
 * The semantics themselves are documented on {@link compilePolicy}.
 *
 * @module
 */
import type { PolicyRule } from '../config/schema.js';
import type { Decision, PolicyAction, PolicySubject } from './decision.js';
import { compileSelector, type SelectorIndexKey, type SelectorMatcher } from './label-selector.js';
import {
  compileGlob,
  compileNameGlob,
  compileResourcePattern,
  compileServiceAccountPattern,
  isGlob,
  type ServiceAccountMatcher,
  type StringMatcher,
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
  readonly namespaces: readonly StringMatcher[] | undefined;
  /** Exact namespace names, when every `namespaces` entry is exact. */
  readonly exactNamespaces: readonly string[] | undefined;
  readonly selector: SelectorMatcher | undefined;
  readonly anyPermission: boolean;
  readonly groups: ReadonlySet<string>;
  readonly permissions: ReadonlySet<string>;
  readonly permissionPatterns: readonly StringMatcher[];
  /** Undefined: any resource. */
  readonly resources: readonly StringMatcher[] | undefined;
  /** Undefined: any project (including none). */
  readonly projects: ReadonlySet<string> | undefined;
  /** Undefined: any location (including none). */
  readonly locations: ReadonlySet<string> | undefined;
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
  const { serviceAccounts, namespaces, namespaceSelector } = rule.subjects;
  const groups = new Set<string>();
  const permissions = new Set<string>();
  const permissionPatterns: StringMatcher[] = [];
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
    hasSubject: serviceAccounts !== undefined || namespaces !== undefined || namespaceSelector !== undefined,
    serviceAccounts: serviceAccounts?.map(compileServiceAccountPattern),
    namespaces: namespaces?.map(compileNameGlob),
    exactNamespaces: namespaces !== undefined && !namespaces.some(isGlob) ? namespaces : undefined,
    selector: namespaceSelector === undefined ? undefined : compileSelector(namespaceSelector),
    anyPermission,
    groups,
    permissions,
    permissionPatterns,
    resources: rule.resources?.map(compileResourcePattern),
    projects: rule.projects === undefined ? undefined : new Set(rule.projects),
    locations: rule.locations === undefined ? undefined : new Set(rule.locations),
  };
}

/**
 * The full check of one rule, cheapest and most discriminating tests first.
 * The selector goes last: it is the dearest test, and a rule found through a
 * label bucket usually passes it anyway.
 */
export function ruleMatches(rule: CompiledRule, subject: PolicySubject, action: PolicyAction): boolean {
  if (!rule.hasSubject) return false;
  if (!permissionMatches(rule, action)) return false;
  if (rule.projects !== undefined && (action.project === null || !rule.projects.has(action.project))) return false;
  if (rule.locations !== undefined && (action.location === null || !rule.locations.has(action.location))) return false;
  if (rule.serviceAccounts !== undefined && !serviceAccountMatches(rule.serviceAccounts, subject)) return false;
  if (rule.namespaces !== undefined && !anyMatches(rule.namespaces, subject.namespace)) return false;
  if (rule.resources !== undefined && !anyMatches(rule.resources, action.resource)) return false;
  if (rule.selector !== undefined && !rule.selector.matches(subject.labels)) return false;
  return true;
}

function permissionMatches(rule: CompiledRule, action: PolicyAction): boolean {
  if (rule.anyPermission || rule.permissions.has(action.permission)) return true;
  if (rule.groups.size > 0) {
    for (const group of action.groups) if (rule.groups.has(group)) return true;
  }
  return anyMatches(rule.permissionPatterns, action.permission);
}

function serviceAccountMatches(matchers: readonly ServiceAccountMatcher[], subject: PolicySubject): boolean {
  for (const matcher of matchers) {
    if (matcher.namespace(subject.namespace) && matcher.name(subject.serviceAccount)) return true;
  }
  return false;
}

function anyMatches(matchers: readonly StringMatcher[], value: string): boolean {
  for (const matcher of matchers) if (matcher(value)) return true;
  return false;
}

/** Candidate rules under one index key, each list in config order. */
interface Bucket {
  readonly deny: CompiledRule[];
  readonly allow: CompiledRule[];
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
const bucketSize = (bucket: Bucket | undefined): number => (bucket === undefined ? 0 : bucket.deny.length + bucket.allow.length);

/** Rules are filed in config order, so appending keeps every list sorted; a repeat of the last entry is skipped. */
function file(bucket: Bucket, rule: CompiledRule): void {
  const list = rule.deny ? bucket.deny : bucket.allow;
  if (list[list.length - 1] !== rule) list.push(rule);
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
  evaluate(subject: PolicySubject, action: PolicyAction): Decision;
  readonly stats: IndexStats;
}

/** Builds the index over `rules` (in config order) and returns the evaluator. */
export function createIndexedEvaluator(rules: readonly CompiledRule[]): IndexedEvaluator {
  const byNamespace = new Map<string, NamespaceEntry>();
  const byServiceAccountName = new Map<string, Bucket>();
  const byLabel = new Map<string, LabelEntry>();
  const scan = newBucket();
  let unreachable = 0;

  const namespaceEntry = (namespace: string): NamespaceEntry => {
    let entry = byNamespace.get(namespace);
    if (entry === undefined) byNamespace.set(namespace, (entry = { all: undefined, byName: new Map() }));
    return entry;
  };
  const namespaceBucket = (namespace: string): Bucket => {
    const entry = namespaceEntry(namespace);
    return (entry.all ??= newBucket());
  };
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
      if (uses === undefined) pairUses.set(indexKey.key, (uses = new Map()));
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

  const scanAlways = bucketSize(scan) > 0;
  const hasLabelIndex = byLabel.size > 0;
  // Reused between calls (evaluate is synchronous and never re-entered), so a call allocates nothing.
  const candidates: Bucket[] = [];

  const firstMatch = (count: number, deny: boolean, subject: PolicySubject, action: PolicyAction): CompiledRule | undefined => {
    let best: CompiledRule | undefined;
    for (let i = 0; i < count; i++) {
      const bucket = candidates[i] as Bucket;
      const list = deny ? bucket.deny : bucket.allow;
      for (const rule of list) {
        // Lists are in config order: nothing further down can beat the best so far.
        if (best !== undefined && rule.index >= best.index) break;
        if (ruleMatches(rule, subject, action)) {
          best = rule;
          break;
        }
      }
    }
    return best;
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

      const deny = firstMatch(count, true, subject, action);
      if (deny !== undefined) return deny.decision;
      const allow = firstMatch(count, false, subject, action);
      return allow === undefined ? NO_MATCHING_RULE : allow.decision;
    },
  };
}
