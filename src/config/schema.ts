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
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

export const ServerSchema = strictObject(
  {
    host: Type.String({
      default: '0.0.0.0',
      description: 'Address the data port binds to. In a pod: 0.0.0.0; on a workstation: 127.0.0.1.',
    }),
    port: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 8080,
      description: 'Data port: proxied Vertex AI traffic. 0 picks a free port (printed at start).',
    }),
    adminHost: Type.String({ default: '0.0.0.0', description: 'Address the admin port binds to.' }),
    adminPort: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 9090,
      description: 'Admin port: /metrics, /healthz, /readyz. 0 picks a free port.',
    }),
    bodyLimit: Size('10MiB', 'Largest request body accepted; larger ones get 413 before anything is forwarded.'),
    shutdownGrace: Duration('25s', 'On SIGTERM: stop accepting, let in-flight requests finish for at most this long.'),
    keepAliveTimeout: Duration('65s', 'Idle keep-alive timeout for client connections (longer than typical client pools).'),
    requestTimeout: Duration(
      '300s',
      'Longest time a client may take to send a whole request (headers and body); a slower one gets 408 and its connection ' +
        'is closed, and nothing is forwarded. Responses, streams included, are not limited by it. 0s: no limit.',
    ),
    bodyIdleTimeout: Duration(
      '10s',
      'Longest silence while a request body is being received (both route families): a body from which nothing arrives for ' +
        'this long is cut with 408, its connection closed, and the upstream request it was feeding aborted. 0s: no limit ' +
        '(requestTimeout still applies).',
    ),
    maxInFlightPerCaller: Type.Integer({
      minimum: 0,
      default: 64,
      description:
        'Most requests one caller (a Kubernetes service account, or a Google identity on callback routes) may have in ' +
        'flight at once, on every route; more get 429 RESOURCE_EXHAUSTED with Retry-After. Keeps one caller from taking ' +
        'the whole upstream connection pool (vertex.connectionsPerHost). 0: no cap.',
    }),
    drainPeriod: Duration(
      '0s',
      'On SIGTERM: how long to keep accepting and serving requests with /readyz already failing, so the endpoint leaves ' +
        "every Service before the listeners close; then shutdownGrace applies to requests in flight. The chart's preStop " +
        'sleep (preStopSleepSeconds) does the same before SIGTERM; use one or the other.',
    ),
    readyzDetails: Type.Boolean({
      default: false,
      description:
        "Whether /readyz on the admin port includes each check's detail (issuer key ids, policy version and reload " +
        'problems, label-view state). Off: only names and ready flags, so whoever can reach the admin port learns nothing ' +
        'more.',
    }),
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
      description:
        '`kubernetes`: projected service-account tokens (sub system:serviceaccount:NS:SA + the kubernetes.io claim). ' +
        '`google`: Google-signed ID tokens.',
    }),
    issuer: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Exact `iss` claim value; also the base of OIDC discovery. Required for `kubernetes`; for `google` the default ' +
          'is `https://accounts.google.com`.',
      }),
    ),
    audiences: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description: 'Accepted `aud` values (at least one must be in the token).',
    }),
    jwksUri: Type.Optional(
      Type.String({ minLength: 1, description: 'JWKS URL. Default: `jwks_uri` from `{issuer}/.well-known/openid-configuration`.' }),
    ),
    algorithms: Type.Array(Type.Union(ASYMMETRIC_ALGORITHMS.map((a) => Type.Literal(a))), {
      minItems: 1,
      default: ['RS256', 'ES256'],
      description: 'Accepted signature algorithms (asymmetric only).',
    }),
    maxTokenLifetime: Duration('48h', 'Tokens whose exp - iat exceeds this are refused (long-lived legacy tokens).'),
    caFile: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "PEM bundle of the CAs trusted for this issuer's discovery and JWKS fetches only (instead of the system CAs), " +
          "for an issuer served with a private CA such as a self-managed cluster's API server. In a pod the " +
          'service-account CA, `/var/run/secrets/kubernetes.io/serviceaccount/ca.crt`, is the usual value. Relative to the ' +
          'config file.',
      }),
    ),
  },
  'A trusted token issuer.',
);

