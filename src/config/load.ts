/**
 * Loads the config file: parse YAML → validate against the one schema (every
 * problem collected) → semantic checks (every problem collected) → derive the
 * runtime settings → deep-freeze. Either everything is right, or a
 * {@link ConfigError} lists every problem with its path and line in the file.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, isMap, isSeq, type Node as YamlNode } from 'yaml';
import { ConfigSchema, type Config, type IssuerConfig, type PolicyRule, type TracingConfig, type VertexIdentityConfig } from './schema.js';
import { parseDuration, parseSize } from './units.js';
import { deepFreeze } from '../lib/deep-freeze.js';
import { compilePolicy, type CompiledPolicy } from '../policy/compile.js';
import { KNOWN_PERMISSIONS } from '../vertex/operation-table.js';
import { AUDIT_READ_PERMISSION, deriveAuditSettings, type AuditSettings } from '../audit/settings.js';
import { createUpstreamResolver, DEFAULT_UPSTREAM_TEMPLATE } from '../vertex/upstream.js';
import { checkCallbacks, deriveCallbackSettings, type CallbackSettings } from '../callbacks/settings.js';
import { deriveKubernetesSettings, deriveReloadSettings, type KubernetesSettings, type ReloadSettings } from '../identity/settings.js';
import { deriveLimitSettings, type LimitSettings } from '../limits/settings.js';

export interface ConfigProblem {
  /** Dotted path in the file, e.g. `policy.rules[3].effect`; empty for the whole file. */
  readonly path: string;
  /** 1-based line in the file, when known. */
  readonly line: number | undefined;
  readonly message: string;
}

export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  readonly source: string;
  constructor(source: string, problems: readonly ConfigProblem[]) {
    super(`${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`);
    this.name = 'ConfigError';
    this.source = source;
    this.problems = problems;
  }

  /** One line per problem: `FILE:LINE: PATH: MESSAGE`. */
  format(): string {
    return this.problems
      .map((p) => `${this.source}${p.line === undefined ? '' : `:${p.line}`}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`)
      .join('\n');
  }
}

export interface IssuerSettings {
  readonly name: string;
  readonly type: IssuerConfig['type'];
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly jwksUri: string | undefined;
  readonly algorithms: readonly string[];
  readonly maxTokenLifetimeSec: number;
  /** PEM CAs for discovery and JWKS fetches (`caFile`, read at load); undefined = the system CAs. */
  readonly ca?: string;
}

/** Everything the running proxy needs, with units converted once at load. */
export interface Settings {
  readonly source: string;
  readonly logging: { readonly level: Config['logging']['level'] };
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly adminHost: string;
    readonly adminPort: number;
    readonly bodyLimitBytes: number;
    readonly shutdownGraceMs: number;
    readonly keepAliveTimeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly bodyIdleTimeoutMs: number;
    readonly maxInFlightPerCaller: number;
    readonly readyzDetails: boolean;
    readonly drainPeriodMs: number;
  };
  readonly authentication: {
    readonly clockSkewSec: number;
    readonly tokenCacheMaxEntries: number;
    readonly negativeTtlMs: number;
    readonly jwksRefreshIntervalMs: number;
    readonly jwksMinRefreshIntervalMs: number;
    readonly jwksFetchTimeoutMs: number;
  };
  readonly issuers: readonly IssuerSettings[];
  readonly vertex: {
    readonly projects: ReadonlySet<string>;
    /** Project number → project id, from `vertex.projectNumbers`. */
    readonly projectIdByNumber: ReadonlyMap<string, string>;
    readonly locations: ReadonlySet<string>;
    /** Base URL (origin) for a validated location; undefined for a location not served. */
    readonly upstreamFor: (location: string | null) => string | undefined;
    readonly connectTimeoutMs: number;
    readonly responseTimeoutMs: number;
    readonly idleTimeoutMs: number;
    readonly connectionsPerHost: number;
    /** The first of `vertex.projects`: the project the Cloud Trace ids of audit lines name. */
    readonly traceProject: string;
    readonly identities: readonly VertexIdentityConfig[];
    readonly iamCredentialsEndpoint: string;
    /** `vertex.endpointHosts`: endpoint resource name → origin its prediction calls go to. */
    readonly endpointHosts: ReadonlyMap<string, string>;
    readonly endpointLookup: { readonly enabled: boolean; readonly ttlMs: number; readonly maxEntries: number; readonly timeoutMs: number };
    /** `vertex.upstream` is Google's own regional hosts (then a dedicated host must be in Google's dedicated-endpoint domain). */
    readonly googleUpstream: boolean;
  };
  readonly policy: CompiledPolicy;
  /** `policy.rules` as written (the label-independent policy is compiled from them; the console shows them). */
  readonly policyRules: readonly PolicyRule[];
  readonly kubernetes: KubernetesSettings;
  readonly reload: ReloadSettings;
  readonly audit: AuditSettings;
  readonly callbacks: CallbackSettings;
  /** Accepted, but worth a loud word at every start (secrets written inline). */
  readonly warnings: readonly ConfigProblem[];
  readonly limits: LimitSettings;
  readonly tracing: TracingConfig;
  readonly usage: { readonly metricLabels: Config['usage']['metricLabels']; readonly maxSeries: number };
  readonly attribution: Config['attribution'];
  /** The config minus what reloads (`policy`, `kubernetes.static`): a reload that changes it needs a restart. */
  readonly restartOnly: string;
}

