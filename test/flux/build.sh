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
# One calm line per stage, Go's output in the log (scripts/stage.sh). First-build figures:
# two cores, after the test control plane (whose Kubernetes packages they share) was built.
source "$root/scripts/stage.sh"
log="$root/.cache/logs/flux-build.log"
mkdir -p "$(dirname "$log")" && : >"$log"
run_stage flux 1/3 "downloading Go modules" "$log" 20 go mod download
run_stage flux 2/3 "building source-controller" "$log" 160 go build -ldflags="-s -w" -o "$out/source-controller" github.com/fluxcd/source-controller
run_stage flux 3/3 "building kustomize-controller" "$log" 35 go build -ldflags="-s -w" -o "$out/kustomize-controller" github.com/fluxcd/kustomize-controller
# The CRDs ship in the controllers' module zips (config/crd/bases).
for mod in github.com/fluxcd/source-controller github.com/fluxcd/kustomize-controller; do
  dir="$(go list -m -f '{{.Dir}}' "$mod")"
  cp "$dir"/config/crd/bases/*.yaml "$crds/"
done
chmod -R u+w "$crds"
echo "$hash" > "$out/flux.sha256"
echo "flux: built source-controller and kustomize-controller in $(stage_duration $(( $(date +%s) - start )))"