export const AuthenticationSchema = strictObject(
  {
    clockSkew: Duration('30s', 'Tolerance applied to exp, nbf and iat.'),
    tokenCache: strictObject(
      {
        maxEntries: Type.Integer({
          minimum: 0,
          default: 100_000,
          description: 'Verified tokens kept; when full, the one unused longest goes first (approximate LRU). 0 disables the cache.',
        }),
        negativeTtl: Duration('10s', 'How long a token that failed verification is remembered as bad.'),
      },
      'Verified-token cache, keyed by a SHA-256 of the token. An entry never outlives the token.',
      {},
    ),
    jwks: strictObject(
      {
        refreshInterval: Duration(
          '10m',
          'Background refresh of every issuer key set (sooner if Cache-Control says so, but not more often than minRefreshInterval).',
        ),
        minRefreshInterval: Duration(
          '30s',
          'An unknown `kid` triggers at most one refetch per issuer per interval: a flood of random kids is not a fetch storm.',
        ),
        fetchTimeout: Duration('5s', 'Timeout of one discovery or JWKS fetch.'),
      },
      'Issuer key sets. The last good set is kept while an issuer is unreachable.',
      {},
    ),
  },
  'Token verification.',
  {},
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

/** The Kubernetes subject matchers of policy rules, for `vertex.identities` (same meaning). */
export const IdentitySubjectsSchema = strictObject(
  {
    serviceAccounts: Type.Optional(
      Type.Array(Type.String({ pattern: '^[a-z0-9*][-a-z0-9.*]*/[a-z0-9*][-a-z0-9.*]*$' }), {
        minItems: 1,
        description: '`namespace/name` patterns, as in policy rules.',
      }),
    ),
    namespaces: Type.Optional(
      Type.Array(Type.String({ pattern: '^[a-z0-9*][-a-z0-9*]*$' }), { minItems: 1, description: 'Namespace name patterns.' }),
    ),
    namespaceSelector: Type.Optional(LabelSelectorSchema),
  },
  'Which callers: every matcher given must match (AND); at least one is required.',
);

export const VertexSchema = strictObject(
  {
    projects: Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' }), {
      minItems: 1,
      description: 'Google Cloud projects (ids or numbers) callers may address. Anything else is refused before policy.',
    }),
    projectNumbers: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9-]{4,28}[a-z0-9]$' }), Type.String({ pattern: '^[0-9]{1,20}$' }), {
      default: {},
      description:
        'Project id → project number. Vertex AI returns resource names with the project number ' +
        '(`projects/123456789012/…`); with the number known here, calls that use it are accepted and authorized as the ' +
        'project id, so rules are written with ids only.',
    }),
    locations: Type.Array(Type.String({ pattern: '^[a-z][a-z0-9-]{0,62}$' }), {
      minItems: 1,
      description:
        'Locations callers may address (e.g. us-central1, europe-west4, global). The location picks the upstream host, so ' +
        'it is checked first.',
    }),
    upstream: Type.String({
      default: 'https://{location}-aiplatform.googleapis.com',
      description:
        'Upstream base URL. `{location}` is replaced by the validated location (`global` uses aiplatform.googleapis.com; ' +
        '`us`/`eu` the multi-region hosts). A URL without `{location}` sends every location there.',
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
    identities: Type.Array(
      strictObject(
        {
          subjects: IdentitySubjectsSchema,
          serviceAccount: Type.String({
            pattern: '^[a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9.]*\\.iam\\.gserviceaccount\\.com$',
            description:
              "Google service account the matching callers' requests go out as (impersonated: the proxy's own identity " +
              'needs roles/iam.serviceAccountTokenCreator on it).',
          }),
        },
        'A Google identity for the callers that match.',
      ),
      {
        default: [],
        description:
          'A Google identity per team, by impersonation (IAM Credentials generateAccessToken). First match wins; a caller ' +
          "matching none goes out as the proxy's own identity. When a token for the matched account cannot be had, the " +
          'request gets 503 and nothing is forwarded.',
      },
    ),
    iamCredentialsEndpoint: Type.String({
      default: 'https://iamcredentials.googleapis.com',
      description: 'IAM Credentials API base URL used for `identities` (a different value only for tests or a restricted VIP).',
    }),
    endpointHosts: Type.Record(
      Type.String({ pattern: '^projects/[^/]+/locations/[^/]+/endpoints/[^/]+$' }),
      Type.String({ minLength: 1 }),
      {
        default: {},
        description:
          "Endpoint resource name → base URL (origin) its prediction calls go to: a dedicated endpoint's host or a Private " +
          'Service Connect address. Wins over `endpointLookup`.',
      },
    ),
    endpointLookup: strictObject(
      {
        enabled: Type.Boolean({
          default: false,
          description:
            "Look up each endpoint a prediction call names (EndpointService.GetEndpoint, with the proxy's own identity) " +
            'and send the calls of endpoints with a dedicated public endpoint to their `dedicatedEndpointDns` host.',
        }),
        ttl: Duration('5m', 'How long a lookup is used; it is refreshed in the background after 80% of it.'),
        maxEntries: Type.Integer({ minimum: 1, default: 10_000, description: 'Endpoints remembered (oldest dropped first).' }),
        timeout: Duration('5s', 'Longest wait for one lookup; a call waiting on a failed or slow lookup goes to the regional host.'),
      },
      'Dedicated endpoints: learn the host of each endpoint.',
      {},
    ),
  },
  'The Vertex AI side.',
);

