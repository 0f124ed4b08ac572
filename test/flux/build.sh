#!/usr/bin/env bash
# Builds Flux's source-controller and kustomize-controller (the versions go.mod pins) into
# .cache/bin, and copies their CRDs into .cache/flux/crds. Cached: runs only when go.mod,
# go.sum, tools.go or this script changed since the last successful build.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${FLUX_BIN_DIR:-$root/.cache/bin}"
crds="${FLUX_CRD_DIR:-$root/.cache/flux/crds}"

hash="$(cd "$here" && cat go.mod go.sum tools.go build.sh | sha256sum | cut -d' ' -f1)"
if [[ -x "$out/source-controller" && -x "$out/kustomize-controller" && -f "$out/flux.sha256" && "$(cat "$out/flux.sha256")" == "$hash" ]]; then
  echo "flux: up to date ($out/source-controller, $out/kustomize-controller)"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "flux: Go is required to build Flux's controllers for the GitOps tests (go 1.26 or newer)" >&2
  exit 1
fi
mkdir -p "$out" "$crds"
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
start=$(date +%s)
cd "$here"
go build -ldflags="-s -w" -o "$out/source-controller" github.com/fluxcd/source-controller
go build -ldflags="-s -w" -o "$out/kustomize-controller" github.com/fluxcd/kustomize-controller
# The CRDs ship in the controllers' module zips (config/crd/bases).
for mod in github.com/fluxcd/source-controller github.com/fluxcd/kustomize-controller; do
  dir="$(go list -m -f '{{.Dir}}' "$mod")"
  cp "$dir"/config/crd/bases/*.yaml "$crds/"
done
chmod -R u+w "$crds"
echo "$hash" > "$out/flux.sha256"
echo "flux: built source-controller and kustomize-controller in $(( $(date +%s) - start ))s"
