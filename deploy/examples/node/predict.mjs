// Calling Vertex AI through kube-vertex-proxy with the official Node.js client
// (@google-cloud/aiplatform), REST transport. Only two things change from a direct call:
// the endpoint (the proxy's Service) and the credential (the pod's projected token).
//
//   VERTEX_ENDPOINT     http://kube-vertex-proxy.vertex-system.svc (or :8080 etc.)
//   VERTEX_TOKEN_FILE   /var/run/secrets/kube-vertex-proxy/token
//   VERTEX_PROJECT, VERTEX_LOCATION, VERTEX_ENDPOINT_ID
import { readFileSync } from 'node:fs';
import aiplatform from '@google-cloud/aiplatform';
import { OAuth2Client } from 'google-auth-library';

const env = (name, fallback) => process.env[name] ?? fallback;
const proxy = new URL(env('VERTEX_ENDPOINT', 'http://kube-vertex-proxy.vertex-system.svc'));
const tokenFile = env('VERTEX_TOKEN_FILE', '/var/run/secrets/kube-vertex-proxy/token');
const project = env('VERTEX_PROJECT', 'my-project');
const location = env('VERTEX_LOCATION', 'us-central1');
const endpointId = env('VERTEX_ENDPOINT_ID', '1234567890');

// The kubelet rotates the token file: the auth client re-reads it through its refresh
// handler whenever the copy it holds is older than a minute, never once per process.
const authClient = new OAuth2Client({ eagerRefreshThresholdMillis: 0 });
authClient.refreshHandler = async () => ({
  access_token: readFileSync(tokenFile, 'utf8').trim(),
  expiry_date: Date.now() + 60_000,
});

const client = new aiplatform.v1.PredictionServiceClient({
  apiEndpoint: proxy.hostname,
  port: Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80)),
  protocol: proxy.protocol.replace(':', ''),
  fallback: true, // REST transport: the proxy speaks Vertex AI's REST API
  authClient,
});

const [response] = await client.predict({
  endpoint: `projects/${project}/locations/${location}/endpoints/${endpointId}`,
  instances: [aiplatform.helpers.toValue({ text: 'hello' })],
});
console.log(JSON.stringify({ predictions: response.predictions.map((p) => aiplatform.helpers.fromValue(p)) }));
