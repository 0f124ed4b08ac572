#!/usr/bin/env bash
# Builds the test control plane (testcp) and a kubectl of the same Kubernetes version
# into .cache/bin. Cached: the build runs only when a source file of this module
# changed since the last successful build (hash of go.mod, go.sum, *.go, this script).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${TESTCP_BIN_DIR:-$root/.cache/bin}"
k8s_version="v1.34.10"

hash="$(cd "$here" && cat go.mod go.sum build.sh $(ls *.go | sort) | sha256sum | cut -d' ' -f1)"
if [[ -x "$out/testcp" && -x "$out/kubectl" && -f "$out/testcp.sha256" && "$(cat "$out/testcp.sha256")" == "$hash" ]]; then
  echo "testcp: up to date ($out/testcp)"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "testcp: Go is required to build the test control plane (go 1.24 or newer)" >&2
  exit 1
fi
mkdir -p "$out"
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=34 -X $pkg.gitTreeState=clean"
done
start=$(date +%s)
cd "$here"
go build -ldflags="$ldflags" -o "$out/testcp" .
go build -ldflags="$ldflags" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl
echo "$hash" > "$out/testcp.sha256"
echo "testcp: built $out/testcp and $out/kubectl ($k8s_version) in $(( $(date +%s) - start ))s"