export const KubernetesSchema = strictObject(
  {
    namespaceLabels: Type.Union([Type.Literal('static'), Type.Literal('off'), Type.Literal('watch')], {
      default: 'static',
      description:
        'Where namespace labels come from: `static` (the map below), `off` (label selectors never match), `watch` ' +
        '(LIST+WATCH of namespaces from the Kubernetes API, in memory; /readyz waits for the first list).',
    }),
    static: Type.Record(
      Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }),
      Type.Record(Type.String({ minLength: 1 }), Type.String()),
      {
        default: {},
        description: 'namespace -> labels, used when namespaceLabels is `static`. Namespaces not listed get no label-based grant.',
      },
    ),
    kubeconfig: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'kubeconfig file for the Kubernetes API (watch, tokenReview, uidRevocation). Default: the in-cluster config when ' +
          'running in a pod (service-account token and CA), else $KUBECONFIG, else ~/.kube/config.',
      }),
    ),
    maxStaleness: Duration(
      '5m',
      'With `watch`: how long the proxy keeps deciding on its last label view while the API server is unreachable. Past ' +
        'it, a request whose decision depends on namespace labels is refused (403, "label view is stale"); decisions that no ' +
        'label can change still go through.',
    ),
    apiTimeout: Duration('10s', 'Timeout of one Kubernetes API call the proxy makes on the request path (TokenReview) or to list objects.'),
    tokenReview: Type.Boolean({
      default: false,
      description:
        'Also ask the API server (TokenReview, audiences set) about every token not yet in the verified-token cache, so a ' +
        'token whose pod or service account was deleted is refused. Costs one API call per new token; the outcome is ' +
        'cached with the token for at most tokenReviewTtl.',
    }),
    tokenReviewTtl: Duration(
      '2m',
      'With tokenReview: how long a reviewed token stays in the cache before it is reviewed again (never past its exp). ' +
        'This is the revocation delay.',
    ),
    tokenReviewConcurrency: Type.Integer({
      default: 16,
      minimum: 1,
      maximum: 1024,
      description:
        'With tokenReview: most TokenReview calls in flight at once, so a cold cache in a large cluster does not send one ' +
        'per distinct token at once. Further reviews wait for a free slot (at most apiTimeout, at most 64 per slot); past ' +
        'that the request gets 503 UNAVAILABLE (reason token-review-busy) and may be retried.',
    }),
    uidRevocation: Type.Union([Type.Literal('off'), Type.Literal('serviceAccounts'), Type.Literal('serviceAccountsAndPods')], {
      default: 'off',
      description:
        'Revocation without TokenReview: keep metadata-only informers of ServiceAccounts (and Pods) and refuse, and evict ' +
        'from the cache, a token whose service account (or pod) UID no longer exists. Needs list/watch on those resources ' +
        'cluster-wide.',
    }),
  },
  'Kubernetes identity.',
  {},
);

