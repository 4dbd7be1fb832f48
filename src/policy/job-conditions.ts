/**
 * `policy.rules[].conditions.jobs`: what a job-creating request may ask for,
 * compiled once at policy load and checked against the {@link JobFacts} of a
 * body. Pure.
 *
 * Every condition given must hold. A condition about a field the method does
 * not have (labels on `deployModel`, a network on a batch prediction job) is
 * not applied; a value the body leaves out is checked as "not given" (`""`),
 * never skipped.
 *
 * @module
 */
import type { JobConditionsConfig } from '../config/schema.js';
import type { JobFacts, Located } from './job-spec.js';

export interface CompiledJobConditions {
  readonly serviceAccounts: readonly RegExp[] | undefined;
  readonly machineTypes: readonly RegExp[] | undefined;
  readonly acceleratorTypes: readonly RegExp[] | undefined;
  readonly maxAccelerators: number | undefined;
  readonly maxReplicas: number | undefined;
  /** Each pattern, and whether it names a tag or digest (then the whole image is matched, else its name only). */
  readonly images: readonly { readonly pattern: RegExp; readonly pinned: boolean }[] | undefined;
  readonly networks: readonly RegExp[] | undefined;
  readonly requireEncryptionSpec: boolean;
  readonly requireLabels: readonly string[] | undefined;
  /** The config text, for messages. */
  readonly source: JobConditionsConfig;
}

/** One condition the body fails: where, and the message the caller gets. */
export interface JobViolation {
  readonly path: string;
  readonly message: string;
}

/** `*` matches any run of characters other than `stop`; everything else is literal. */
function glob(pattern: string, stop: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .join(`[^${stop.replace(/[\]\\^-]/g, '\\$&')}]*`);
  return new RegExp(`^${body}$`);
}

export function compileJobConditions(conditions: JobConditionsConfig): CompiledJobConditions {
  return {
    serviceAccounts: conditions.serviceAccounts?.map((p) => glob(p, '@')),
    machineTypes: conditions.machineTypes?.map((p) => glob(p, '/')),
    acceleratorTypes: conditions.acceleratorTypes?.map((p) => glob(p, '/')),
    maxAccelerators: conditions.maxAccelerators,
    maxReplicas: conditions.maxReplicas,
    images: conditions.images?.map((p) => ({ pattern: glob(p, '/'), pinned: imageName(p) !== p })),
    networks: conditions.networks?.map((p) => glob(p, '/')),
    requireEncryptionSpec: conditions.requireEncryptionSpec === true,
    requireLabels: conditions.requireLabels,
    source: conditions,
  };
}

/** Problems in a rule's job conditions, for the policy loader. */
export function jobConditionsProblems(conditions: JobConditionsConfig, at: string): Array<{ path: string; message: string }> {
  const problems: Array<{ path: string; message: string }> = [];
  conditions.serviceAccounts?.forEach((pattern, i) => {
    if (pattern !== '' && !/^[^@\s]+@[^@\s*]+$/.test(pattern)) {
      problems.push({
        path: `${at}.serviceAccounts[${i}]`,
        message:
          `"${pattern}" is not a service-account email pattern (NAME@PROJECT.iam.gserviceaccount.com, "*" only before the ` +
          `"@"; "" for "none given")`,
      });
    }
  });
  conditions.images?.forEach((pattern, i) => {
    if (!pattern.includes('/'))
      problems.push({
        path: `${at}.images[${i}]`,
        message: `"${pattern}" names no registry: write REGISTRY/REPOSITORY/IMAGE (e.g. us-docker.pkg.dev/my-proj/training/*)`,
      });
  });
  if (Object.keys(conditions).length === 0) problems.push({ path: at, message: 'names no condition (leave it out to allow any job)' });
  return problems;
}

/** An image reference without its tag and digest: `REGISTRY/PATH`. */
export function imageName(image: string): string {
  const at = image.indexOf('@');
  const name = at === -1 ? image : image.slice(0, at);
  const colon = name.indexOf(':', name.lastIndexOf('/') + 1);
  return colon === -1 ? name : name.slice(0, colon);
}

const MAX_SHOWN = 200;

