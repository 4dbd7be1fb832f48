/**
 * The upstream of every benchmark scenario: the loopback Vertex AI stand-in
 * (dev/standins/vertex.ts) in its own process, so its CPU is not counted as
 * the proxy's. Prints `{"url": …}` on stdout once listening; SIGTERM stops it.
 *
 * argv: `--stream-chunks N` (messages per streamed answer).
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { startVertexStandIn } from '../dev/standins/vertex.js';

const { values } = parseArgs({ options: { 'stream-chunks': { type: 'string', default: '200' } } });
const standIn = await startVertexStandIn({ streamChunks: Number(values['stream-chunks']) });
// The stand-in records every request for tests; a benchmark would grow without bound.
setInterval(() => {
  standIn.requests.length = 0;
}, 250).unref();
process.stdout.write(`${JSON.stringify({ url: standIn.url })}\n`);
process.once('SIGTERM', () => {
  void standIn.close().then(() => process.exit(0));
});
