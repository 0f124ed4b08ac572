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
# One calm line per stage; Go's own output (a line per module downloaded) goes to the log.
source "$root/scripts/stage.sh"
log="$root/.cache/logs/testcp-build.log"
mkdir -p "$(dirname "$log")" && : >"$log"
# What each stage takes on a first build, measured on two cores with empty Go caches
# (downloads 7 s from a nearby module proxy, testcp 324 s, kubectl 21 s: it shares most packages).
stages=(1/3 15 2/3 330 3/3 25)
start=$(date +%s)
cd "$here"
if [[ ! -f "$out/testcp.sha256" ]]; then
  echo "testcp: building the test control plane (kube-apiserver, etcd, controllers) and kubectl $k8s_version from Go modules, once: $(stage_about "$(stage_expected_total "$log" "${stages[@]}")") on two cores; Go's output goes to $log"
fi
run_stage testcp 1/3 "downloading Go modules" "$log" "${stages[1]}" go mod download
run_stage testcp 2/3 "building testcp" "$log" "${stages[3]}" go build -ldflags="$ldflags" -o "$out/testcp" .
run_stage testcp 3/3 "building kubectl" "$log" "${stages[5]}" go build -ldflags="$ldflags" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl
echo "$hash" > "$out/testcp.sha256"
echo "testcp: built $out/testcp and $out/kubectl ($k8s_version) in $(stage_duration $(( $(date +%s) - start )))"