/** `iss` of Google-signed ID tokens: the default for issuers of type `google`. */
export const GOOGLE_ISSUER = 'https://accounts.google.com';

// `optimize: false`: Ajv's code optimiser tracks the names of generated variables (`data14`, `err55`, …) as keys of
// fresh `{}` objects, one new key per name. V8 keeps every first key ever added to a `{}` as a transition of one shared
// hidden class, and at some 1,500 of them it stops recording new ones: compiling this schema filled that budget, and from
// then on objects built the same way kept getting new hidden classes — Node's own `process.nextTick` records among them,
// which made every tick several times slower and the full path about a tenth dearer per request (issue 16). The
// optimiser only shortens the generated validator, which runs once per load.
const ajv = new Ajv({
  allErrors: true,
  useDefaults: true,
  strict: true,
  allowUnionTypes: true,
  verbose: true,
  code: { optimize: false },
});
const validateSchema = ajv.compile<Config>(ConfigSchema);

/** Reads, validates and freezes a config file. @throws ConfigError */
export async function loadConfigFile(path: string): Promise<Settings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : `cannot read file (${(error as Error).message})`;
    throw new ConfigError(path, [{ path: '', line: undefined, message: reason }]);
  }
  return parseConfig(text, path);
}

/** Validates config text. `source` names it in messages. @throws ConfigError */
export function parseConfig(text: string, source: string): Settings {
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      source,
      document.errors.map((e) => ({ path: '', line: e.linePos?.[0]?.line, message: `YAML: ${e.message.split('\n')[0]}` })),
    );
  }
  const raw: unknown = document.toJS() ?? {};
  const lineOf = (path: readonly (string | number)[]): number | undefined => {
    const node = findNode(document.contents, path);
    return node?.range ? lines.linePos(node.range[0]).line : undefined;
  };

  // Schema problems do not stop the checks below: every section the schema
  // accepted is still checked, so one run lists every problem in the file.
  const schemaOk = validateSchema(raw);
  const problems: ConfigProblem[] = schemaOk ? [] : schemaProblems(validateSchema.errors ?? [], lineOf);
  const invalid = invalidSections(schemaOk ? [] : (validateSchema.errors ?? []));
  if (invalid.has('')) throw new ConfigError(source, problems);
  const config = raw as Config;
  const add = (path: (string | number)[], message: string) => problems.push({ path: formatPath(path), line: lineOf(path), message });
  const valid = (...sections: string[]) => sections.every((s) => !invalid.has(s));
  const issuerCas = new Map<number, string>();
  if (valid('issuers')) {
    const issuerNames = new Set<string>();
    const issuerUrls = new Set<string>();
    config.issuers.forEach((issuer, i) => {
      if (issuerNames.has(issuer.name)) add(['issuers', i, 'name'], `duplicate issuer name "${issuer.name}"`);
      issuerNames.add(issuer.name);
      // Google's own issuer is the default for `google`; a Kubernetes issuer must be named.
      if (issuer.issuer === undefined && issuer.type === 'google') issuer.issuer = GOOGLE_ISSUER;
      if (issuer.issuer === undefined) {
        add(['issuers', i, 'issuer'], 'is required for an issuer of type "kubernetes"');
        return;
      }
      if (issuerUrls.has(issuer.issuer)) add(['issuers', i, 'issuer'], `issuer "${issuer.issuer}" is listed twice`);
      issuerUrls.add(issuer.issuer);
      if (!isHttpUrl(issuer.issuer)) add(['issuers', i, 'issuer'], 'must be an http(s) URL');
      if (issuer.jwksUri !== undefined && !isHttpUrl(issuer.jwksUri)) add(['issuers', i, 'jwksUri'], 'must be an http(s) URL');
      if (issuer.caFile !== undefined) {
        const ca = readIssuerCa(issuer.caFile, dirname(source));
        if (typeof ca === 'string') issuerCas.set(i, ca);
        else add(['issuers', i, 'caFile'], ca.problem);
      }
    });
    if (!config.issuers.some((i) => i.type === 'kubernetes')) {
      add(['issuers'], 'at least one issuer of type "kubernetes" is needed for the outbound path');
    }
  }

  let upstreamFor: Settings['vertex']['upstreamFor'] = () => undefined;
  if (valid('vertex')) {
    for (const id of Object.keys(config.vertex.projectNumbers)) {
      if (!config.vertex.projects.includes(id)) add(['vertex', 'projectNumbers', id], `"${id}" is not in vertex.projects`);
    }
    try {
      upstreamFor = createUpstreamResolver(config.vertex.upstream, config.vertex.locations);
    } catch (error) {
      add(['vertex', 'upstream'], (error as Error).message);
    }
  }

  const kubernetes = valid('kubernetes') ? deriveKubernetesSettings(config.kubernetes, dirname(source), add) : undefined;

  let policy: CompiledPolicy | undefined;
  if (valid('policy', 'vertex')) {
    const compiled = compilePolicy(config.policy.rules, {
      knownPermissions: new Set([...KNOWN_PERMISSIONS, AUDIT_READ_PERMISSION]),
      projects: config.vertex.projects,
      locations: config.vertex.locations,
    });
    policy = compiled.policy;
    for (const p of compiled.problems) problems.push({ path: p.path, line: lineOf(parsePath(p.path)), message: p.message });
  }

  const audit = valid('audit') ? deriveAuditSettings(config.audit, dirname(source), add) : undefined;
  if (valid('callbacks', 'issuers')) checkCallbacks(config, add);
  if (valid('vertex')) checkVertexRouting(config, add);
  const limits = valid('limits', 'vertex')
    ? deriveLimitSettings(
        config.limits,
        dirname(source),
        { knownPermissions: new Set(KNOWN_PERMISSIONS), projects: config.vertex.projects, locations: config.vertex.locations },
        add,
        (p) => problems.push({ path: p.path, line: lineOf(parsePath(p.path)), message: p.message }),
      )
    : undefined;

  if (problems.length > 0 || kubernetes === undefined || policy === undefined || audit === undefined || limits === undefined)
    throw new ConfigError(source, problems);

  const authn = config.authentication;
  const settings: Settings = {
    source,
    logging: { level: config.logging.level },
    server: {
      host: config.server.host,
      port: config.server.port,
      adminHost: config.server.adminHost,
      adminPort: config.server.adminPort,
      bodyLimitBytes: parseSize(config.server.bodyLimit),
      shutdownGraceMs: parseDuration(config.server.shutdownGrace),
      keepAliveTimeoutMs: parseDuration(config.server.keepAliveTimeout),
      requestTimeoutMs: parseDuration(config.server.requestTimeout),
      bodyIdleTimeoutMs: parseDuration(config.server.bodyIdleTimeout),
      maxInFlightPerCaller: config.server.maxInFlightPerCaller,
      readyzDetails: config.server.readyzDetails,
      drainPeriodMs: parseDuration(config.server.drainPeriod),
    },
    authentication: {
      clockSkewSec: Math.ceil(parseDuration(authn.clockSkew) / 1000),
      tokenCacheMaxEntries: authn.tokenCache.maxEntries,
      negativeTtlMs: parseDuration(authn.tokenCache.negativeTtl),
      jwksRefreshIntervalMs: parseDuration(authn.jwks.refreshInterval),
      jwksMinRefreshIntervalMs: parseDuration(authn.jwks.minRefreshInterval),
      jwksFetchTimeoutMs: parseDuration(authn.jwks.fetchTimeout),
    },
    issuers: config.issuers.map((i, n) => ({
      name: i.name,
      type: i.type,
      issuer: i.issuer as string,
      audiences: i.audiences,
      jwksUri: i.jwksUri,
      algorithms: i.algorithms,
      maxTokenLifetimeSec: Math.floor(parseDuration(i.maxTokenLifetime) / 1000),
      ...(issuerCas.has(n) ? { ca: issuerCas.get(n) as string } : {}),
    })),
    vertex: {
      projects: new Set(config.vertex.projects),
      projectIdByNumber: new Map(Object.entries(config.vertex.projectNumbers).map(([id, number]) => [number, id])),
      locations: new Set(config.vertex.locations),
      upstreamFor,
      connectTimeoutMs: parseDuration(config.vertex.timeouts.connect),
      responseTimeoutMs: parseDuration(config.vertex.timeouts.response),
      idleTimeoutMs: parseDuration(config.vertex.timeouts.idle),
      connectionsPerHost: config.vertex.connectionsPerHost,
      traceProject: config.vertex.projects[0] as string,
      identities: config.vertex.identities,
      iamCredentialsEndpoint: config.vertex.iamCredentialsEndpoint,
      endpointHosts: new Map(Object.entries(config.vertex.endpointHosts).map(([resource, url]) => [resource, new URL(url).origin])),
      endpointLookup: {
        enabled: config.vertex.endpointLookup.enabled,
        ttlMs: parseDuration(config.vertex.endpointLookup.ttl),
        maxEntries: config.vertex.endpointLookup.maxEntries,
        timeoutMs: parseDuration(config.vertex.endpointLookup.timeout),
      },
      googleUpstream: config.vertex.upstream.replace(/\/$/, '') === DEFAULT_UPSTREAM_TEMPLATE,
    },
    policy,
    policyRules: config.policy.rules,
    kubernetes,
    reload: deriveReloadSettings(config.reload),
    audit,
    callbacks: deriveCallbackSettings(config.callbacks, dirname(source)),
    warnings: inlineSecretWarnings(config, lineOf),
    limits,
    tracing: config.tracing,
    usage: { metricLabels: config.usage.metricLabels, maxSeries: config.usage.maxSeries },
    attribution: config.attribution,
    restartOnly: restartOnlyPart(config),
  };
  deepFreeze(config);
  return Object.freeze(settings);
}