/** What a job-creating request may ask for (policy.rules[].conditions.jobs); see docs/policy-guardrails.md. */
export const JobConditionsSchema = strictObject(
  {
    serviceAccounts: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        description:
          'Google service accounts the job may run as (email patterns, `*` within the part before `@`). `""` stands for ' +
          '"no service account given" (Vertex AI then uses a default agent) and must be listed to allow it.',
      }),
    ),
    machineTypes: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Machine type patterns (`g2-standard-*`); every machine spec in the body must match one.',
      }),
    ),
    acceleratorTypes: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Accelerator types (`NVIDIA_L4`, patterns allowed); every machine spec with an accelerator must name one of them.',
      }),
    ),
    maxAccelerators: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'Most accelerators the request may book: the sum over all pools of replicas x acceleratorCount (for autoscaled ' +
          'pools, their maximum replicas).',
      }),
    ),
    maxReplicas: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Most replicas of any one pool (for autoscaled pools, their maximum).' }),
    ),
    images: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description:
          'Container image patterns: registry and repository path, `*` within one `/` segment; a tag (`:v1`) or digest ' +
          '(`@sha256:…`) on the image is allowed unless the pattern names one.',
      }),
    ),
    networks: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        description:
          'VPC networks the job may peer with (`projects/NUMBER/global/networks/NAME`, patterns allowed). `""` stands for ' +
          '"no network given".',
      }),
    ),
    requireEncryptionSpec: Type.Optional(
      Type.Boolean({ description: 'true: the request must name a customer-managed key (`encryptionSpec.kmsKeyName`).' }),
    ),
    requireLabels: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Label keys the created resource must carry (as sent by the caller).',
      }),
    ),
  },
  'Conditions on the body of job-creating methods. Every condition given must hold; a condition about a field a method ' +
    'does not have is not applied (see docs/policy-guardrails.md).',
);

export const PolicyRuleSchema = strictObject(
  {
    id: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$',
      description: 'Unique rule id; named in every decision and audit record.',
    }),
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
        namespaces: Type.Optional(
          Type.Array(Type.String({ pattern: '^[a-z0-9*][-a-z0-9*]*$' }), { minItems: 1, description: 'Namespace name patterns.' }),
        ),
        namespaceSelector: Type.Optional(LabelSelectorSchema),
        googleEmails: Type.Optional(
          Type.Array(Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$' }), {
            minItems: 1,
            description:
              'Google accounts (auditors signed in to the audit console through Identity-Aware Proxy): emails, or patterns ' +
              'with `*` before the `@` only (`*@example.com`); case-insensitive. Not combinable with the Kubernetes ' +
              'matchers above: a subject is either a Google account or a Kubernetes service account.',
          }),
        ),
      },
      'Who the rule is about. Every matcher given must match (AND); at least one is required. List several rules for OR.',
    ),
    permissions: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description:
        'IAM permission names (`aiplatform.endpoints.predict`), patterns (`aiplatform.endpoints.*`, `*`) or groups ' +
        '(`predict`, `generate`, `embed`, `training`, `read`, `cache`, `tuning`, `vectorSearch`, `rag`, `agents`, ' +
        '`featureStore`, `datasets`, `deploy`, `evaluate`, `admin`; see docs/vertex-operations.md).',
    }),
    resources: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Resource name patterns; `*` matches one path segment (or part of one), `**` any number of segments. Default: any.',
      }),
    ),
    projects: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Default: any configured project.' })),
    locations: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Default: any configured location.' })),
    mode: Type.Optional(
      Type.Union([Type.Literal('enforce'), Type.Literal('dryRun')], {
        description:
          '`enforce` (the default when left out): the rule decides. `dryRun`: the rule is evaluated and its would-be ' +
          'outcome recorded (audit field `dryRun`, metric `kube_vertex_proxy_policy_dry_run_total{rule,outcome}`), but it ' +
          'never changes a decision.',
      }),
    ),
    conditions: Type.Optional(
      strictObject(
        { jobs: Type.Optional(JobConditionsSchema) },
        'Conditions on the request body (allow rules only). An allow rule whose conditions the body fails does not match.',
      ),
    ),
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

export const AuditSinkSchema = Type.Union(
  [
    strictObject(
      { type: Type.Literal('stdout') },
      "Cloud Logging structured entries on stdout (one JSON line per request), shipped by GKE's logging agent. Not a " +
        'durable store: it does not count for `strict`.',
    ),
    strictObject(
      {
        type: Type.Literal('sqlite'),
        path: Type.String({
          minLength: 1,
          description:
            'Database file (WAL mode; `-wal`/`-shm` files beside it). A relative path is resolved against the directory of ' +
            'the config file. In a container with a read-only root filesystem, point it at a mounted volume.',
        }),
      },
      "Embedded SQLite store (Node's built-in `node:sqlite`): one replica only.",
    ),
    strictObject(
      {
        type: Type.Literal('postgres'),
        url: Type.Optional(
          Type.String({
            minLength: 1,
            description:
              '`postgres://user@host:5432/db` — a URL with a password here is accepted with a WARNING at every start (it ' +
              'sits in the ConfigMap); use `urlFile` for it.',
          }),
        ),
        urlFile: Type.Optional(
          Type.String({ minLength: 1, description: 'File holding the connection URL (a mounted Secret); read at start.' }),
        ),
        table: Type.Optional(
          Type.String({
            pattern: '^[a-z_][a-z0-9_]{0,47}$',
            description:
              'Table name, at most 48 characters so that the names of its indexes and its `<table>_open` table fit ' +
              "PostgreSQL's 63 (created, with its indexes, on start). Default: `kvp_audit_records`.",
          }),
        ),
        maxConnections: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Connection pool size. Default: 4.' })),
        pipelineDepth: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: 8,
            description:
              'Group-commit batches in flight at once: once as many records wait as the batch being committed holds, the ' +
              'next batch is inserted while it commits, and committed only after it (rolled back if it failed). 1: one ' +
              'batch at a time (the default). At most `maxConnections`. Default: 1.',
          }),
        ),
      },
      'PostgreSQL store (Cloud SQL in production), shared by every replica.',
    ),
  ],
  { description: 'Where audit records go.' },
);

