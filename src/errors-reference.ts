/**
 * The error reference (docs/errors.md), generated from {@link ERROR_CODES} so
 * the docs list every code the proxy can answer with, with the status it
 * answers with. The example bodies are rendered by the one serializer,
 * {@link toGoogleErrorBody}. A test checks the committed file against this
 * output (fastify keeps its error docs in step with its code the same way).
 *
 * @module
 */
import { ERROR_CODES, ERROR_DOMAIN, GRPC_CODE, ProxyError, toGoogleErrorBody, type ProxyErrorCode } from './errors.js';

const escape = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

const json = (value: unknown) => ['```json', JSON.stringify(value, null, 2), '```'];

export function errorReference(): string {
  const codes = (Object.keys(ERROR_CODES) as ProxyErrorCode[]).sort();
  const denied = new ProxyError(
    'ERR_AUTHZ_DENIED',
    "Permission 'aiplatform.endpoints.predict' denied on resource " +
      "'//aiplatform.googleapis.com/projects/my-proj/locations/us-central1/endpoints/123' for " +
      'system:serviceaccount:ml:trainer: no policy rule allows it.',
    {
      reason: 'no-matching-rule',
      metadata: {
        permission: 'aiplatform.endpoints.predict',
        resource: 'projects/my-proj/locations/us-central1/endpoints/123',
        principal: 'system:serviceaccount:ml:trainer',
      },
    },
  );
  const unreachable = new ProxyError('ERR_FORWARD_UPSTREAM_UNREACHABLE', 'us-central1-aiplatform.googleapis.com unreachable', {
    metadata: { host: 'us-central1-aiplatform.googleapis.com' },
  });
  return [
    '# Error reference',
    '',
    'Generated from the table in `src/errors.ts` by `npm run docs:errors`; do not edit by hand.',
    '',
    'Every refusal the proxy makes is answered in the JSON error shape of Google APIs',
    '([AIP-193](https://google.aip.dev/193), [Cloud APIs error model](https://cloud.google.com/apis/design/errors)),',
    'with `Content-Type: application/json; charset=UTF-8`. Errors that Vertex AI itself returns are passed through',
    "unchanged (except a 401 to the proxy's own credential, which becomes `ERR_FORWARD_CREDENTIAL_REJECTED`); only the",
    'errors below come from the proxy. A caller tells them apart by the `google.rpc.ErrorInfo`',
    `detail: the proxy's has \`domain\` \`${ERROR_DOMAIN}\`, a \`reason\` that is the code without its \`ERR_\` prefix,`,
    'and the full code in `metadata.code`.',
    '',
    '- `error.code`: the HTTP status of the response.',
    '- `error.status`: the Google canonical status name (the gRPC status code name).',
    '- `error.message`: for a 4xx, what was refused and why; for a 5xx, a fixed sentence (the cause is logged under',
    '  the request id, never sent).',
    '- `error.details[0]`: `google.rpc.ErrorInfo` with `reason`, `domain` and `metadata` (`code`, and for a 4xx the',
    '  facts of the refusal, such as the permission and resource of a denial).',
    '- `error.details[1]`: `google.rpc.RequestInfo` with `requestId`, the `requestId` of the audit record and log lines',
    '  of this request.',
    '- A 429 from a limit also carries `google.rpc.QuotaFailure` and `google.rpc.RetryInfo`.',
    '',
    'Headers: every 401 has `WWW-Authenticate: Bearer realm="kube-vertex-proxy"` (with `error="invalid_token"` for all',
    'but `ERR_AUTHN_MISSING_CREDENTIALS`); a 405 has `Allow`; 429s and `ERR_LIMIT_STORE_UNAVAILABLE` have `Retry-After`.',
    '',
    'A denial (403):',
    '',
    ...json(toGoogleErrorBody(denied, '7d3f0c9e-6f0b-4c43-9a55-2b1f0d7e5a10')),
    '',
    'A 5xx: the message is generic and the metadata holds only the code.',
    '',
    ...json(toGoogleErrorBody(unreachable, '0b8e4d52-41d4-4f37-8a0e-9c5f3b2a6d71')),
    '',
    'The audit record of a refused request stores the same code (`errorCode`) and a finer `reason`.',
    '',
    '## Codes',
    '',
    '| Code | HTTP | Status (gRPC code) | Meaning |',
    '|---|---|---|---|',
    ...codes.map((code) => {
      const spec = ERROR_CODES[code];
      return `| \`${code}\` | ${String(spec.http)} | \`${spec.status}\` (${String(GRPC_CODE[spec.status])}) | ${escape(spec.meaning)} |`;
    }),
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  process.stdout.write(errorReference());
}
