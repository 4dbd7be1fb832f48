/**
 * The upstream of every benchmark scenario: the loopback Vertex AI stand-in
 * (dev/standins/vertex.ts) in its own process, so its CPU is not counted as
 * the proxy's; and a second one that also answers requests without an
 * `Authorization` header, for the peer that strips its callers' tokens and
 * adds none (kube-rbac-proxy). Prints `{"url": …, "anonymousUrl": …}` on
 * stdout once listening; SIGTERM stops both.
 *
 * argv: `--stream-chunks N` (messages per streamed answer).
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { startVertexStandIn } from '../dev/standins/vertex.js';

const { values } = parseArgs({ options: { 'stream-chunks': { type: 'string', default: '200' } } });
const streamChunks = Number(values['stream-chunks']);
const standIn = await startVertexStandIn({ streamChunks });
const anonymous = await startVertexStandIn({ streamChunks, acceptMissingAuthorization: true });
// The stand-in records every request for tests; a benchmark would grow without bound.
setInterval(() => {
  standIn.requests.length = 0;
  anonymous.requests.length = 0;
}, 250).unref();
process.stdout.write(`${JSON.stringify({ url: standIn.url, anonymousUrl: anonymous.url })}\n`);
process.once('SIGTERM', () => {
  void Promise.all([standIn.close(), anonymous.close()]).then(() => process.exit(0));
});