export const AuditSchema = strictObject(
  {
    durability: Type.Union([Type.Literal('strict'), Type.Literal('relaxed')], {
      default: 'strict',
      description:
        "`strict`: an allowed request's decision record is committed to every durable store before the request is " +
        'forwarded (503 UNAVAILABLE, nothing forwarded, when a store cannot take it), and completed when the response ' +
        'ends. `relaxed`: records are written after the response, batched, through a bounded queue.',
    }),
    sinks: Type.Array(AuditSinkSchema, {
      default: [{ type: 'stdout' }, { type: 'sqlite', path: 'audit.db' }],
      description:
        'Sinks, all written. `strict` needs at least one durable store (sqlite or postgres); an empty list (relaxed only) ' +
        'writes no audit record at all. Queries and `audit verify` read the postgres store when there is one, else the ' +
        'first store listed.',
    }),
    replicaId: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$',
        description: 'Names this writer in the hash chain. Default: the host name (the pod name). Two live processes must never share one.',
      }),
    ),
    retention: Duration(
      '2160h',
      "Records older than this are deleted (in batches) from the stores, from the oldest end of each replica's hash chain (a " +
        'record stamped earlier than one written before it waits for that one). `0h` keeps them forever.',
    ),
    retentionInterval: Duration('1h', 'How often the retention sweep runs.'),
    maxBatch: Type.Integer({
      minimum: 1,
      maximum: 2000,
      default: 500,
      description: 'Most records in one transaction (one multi-row insert).',
    }),
    commitDelay: Duration(
      '10ms',
      'How long a record no request waits on (every record in `relaxed` mode; the completion of a `strict` record) may wait ' +
        'for others to share its transaction in the durable stores. Below saturation a commit is shorter than the gap between ' +
        'requests, so without it each record is a transaction and an fsync of its own. A `strict` decision record never ' +
        'waits: it starts a transaction at once and takes the waiting records along. `0ms`: no wait.',
    ),
    maxQueue: Type.Integer({
      minimum: 1,
      default: 50_000,
      description:
        'Records waiting to be written after their response (relaxed mode; completions in strict mode). Beyond it records ' +
        'are dropped, counted and logged.',
    }),
    console: strictObject(
      {
        enabled: Type.Boolean({
          default: false,
          description:
            "Serve the auditor's console at `/audit/ui/` on the data port (read-only; access by the policy's `audit.read` " +
            'grants). Needs a durable store.',
        }),
        iapAudience: Type.Optional(
          Type.String({
            pattern: '^/projects/[0-9]+/(global/backendServices|apps)/[A-Za-z0-9._-]+$',
            description:
              "Behind Identity-Aware Proxy: the `aud` of IAP's signed header `x-goog-iap-jwt-assertion` " +
              '(`/projects/PROJECT_NUMBER/global/backendServices/SERVICE_ID`). When set, a request carrying that header is ' +
              'signed in as the Google account it names. Without it the header is ignored and only the token sign-in works.',
          }),
        ),
        iapJwksUri: Type.String({
          default: 'https://www.gstatic.com/iap/verify/public_key-jwk',
          description: "IAP's public keys (JWK set).",
        }),
      },
      "The auditor's console: the audit trail in a browser.",
      {},
    ),
    stdout: strictObject(
      {
        format: Type.Union([Type.Literal('compact'), Type.Literal('full')], {
          default: 'compact',
          description:
            "Shape of the `stdout` sink's line. `compact`: each fact once — severity, time, labels, trace and " +
            "`httpRequest` (method, path, status, sizes, latency, caller address and agent) in the keys GKE's logging " +
            "agent lifts, the rest of the record under `kubeVertexProxy` (about a third of `full`'s bytes). `full`: also " +
            'an `AuditLog`-shaped payload (`methodName`, `resourceName`, `authenticationInfo`, `authorizationInfo`, ' +
            '`requestMetadata`, `status`), a `message`, and the whole record under `kubeVertexProxy`. The durable stores ' +
            'keep every field either way.',
        }),
      },
      "The `stdout` sink's line (see docs/audit.md for both shapes).",
      {},
    ),
  },
  'The audit trail: one record per request, allowed or not.',
  {},
);