/** A caller-chosen value, quoted and cut short, for a message. */
function shown(value: string): string {
  return JSON.stringify(value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}…` : value);
}

function allowedList(patterns: readonly string[]): string {
  return patterns.map((p) => (p === '' ? '(none given)' : p)).join(', ');
}

function anyMatch(patterns: readonly RegExp[], value: string): boolean {
  for (const p of patterns) if (p.test(value)) return true;
  return false;
}

/**
 * Every condition of `rule` the request fails, in a fixed order (identity,
 * network, machines, accelerators, replicas, images, encryption, labels).
 * Empty: the conditions hold.
 */
export function checkJobConditions(conditions: CompiledJobConditions, facts: JobFacts, ruleId: string): JobViolation[] {
  const out: JobViolation[] = [];
  const source = conditions.source;
  const by = `rule ${ruleId}`;
  const notAllowed = (found: Located<string>, what: string, patterns: readonly string[]): void => {
    out.push({
      path: found.path,
      message:
        found.value === ''
          ? `${found.path}: not given (${what}); ${by} allows only ${allowedList(patterns)}`
          : `${found.path}: ${shown(found.value)} is not allowed by ${by} (allowed: ${allowedList(patterns)})`,
    });
  };

  if (conditions.serviceAccounts !== undefined && facts.serviceAccounts !== null) {
    for (const account of facts.serviceAccounts) {
      if (!anyMatch(conditions.serviceAccounts, account.value))
        notAllowed(account, 'Vertex AI would run it as a default service agent', source.serviceAccounts ?? []);
    }
  }
  if (conditions.networks !== undefined && facts.networks !== null) {
    for (const network of facts.networks) {
      if (!anyMatch(conditions.networks, network.value)) notAllowed(network, 'no VPC peering', source.networks ?? []);
    }
  }
  for (const pool of facts.pools) {
    if (conditions.machineTypes !== undefined) {
      const type = pool.machineType ?? { path: `${pool.path}.machineSpec.machineType`, value: '' };
      if (!anyMatch(conditions.machineTypes, type.value))
        notAllowed(type, 'Vertex AI would pick a default machine', source.machineTypes ?? []);
    }
    if (
      conditions.acceleratorTypes !== undefined &&
      pool.acceleratorType !== undefined &&
      !anyMatch(conditions.acceleratorTypes, pool.acceleratorType.value)
    ) {
      notAllowed(pool.acceleratorType, 'no accelerator', source.acceleratorTypes ?? []);
    }
  }
  if (conditions.maxReplicas !== undefined) {
    for (const pool of facts.pools) {
      if (pool.replicas.value > conditions.maxReplicas) {
        out.push({
          path: pool.replicas.path,
          message: `${pool.replicas.path}: ${pool.replicas.value} exceeds ${conditions.maxReplicas} allowed by ${by}`,
        });
      }
    }
  }
  if (conditions.maxAccelerators !== undefined) {
    const booking = facts.pools.filter((p) => p.acceleratorCount.value > 0);
    const total = booking.reduce((sum, p) => sum + p.acceleratorCount.value * p.replicas.value * p.parallel.value, 0);
    if (total > conditions.maxAccelerators) {
      const only = booking.length === 1 ? booking[0] : undefined;
      if (only !== undefined && only.replicas.value === 1 && only.parallel.value === 1) {
        out.push({
          path: only.acceleratorCount.path,
          message: `${only.acceleratorCount.path}: ${total} exceeds ${conditions.maxAccelerators} allowed by ${by}`,
        });
      } else {
        const terms = booking.map(
          (p) =>
            `${p.path}: ${p.replicas.value} x ` +
            `${p.acceleratorCount.value}${p.parallel.value === 1 ? '' : ` x ${p.parallel.value} parallel trials`}`,
        );
        const path = booking[0]?.path ?? '';
        out.push({
          path,
          message: `${terms.join(' + ')}: ${total} accelerators in total exceeds ${conditions.maxAccelerators} allowed by ${by}`,
        });
      }
    }
  }
  if (conditions.images !== undefined) {
    for (const image of facts.images) {
      const name = imageName(image.value);
      const ok = conditions.images.some(({ pattern, pinned }) => pattern.test(pinned ? image.value : name));
      if (!ok) notAllowed(image, 'no image', source.images ?? []);
    }
  }
  if (conditions.requireEncryptionSpec && facts.encryptionKey !== null && facts.encryptionKey.value === '') {
    out.push({
      path: facts.encryptionKey.path,
      message: `${facts.encryptionKey.path}: not given; ${by} requires a customer-managed encryption key`,
    });
  }
  if (conditions.requireLabels !== undefined && facts.labels !== null) {
    const present = new Set(facts.labels.value);
    const missing = conditions.requireLabels.filter((key) => !present.has(key));
    if (missing.length > 0) {
      out.push({
        path: facts.labels.path,
        message:
          `${facts.labels.path}: missing label${missing.length === 1 ? '' : 's'} ` +
          `${missing.map((k) => JSON.stringify(k)).join(', ')} required by ${by}`,
      });
    }
  }
  return out;
}
