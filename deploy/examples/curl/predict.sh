#!/usr/bin/env bash
# Calling Vertex AI through kube-vertex-proxy with curl, from a pod that mounts the projected
# token (deploy/examples/caller-deployment.yaml). The URL is Vertex AI's REST path on the
# proxy's Service; the bearer is the Kubernetes token, never a Google credential.
set -euo pipefail

endpoint="${VERTEX_ENDPOINT:-http://kube-vertex-proxy.vertex-system.svc}"
token_file="${VERTEX_TOKEN_FILE:-/var/run/secrets/kube-vertex-proxy/token}"
project="${VERTEX_PROJECT:-my-project}"
location="${VERTEX_LOCATION:-us-central1}"
endpoint_id="${VERTEX_ENDPOINT_ID:-1234567890}"

# --fail-with-body: a denial (403) prints Google's JSON error, which names the identity,
# the permission, the resource and the reason, and exits non-zero.
curl --silent --show-error --fail-with-body \
  -H "Authorization: Bearer $(cat "$token_file")" \
  -H "Content-Type: application/json" \
  -d '{"instances": [{"text": "hello"}]}' \
  "${endpoint}/v1/projects/${project}/locations/${location}/endpoints/${endpoint_id}:predict"
echo