/**
 * Top-level sections the schema refused (`''`: the file as a whole, e.g. not
 * a mapping). The semantic checks skip those sections, since their values are
 * not of the validated types, and run on every other one.
 */
function invalidSections(errors: readonly ErrorObject[]): Set<string> {
  const out = new Set<string>();
  for (const error of errors) {
    const first = error.instancePath.split('/')[1];
    if (first !== undefined) out.add(first.replaceAll('~1', '/').replaceAll('~0', '~'));
    else if (error.keyword === 'required') out.add((error.params as { missingProperty: string }).missingProperty);
    else if (error.keyword !== 'additionalProperties') out.add('');
  }
  return out;
}

/**
 * A password written into the config file sits in the ConfigMap, readable by
 * whoever may read ConfigMaps in the namespace, and in every copy of the
 * values. Accepted (a workstation or a test needs no Secret), but warned about.
 */
function inlineSecretWarnings(config: Config, lineOf: (path: (string | number)[]) => number | undefined): ConfigProblem[] {
  const warnings: ConfigProblem[] = [];
  config.audit.sinks.forEach((sink, i) => {
    if (sink.type !== 'postgres' || sink.url === undefined) return;
    let password = '';
    try {
      password = new URL(sink.url).password;
    } catch {
      password = '';
    }
    if (password === '') return;
    const path = ['audit', 'sinks', i, 'url'];
    warnings.push({
      path: formatPath(path),
      line: lineOf(path),
      message:
        'WARNING: this PostgreSQL URL carries a password in the config file (in a cluster: in the ConfigMap). Put the URL ' +
        'in a Secret and name its mounted file with urlFile (helm: auditPostgres.existingSecret).',
    });
  });
  return warnings;
}

