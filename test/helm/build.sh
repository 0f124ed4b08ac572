#!/usr/bin/env bash
# Builds the Helm CLI (the version go.mod pins) into .cache/bin for the chart tests, from its
# Go module through the Go module proxy, as the test control plane and Flux's controllers are.
# Cached: runs only when go.mod, go.sum, tools.go or this script changed since the last build.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${HELM_BIN_DIR:-$root/.cache/bin}"

hash="$(cd "$here" && cat go.mod go.sum tools.go build.sh | sha256sum | cut -d' ' -f1)"
if [[ -x "$out/helm" && -f "$out/helm.sha256" && "$(cat "$out/helm.sha256")" == "$hash" ]]; then
  echo "helm: up to date ($out/helm)"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "helm: Go is required to build the Helm CLI for the chart tests (go 1.26 or newer)" >&2
  exit 1
fi
mkdir -p "$out"
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
cd "$here"
version="$(go list -m -f '{{.Version}}' helm.sh/helm/v4)"
start=$(date +%s)
# helm version reports what upstream's Makefile stamps.
go build -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  -o "$out/helm" helm.sh/helm/v4/cmd/helm
echo "$hash" > "$out/helm.sha256"
echo "helm: built $("$out/helm" version --short) in $(( $(date +%s) - start ))s"
