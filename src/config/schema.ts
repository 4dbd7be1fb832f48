/**
 * THE config schema: the single source of truth for validation, the static
 * `Config` type, defaults, the docs' configuration reference and the chart's
 * values schema (both generated from {@link ConfigSchema}).
 *
 * Durations are strings like `30s`, `5m`, `1h`; sizes like `10MiB`. They stay
 * strings in the file and become numbers (milliseconds, bytes) in the
 * `Settings` that `load.ts` derives, so the hot path never parses them.
 *
 * @module
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const Duration = (defaultValue: string, description: string) =>
  Type.String({ pattern: '^[0-9]+(ms|s|m|h)$', default: defaultValue, description });
const Size = (defaultValue: string, description: string) =>
  Type.String({ pattern: '^[0-9]+(B|KiB|MiB|GiB)?$', default: defaultValue, description });

const strictObject = <T extends Parameters<typeof Type.Object>[0]>(properties: T, description: string, defaultValue?: unknown) =>
  Type.Object(properties, {
    additionalProperties: false,
    description,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
  });

/** Asymmetric JWS algorithms only: HMAC and `none` are not representable in the config at all. */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
] as const;

export const ServerSchema = strictObject(
  {
    host: Type.String({ default: '0.0.0.0', description: 'Address the data port binds to. In a pod: 0.0.0.0; on a workstation: 127.0.0.1.' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'Data port: proxied Vertex AI traffic. 0 picks a free port (printed at start).' }),
    adminHost: Type.String({ default: '0.0.0.0', description: 'Address the admin port binds to.' }),
    adminPort: Type.Integer({ minimum: 0, maximum: 65535, default: 9090, description: 'Admin port: /metrics, /healthz, /readyz. 0 picks a free port.' }),
    bodyLimit: Size('10MiB', 'Largest request body accepted; larger ones get 413 before anything is forwarded.'),
    shutdownGrace: Duration('25s', 'On SIGTERM: stop accepting, let in-flight requests finish for at most this long.'),
    keepAliveTimeout: Duration('65s', 'Idle keep-alive timeout for client connections (longer than typical client pools).'),
  },
  'Listeners.',
  {},
);

export const LoggingSchema = strictObject(
  {
    level: Type.Union([Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')], {
      default: 'info',
      description: 'Operational log level. Audit lines are always written.',
    }),
  },
  'Structured JSON logs on stdout, in Cloud Logging format.',
  {},
);

export const IssuerSchema = strictObject(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'Short name used in logs and metrics.' }),
    type: Type.Union([Type.Literal('kubernetes'), Type.Literal('google')], {
      description: '`kubernetes`: projected service-account tokens (sub system:serviceaccount:NS:SA + the kubernetes.io claim). `google`: Google-signed ID tokens.',
    }),
    issuer: Type.String({ minLength: 1, description: 'Exact `iss` claim value; also the base of OIDC discovery.' }),
    audiences: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Accepted `aud` values (at least one must be in the token).' }),
    jwksUri: Type.Optional(Type.String({ minLength: 1, description: 'JWKS URL. Default: `jwks_uri` from `{issuer}/.well-known/openid-configuration`.' })),
    algorithms: Type.Array(Type.Union(ASYMMETRIC_ALGORITHMS.map((a) => Type.Literal(a))), {
      minItems: 1,
      default: ['RS256', 'ES256'],
      description: 'Accepted signature algorithms (asymmetric only).',
    }),
    maxTokenLifetime: Duration('48h', 'Tokens whose exp - iat exceeds this are refused (long-lived legacy tokens).'),
  },
  'A trusted token issuer.',
);

export const AuthenticationSchema = strictObject(
  {
    clockSkew: Duration('30s', 'Tolerance applied to exp, nbf and iat.'),
    tokenCache: strictObject(
      {
        maxEntries: Type.Integer({ minimum: 0, default: 100_000, description: 'Verified tokens kept (LRU). 0 disables the cache.' }),
        negativeTtl: Duration('10s', 'How long a token that failed verification is remembered as bad.'),
      },
      'Verified-token cache, keyed by a SHA-256 of the token. An entry never outlives the token.',
      {},
    ),
    jwks: strictObject(
      {
        refreshInterval: Duration('10m', 'Background refresh of every issuer key set (sooner if Cache-Control says so, but not more often than minRefreshInterval).'),
        minRefreshInterval: Duration('30s', 'An unknown `kid` triggers at most one refetch per issuer per interval: a flood of random kids is not a fetch storm.'),
        fetchTimeout: Duration('5s', 'Timeout of one discovery or JWKS fetch.'),
      },
      'Issuer key sets. The last good set is kept while an issuer is unreachable.',
      {},
    ),
  },
  'Token verification.',
  {},
);