/** `issuers[].caFile` read once at load: PEM text with at least one certificate, or the problem. */
function readIssuerCa(file: string, configDir: string): string | { problem: string } {
  const path = isAbsolute(file) ? file : resolve(configDir, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { problem: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) return { problem: `${path} holds no PEM certificate` };
  return text;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

function schemaProblem(error: ErrorObject, lineOf: (path: (string | number)[]) => number | undefined): ConfigProblem {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
  let message = error.message ?? 'is invalid';
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    path.push(extra);
    message = 'unknown field';
  } else if (error.keyword === 'required') {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    path.push(missing);
    message = 'is required';
  } else if (error.keyword === 'const' || error.keyword === 'enum') {
    const params = error.params as { allowedValues?: unknown[]; allowedValue?: unknown };
    message = `must be one of ${JSON.stringify(params.allowedValues ?? params.allowedValue)}`;
  } else if (error.keyword === 'anyOf') {
    const members = ((error.parentSchema as { anyOf?: Array<{ const?: unknown }> } | undefined)?.anyOf ?? []).map((m) => m.const);
    message =
      members.length > 0 && members.every((m) => m !== undefined)
        ? `must be one of ${members.map((m) => JSON.stringify(m)).join(', ')}`
        : 'is not one of the allowed forms';
  } else if (error.keyword === 'pattern') {
    message = `has an invalid format (expected ${describePattern((error.params as { pattern: string }).pattern)})`;
  }
  const line = lineOf(path) ?? lineOf(path.slice(0, -1));
  return { path: formatPath(path), line, message };
}

function describePattern(pattern: string): string {
  if (pattern === '^[0-9]+(ms|s|m|h)$') return 'a duration like 30s, 5m, 1h';
  if (pattern === '^[0-9]+(B|KiB|MiB|GiB)?$') return 'a size like 512KiB or 10MiB';
  return `pattern ${pattern}`;
}

/**
 * ajv reports a failing union once per member and once for the union; keep
 * the union's error at such a path and say which values are allowed.
 */
function schemaProblems(errors: readonly ErrorObject[], lineOf: (path: (string | number)[]) => number | undefined): ConfigProblem[] {
  const unionPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const error of errors) {
    if (unionPaths.has(error.instancePath) && error.keyword !== 'anyOf') continue;
    const problem = schemaProblem(error, lineOf);
    const key = `${problem.path}\u0000${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
}

export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

function parsePath(path: string): (string | number)[] {
  const parts: (string | number)[] = [];
  for (const match of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (match[2] !== undefined) parts.push(Number(match[2]));
    else if (match[1] !== undefined) parts.push(match[1]);
  }
  return parts;
}

function findNode(root: YamlNode | null, path: readonly (string | number)[]): YamlNode | undefined {
  let node: unknown = root;
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => (item.key as { value?: unknown } | null)?.value === part);
      if (!pair) return node;
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof part === 'number') {
      const item = node.items[part];
      if (item === undefined) return node;
      node = item;
    } else {
      return (node as YamlNode | undefined) ?? undefined;
    }
  }
  return node as YamlNode | undefined;
}

/** `vertex.identities` and `vertex.endpointHosts`: what the schema cannot say. */
function checkVertexRouting(config: Config, add: (path: (string | number)[], message: string) => void): void {
  config.vertex.identities.forEach((identity, i) => {
    const { serviceAccounts, namespaces, namespaceSelector } = identity.subjects;
    if (serviceAccounts === undefined && namespaces === undefined && namespaceSelector === undefined) {
      add(['vertex', 'identities', i, 'subjects'], 'names no subject: give serviceAccounts, namespaces or namespaceSelector');
    }
  });
  for (const [resource, url] of Object.entries(config.vertex.endpointHosts)) {
    const [, project, , location] = resource.split('/');
    if (project !== undefined && !config.vertex.projects.includes(project))
      add(['vertex', 'endpointHosts', resource], `project "${project}" is not in vertex.projects`);
    if (location !== undefined && !config.vertex.locations.includes(location))
      add(['vertex', 'endpointHosts', resource], `location "${location}" is not in vertex.locations`);
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (
      parsed === undefined ||
      (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') ||
      parsed.pathname !== '/' ||
      parsed.search !== '' ||
      parsed.username !== ''
    ) {
      add(
        ['vertex', 'endpointHosts', resource],
        `"${url}" must be an http(s) origin (scheme, host and optional port; no path, query or credentials)`,
      );
    }
  }
}

/** The config minus what reloads (`policy`, `kubernetes.static`), to notice a change that needs a restart. */
function restartOnlyPart(config: Config): string {
  // JSON.stringify leaves out the undefined members.
  return JSON.stringify({ ...config, policy: undefined, kubernetes: { ...config.kubernetes, static: undefined } });
}
