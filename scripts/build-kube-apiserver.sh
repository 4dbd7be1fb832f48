#!/usr/bin/env bash
# Builds kube-apiserver at a pinned version from the k8s.io/kubernetes Go module, once, into a cache outside
# the clone; prints the binary's path. The integration tests run the real Kubernetes API against it
# (test/helpers/kube-apiserver.ts), with etcd from Debian's etcd-server.
#
# The module zip on the Go module proxy has no staging/ directories, which the repository's go.mod replaces
# its k8s.io/* dependencies with, and its go.work names them too. So: build with GOWORK=off, drop go.work,
# and swap each `k8s.io/X => ./staging/src/k8s.io/X` replace for a require of the published k8s.io/X at the
# matching v0.MINOR.PATCH (https://github.com/kubernetes/kubernetes/tree/master/staging#staging-directory).
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.2}"
STAGING_VERSION="v0${KUBE_VERSION#v1}"
cache="${KVP_KUBE_APISERVER_DIR:-$HOME/.cache/kube-vertex-proxy/kube-apiserver-$KUBE_VERSION}"
bin="$cache/kube-apiserver"

if [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -qx "Kubernetes $KUBE_VERSION"; then
  echo "$bin"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "build-kube-apiserver: Go is needed to build kube-apiserver $KUBE_VERSION" >&2
  exit 1
fi

echo "build-kube-apiserver: building kube-apiserver $KUBE_VERSION (a few minutes, once)" >&2
mkdir -p "$cache"
work="$(mktemp -d "$cache/build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

export GOWORK=off GOFLAGS=-mod=mod
src_dir="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$src_dir" || ! -d "$src_dir" ]]; then
  echo "build-kube-apiserver: could not download k8s.io/kubernetes@$KUBE_VERSION" >&2
  exit 1
fi
cp -r "$src_dir" "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"
rm -f go.work go.work.sum

edits=()
while read -r module; do
  edits+=("-dropreplace=$module" "-require=$module@$STAGING_VERSION")
done < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' go.mod)
if ((${#edits[@]} == 0)); then
  echo "build-kube-apiserver: found no staging replaces in go.mod" >&2
  exit 1
fi
go mod edit "${edits[@]}"
minor="${STAGING_VERSION#v0.}"
minor="${minor%%.*}"
go build -trimpath -ldflags "-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" -o "$work/kube-apiserver" ./cmd/kube-apiserver
mv "$work/kube-apiserver" "$bin"
echo "$bin"
