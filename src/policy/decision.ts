/**
 * The policy's vocabulary: what it is asked, and what it answers.
 *
 * @module
 */
import type { Operation } from '../vertex/operation-types.js';

/** The subject side of a policy question. */
export interface PolicySubject {
  readonly namespace: string;
  readonly serviceAccount: string;
  /**
   * The namespace's labels, or `undefined` when the namespace is unknown to the
   * label source: an unknown namespace gets no label-based grant (and matches
   * no label-based deny either: deny rules meant as guard rails should be
   * written on service accounts or namespaces by name).
   */
  readonly labels: Readonly<Record<string, string>> | undefined;
  /**
   * Set when the label source's view is older than its staleness bound (or
   * never synced): `labels` are the last known ones, and a decision that
   * labels could change must not be made on them (see the authorize step).
   */
  readonly labelsStale?: { readonly ageSeconds: number | null };
  /**
   * Set when the subject is a Google account (an auditor signed in to the
   * audit console through IAP): only `googleEmails` rules can match it, and
   * `namespace`/`serviceAccount` are empty. Never set for a Kubernetes subject.
   */
  readonly googleEmail?: string;
}

/** The operation side of a policy question (a subset of `Operation`). */
export interface PolicyAction {
  readonly operationId: string;
  readonly permission: string;
  readonly groups: readonly string[];
  readonly resource: string;
  readonly project: string | null;
  readonly location: string | null;
}

/** The policy question a classified operation asks. */
export function actionOf(operation: Operation): PolicyAction {
  return {
    operationId: operation.spec.id,
    permission: operation.spec.permission,
    groups: operation.spec.groups,
    resource: operation.resource,
    project: operation.project,
    location: operation.location,
  };
}

export type DecisionReason =
  | 'allowed-by-rule'
  | 'denied-by-rule'
  | 'no-matching-rule'
  | 'labels-stale'
  /** No policy question: a page with no audit data (the console's sign-in page, script, stylesheet). */
  | 'public-page'
  | 'job-conditions-failed';

export interface Decision {
  readonly allowed: boolean;
  /** The rule that decided, or null for the default deny. */
  readonly ruleId: string | null;
  readonly reason: DecisionReason;
}
