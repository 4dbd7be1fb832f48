#!/usr/bin/env bash
# Installs what `npm test` needs beyond npm packages, when it is missing:
#   openssl, curl, shellcheck       (Debian)  TLS regression test, deploy/ examples, script checks
#   chromium                        (Debian)  the audit console's end-to-end test (playwright-core drives it)
#   PostgreSQL server binaries      (Debian)  the audit-store tests start a throwaway cluster
#   etcd, kubectl                   (Debian: etcd-server, kubernetes-client) the Kubernetes API tests
#   kube-apiserver                  (built from the Go module, scripts/build-kube-apiserver.sh) the same
#   prometheus, promtool            (Debian)  the chart's alert rules (promtool check/test rules); a real scrape of /metrics
#   redis-server                    (Debian)  the shared-limit tests start a throwaway Redis
#   helm                            (go install) chart lint/template tests
#   a Python venv with the Vertex AI SDK and google-genai (PyPI) the Python examples run through the proxy
# Runs as `pretest`, so `npm test` works on a fresh machine; prints what it installs.
# Without root it does not install Debian packages: it names them and fails.
set -euo pipefail

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "test prerequisites: missing Debian packages: ${missing[*]} (install them: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "test prerequisites: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# helm is not a Debian package; Go is on the machine. The chart tests look on PATH, then in $(go env GOPATH)/bin.
HELM_VERSION=v3.22.0
if ! command -v helm >/dev/null 2>&1; then
  if ! command -v go >/dev/null 2>&1; then
    echo "test prerequisites: helm is missing and there is no Go to build it (go install helm.sh/helm/v3/cmd/helm@${HELM_VERSION})" >&2
    exit 1
  fi
  gobin="$(go env GOPATH)/bin"
  if [[ ! -x "$gobin/helm" ]]; then
    echo "test prerequisites: building helm ${HELM_VERSION} with go install (a few minutes, once)" >&2
    go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  fi
fi

# The Python SDK example runs through the proxy in the tests, with the official client in a venv
# outside the clone (test/helpers/tools.ts finds it there).
venv="${KVP_PYTHON_VENV:-$HOME/.cache/kube-vertex-proxy/python-examples}"
if ! "$venv/bin/python" -c 'import google.cloud.aiplatform_v1, google.genai' >/dev/null 2>&1; then
  echo "test prerequisites: creating $venv with google-cloud-aiplatform and google-genai (once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "google-cloud-aiplatform==2.7.0" "google-genai==2.34.0"
fi

# A real Kubernetes API server for the Kubernetes tests (test/helpers/kube-apiserver.ts): kube-apiserver at a
# pinned version, built once from the Go module proxy into ~/.cache/kube-vertex-proxy/ (a few minutes, once).
bash "$(dirname "${BASH_SOURCE[0]}")/build-kube-apiserver.sh" >/dev/null