/** HTTP methods a callback route may allow. */
export const CALLBACK_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export const CallbackRouteSchema = strictObject(
  {
    prefix: Type.String({
      pattern: '^(/[A-Za-z0-9._~-]+)+$',
      description:
        'Path prefix on the data port (`/callbacks/training`); whole segments, no trailing `/`. A request matches the ' +
        'longest prefix it equals or continues with `/`.',
    }),
    upstream: Type.String({
      minLength: 1,
      description:
        'The in-cluster Service the route forwards to (`http://trainer.ml.svc.cluster.local:8080`, optionally with a base ' +
        'path). TLS is verified.',
    }),
    rewritePrefix: Type.Optional(
      Type.String({
        pattern: '^/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?$',
        description: 'Replaces `prefix` in the forwarded path (`/` strips it). Default: the prefix is kept.',
      }),
    ),
    callers: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description:
        'Who may call: Google service-account emails, email patterns with `*` in the part before `@` over your own ' +
        "project's domain (`*@my-proj.iam.gserviceaccount.com`; refused over domains Google shares between customers, such " +
        'as `gcp-sa-*.iam.gserviceaccount.com` or `developer.gserviceaccount.com`: write ' +
        '`service-PROJECT_NUMBER@gcp-sa-aiplatform.iam.gserviceaccount.com` exactly), a 21-digit account unique id ' +
        "(`sub`), or a Workload Identity Federation principal (`principal://…`, matched exactly against the token's " +
        '`email` or `sub`).',
    }),
    methods: Type.Array(Type.Union(CALLBACK_METHODS.map((m) => Type.Literal(m))), {
      minItems: 1,
      default: ['POST'],
      description: 'HTTP methods allowed; others get 405.',
    }),
    bodyLimit: Size('1MiB', 'Largest request body; larger ones get 413 before anything is forwarded.'),
    timeout: Duration('30s', "Longest wait for the upstream's response headers, and longest silence between body chunks."),
    audience: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "The `aud` of the identity assertion the backend receives. Default: the route's `upstream` followed by its " +
          '`prefix` (`http://trainer.ml.svc:8080/callbacks/training`), so each route has its own.',
      }),
    ),
    tokenAudiences: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description:
          "The `aud` a caller's Google ID token must carry on this route (usually the route's public URL); each must be " +
          "one of a Google issuer's `audiences`. A token minted for another route is then refused here. Default: any " +
          'audience the issuer accepts.',
      }),
    ),
  },
  'A callback route: Vertex AI workloads (Google ID tokens) → an in-cluster Service.',
);

export const CallbacksSchema = strictObject(
  {
    assertion: strictObject(
      {
        header: Type.String({
          pattern: '^x-[a-z0-9-]{1,62}$',
          default: 'x-kvp-assertion',
          description: "Request header carrying the identity assertion (lower case), like IAP's `x-goog-iap-jwt-assertion`.",
        }),
        keyFile: Type.Optional(
          Type.String({
            minLength: 1,
            description:
              'ES256 (P-256) private key: a PKCS#8 PEM or a private JWK (JSON), e.g. from a mounted Secret. Default: a key ' +
              'generated at start (one per process: with several replicas, mount one key so every replica signs with it).',
          }),
        ),
        issuer: Type.String({ minLength: 1, default: 'kube-vertex-proxy', description: 'The `iss` of every assertion.' }),
        lifetime: Duration('60s', 'Assertion lifetime (`exp - iat`); at most 10m.'),
      },
      "The identity assertion the backend receives instead of the caller's token: an ES256 JWT signed by the proxy, public " +
        'keys at `/.well-known/jwks.json` on the admin port.',
      {},
    ),
    routes: Type.Array(CallbackRouteSchema, {
      default: [],
      description: 'Callback routes on the data port. Callers authenticate with Google ID tokens (an issuer of `type: google`).',
    }),
  },
  'Callbacks: Vertex AI workloads calling into the cluster through the proxy.',
  {},
);