export const VertexSchema = strictObject(
  {
    projects: Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' }), {
      minItems: 1,
      description: 'Google Cloud projects (ids or numbers) callers may address. Anything else is refused before policy.',
    }),
    projectNumbers: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9-]{4,28}[a-z0-9]$' }), Type.String({ pattern: '^[0-9]{1,20}$' }), {
      default: {},
      description: 'Project id → project number. Vertex AI returns resource names with the project number (`projects/123456789012/…`); with the number known here, calls that use it are accepted and authorized as the project id, so rules are written with ids only.',
    }),
    locations: Type.Array(Type.String({ pattern: '^[a-z][a-z0-9-]{0,62}$' }), {
      minItems: 1,
      description: 'Locations callers may address (e.g. us-central1, europe-west4, global). The location picks the upstream host, so it is checked first.',
    }),
    upstream: Type.String({
      default: 'https://{location}-aiplatform.googleapis.com',
      description: 'Upstream base URL. `{location}` is replaced by the validated location (`global` uses aiplatform.googleapis.com; `us`/`eu` the multi-region hosts). A URL without `{location}` sends every location there.',
    }),
    timeouts: strictObject(
      {
        connect: Duration('10s', 'TCP+TLS connect to Vertex AI.'),
        response: Duration('600s', 'From request sent to response headers (Vertex AI online prediction allows up to 600s).'),
        idle: Duration('300s', 'Longest silence between response body chunks; streams have no total timeout.'),
      },
      'Upstream timeouts.',
      {},
    ),
    connectionsPerHost: Type.Integer({ minimum: 1, default: 128, description: 'Keep-alive connection pool size per upstream host.' }),
  },
  'The Vertex AI side.',
);

export const LabelSelectorSchema = strictObject(
  {
    matchLabels: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String())),
    matchExpressions: Type.Optional(
      Type.Array(
        strictObject(
          {
            key: Type.String({ minLength: 1 }),
            operator: Type.Union([Type.Literal('In'), Type.Literal('NotIn'), Type.Literal('Exists'), Type.Literal('DoesNotExist')]),
            values: Type.Optional(Type.Array(Type.String())),
          },
          'Kubernetes label selector requirement.',
        ),
      ),
    ),
  },
  'Kubernetes label selector (matchLabels AND matchExpressions).',
);

export const KubernetesSchema = strictObject(
  {
    namespaceLabels: Type.Union([Type.Literal('static'), Type.Literal('off'), Type.Literal('watch')], {
      default: 'static',
      description: 'Where namespace labels come from: `static` (the map below), `off` (label selectors never match), `watch` (Kubernetes informer; not available in this version).',
    }),
    static: Type.Record(Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }), Type.Record(Type.String({ minLength: 1 }), Type.String()), {
      default: {},
      description: 'namespace -> labels, used when namespaceLabels is `static`. Namespaces not listed get no label-based grant.',
    }),
    kubeconfig: Type.Optional(Type.String({ description: 'Reserved for the informer (`watch`).' })),
    maxStaleness: Duration('5m', 'Reserved for the informer (`watch`).'),
    tokenReview: Type.Boolean({ default: false, description: 'Reserved: TokenReview revocation mode (not available in this version).' }),
  },
  'Kubernetes identity.',
  {},
);

export const PolicyRuleSchema = strictObject(
  {
    id: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$', description: 'Unique rule id; named in every decision and audit record.' }),
    effect: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
    description: Type.Optional(Type.String()),
    subjects: strictObject(
      {
        serviceAccounts: Type.Optional(
          Type.Array(Type.String({ pattern: '^[a-z0-9*][-a-z0-9.*]*/[a-z0-9*][-a-z0-9.*]*$' }), {
            minItems: 1,
            description: '`namespace/name` patterns; `*` matches any run of characters within one part (`ml/*`, `*/trainer`, `*/*`).',
          }),
        ),
        namespaces: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z0-9*][-a-z0-9*]*$' }), { minItems: 1, description: 'Namespace name patterns.' })),
        namespaceSelector: Type.Optional(LabelSelectorSchema),
      },
      'Who the rule is about. Every matcher given must match (AND); at least one is required. List several rules for OR.',
    ),
    permissions: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description: 'IAM permission names (`aiplatform.endpoints.predict`), patterns (`aiplatform.endpoints.*`, `*`) or groups (`predict`, `generate`, `embed`, `training`, `read`).',
    }),
    resources: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Resource name patterns; `*` matches one path segment (or part of one), `**` any number of segments. Default: any.',
      }),
    ),
    projects: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Default: any configured project.' })),
    locations: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Default: any configured location.' })),
  },
  'A policy rule.',
);

export const PolicySchema = strictObject(
  {
    rules: Type.Array(PolicyRuleSchema, {
      default: [],
      description: 'Evaluated as a set: any matching deny wins, else any matching allow, else deny.',
    }),
  },
  'Who may do what.',
  {},
);

export const ConfigSchema = strictObject(
  {
    server: ServerSchema,
    logging: LoggingSchema,
    issuers: Type.Array(IssuerSchema, { minItems: 1, description: 'Trusted token issuers (one or more).' }),
    authentication: AuthenticationSchema,
    vertex: VertexSchema,
    kubernetes: KubernetesSchema,
    policy: PolicySchema,
  },
  'kube-vertex-proxy configuration file.',
);

export type Config = Static<typeof ConfigSchema>;
export type IssuerConfig = Static<typeof IssuerSchema>;
export type PolicyRule = Static<typeof PolicyRuleSchema>;
export type LabelSelector = Static<typeof LabelSelectorSchema>;

/** Exposed for generators (docs reference, helm values schema). */
export const schemas: Record<string, TSchema> = { ConfigSchema };