export const TracingSchema = strictObject(
  {
    enabled: Type.Boolean({
      default: false,
      description:
        'Export OpenTelemetry traces (OTLP over HTTP): one server span per request, child spans for token verification on ' +
        'a cache miss, TokenReview, the strict audit commit and the upstream call, whose `traceparent` is sent on to ' +
        'Vertex AI and callback backends. Off: the SDK is not even loaded. `OTEL_SDK_DISABLED=true` turns it off too.',
    }),
    endpoint: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description:
          'OTLP/HTTP base URL of the collector (`/v1/traces` is appended). Default: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` ' +
          '(used as is) or `OTEL_EXPORTER_OTLP_ENDPOINT`, else `http://localhost:4318`. Exporter headers, timeout, ' +
          'compression and TLS files come from the standard `OTEL_EXPORTER_OTLP_*` variables.',
      }),
    ),
    sampleRatio: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        description:
          "Share of new traces recorded (by trace id, so every service samples the same traces); a caller's sampled " +
          '`traceparent` flag is followed (parent-based). Default: `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG` when ' +
          'set, else 0.01.',
      }),
    ),
    resourceAttributes: Type.Record(Type.String({ minLength: 1, maxLength: 255 }), Type.String({ maxLength: 255 }), {
      default: {},
      description:
        'OpenTelemetry resource attributes (`deployment.environment.name`, `k8s.cluster.name`, …), over those from ' +
        '`OTEL_RESOURCE_ATTRIBUTES`. `service.name` defaults to `OTEL_SERVICE_NAME`, else `kube-vertex-proxy`.',
    }),
  },
  'OpenTelemetry tracing.',
  {},
);

export const LimitRuleSchema = strictObject(
  {
    id: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$',
      description: 'Unique limit id; named in refusals (QuotaFailure), audit records and metrics.',
    }),
    description: Type.Optional(Type.String()),
    mode: Type.Union([Type.Literal('enforce'), Type.Literal('dryRun')], {
      default: 'enforce',
      description:
        '`enforce`: a request over the limit gets 429 RESOURCE_EXHAUSTED. `dryRun`: counted and reported (metric, audit ' +
        'record), never refused.',
    }),
    subjects: PolicyRuleSchema.properties.subjects,
    permissions: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Scope, in policy syntax (permissions, patterns or groups such as `generate`). Default: every operation.',
      }),
    ),
    resources: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Resource name patterns, in policy syntax. Default: any.' }),
    ),
    per: Type.Union([Type.Literal('namespace'), Type.Literal('serviceAccount')], {
      default: 'namespace',
      description: 'The bucket: one budget per namespace, or one per service account (`namespace/name`).',
    }),
    requestsPerMinute: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Requests admitted per calendar minute (fixed window, UTC).' }),
    ),
    concurrentRequests: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Requests in flight at once (from admission until the response ends, streams included).' }),
    ),
    tokensPerMinute: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          "Tokens (the responses' reported totals) per calendar minute. Checked before forwarding against what is already " +
          'charged; charged when the response ends.',
      }),
    ),
    tokensPerDay: Type.Optional(Type.Integer({ minimum: 1, description: 'Tokens per calendar day (UTC).' })),
    tokensPerMonth: Type.Optional(Type.Integer({ minimum: 1, description: 'Tokens per calendar month (UTC).' })),
  },
  'A limit: who it is about (policy subjects), which calls it counts (optional policy scope), the bucket, and the limits. ' +
    'Every matching rule applies.',
);

export const LimitsSchema = strictObject(
  {
    store: Type.Union(
      [
        strictObject(
          { type: Type.Literal('memory') },
          'Counters in this process: right for one replica only (N replicas would admit N times the limit).',
        ),
        strictObject(
          {
            type: Type.Literal('redis'),
            url: Type.Optional(
              Type.String({
                minLength: 1,
                description: '`redis://host:6379/0` or `rediss://…` (TLS) — prefer `urlFile` when it carries a password.',
              }),
            ),
            urlFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the URL (a mounted Secret); read at start.' })),
            keyPrefix: Type.Optional(
              Type.String({ maxLength: 64, description: 'Prefix of every key the proxy writes. Default: `kvp:limits:`.' }),
            ),
            onUnavailable: Type.Optional(
              Type.Union([Type.Literal('failClosed'), Type.Literal('failOpen')], {
                description:
                  'While Redis cannot answer: `failClosed` (default) refuses requests that a limit applies to (503 ' +
                  'UNAVAILABLE), `failOpen` admits them uncounted. Logged once per outage, shown by ' +
                  '`kube_vertex_proxy_limit_store_available`; enforcement resumes by itself.',
              }),
            ),
            timeout: Type.Optional(
              Type.String({
                pattern: '^[0-9]+(ms|s|m|h)$',
                description: "Longest wait for Redis on a request's path; longer counts as unavailable. Default: `250ms`.",
              }),
            ),
          },
          'Counters in Redis (Memorystore for Redis in production), updated atomically by Lua scripts: every replica ' +
            'enforces one shared limit.',
        ),
      ],
      { default: { type: 'memory' }, description: 'Where the counters live.' },
    ),
    rules: Type.Array(LimitRuleSchema, {
      default: [],
      description: 'Limit rules; every rule whose subjects and scope match a request applies to it.',
    }),
  },
  'Rate limits, concurrency limits and token budgets per namespace or service account.',
  {},
);

export const UsageSchema = strictObject(
  {
    metricLabels: Type.Array(Type.Union([Type.Literal('namespace'), Type.Literal('serviceAccount')]), {
      default: [],
      uniqueItems: true,
      description: 'Identity labels on the usage and limit metrics (`namespace`, `service_account`). Default: none (model and type only).',
    }),
    maxSeries: Type.Integer({
      minimum: 1,
      default: 500,
      description:
        'Most label sets per usage metric; beyond it new identities are folded into `namespace="other"` ' +
        '(`service_account="other"`) and counted by `kube_vertex_proxy_usage_series_folded_total`.',
    }),
  },
  'Token usage accounting (read from Vertex AI responses).',
  {},
);

export const AttributionSchema = strictObject(
  {
    requestLabels: Type.Boolean({
      default: false,
      description:
        'Add `labels` `kvp-namespace` and `kvp-service-account` to generateContent/streamGenerateContent bodies (Vertex AI ' +
        'passes request labels to Cloud Billing). Labels the caller set are kept; a caller may not set `kvp-` labels ' +
        'itself (400).',
    }),
    jobLabels: Type.Boolean({
      default: false,
      description:
        "Add the labels `kvp-namespace` and `kvp-service-account` (the caller's) to created jobs, pipelines and endpoints, " +
        'so billing exports split by team. The forwarded body is then the parsed body plus those labels.',
    }),
    requestReason: Type.Boolean({
      default: false,
      description:
        "Send `X-Goog-Request-Reason: <request id>` upstream (the audit record's `requestId`), so Google's records and the " +
        "audit record can be joined. A caller's own header of that name is never forwarded.",
    }),
  },
  "Attribution in Google's own records: every call reaches Vertex AI under the proxy's identity.",
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
    reload: strictObject(
      {
        watch: Type.Boolean({
          default: true,
          description:
            'Watch the config file (and its directory, so a ConfigMap symlink swap is seen) and reload the policy when it ' +
            'changes. SIGHUP always reloads.',
        }),
        debounce: Duration('500ms', 'Changes closer together than this are read once.'),
      },
      'Live policy reload. Only `policy` (and `kubernetes.static`) take effect without a restart; other changes are logged ' +
        'and wait for the next start.',
      {},
    ),
    audit: AuditSchema,
    callbacks: CallbacksSchema,
    tracing: TracingSchema,
    limits: LimitsSchema,
    usage: UsageSchema,
    attribution: AttributionSchema,
  },
  'kube-vertex-proxy configuration file.',
);

export type Config = Static<typeof ConfigSchema>;
export type IssuerConfig = Static<typeof IssuerSchema>;
export type PolicyRule = Static<typeof PolicyRuleSchema>;
export type CallbacksConfig = Static<typeof CallbacksSchema>;
export type CallbackRouteConfig = Static<typeof CallbackRouteSchema>;
export type LabelSelector = Static<typeof LabelSelectorSchema>;
export type AuditSinkConfig = Static<typeof AuditSinkSchema>;
export type TracingConfig = Static<typeof TracingSchema>;
export type JobConditionsConfig = Static<typeof JobConditionsSchema>;
export type VertexIdentityConfig = Static<typeof VertexSchema>['identities'][number];
export type LimitRule = Static<typeof LimitRuleSchema>;
export type LimitsConfig = Static<typeof LimitsSchema>;

/** Exposed for generators (docs reference, helm values schema). */
export const schemas: Record<string, TSchema> = { ConfigSchema };
