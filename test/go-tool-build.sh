#!/usr/bin/env bash
# Builds a Go command the tests need from the Go module in <dir> (its go.mod pins the version)
# into .cache/bin/<name>, once per machine: cached by the hash of the module's go.mod, go.sum,
# Go files and build.sh (with this script). Used by test/helm, test/actionlint and test/notation.
#
#   test/go-tool-build.sh <dir> <name> <package> <first build seconds> [ldflags...]
#
# <first build seconds>: what building <package> takes on two cores the first time, in the order
# the tests build the tools (the test control plane's packages already compiled); its progress
# line counts against it (scripts/stage.sh), and later builds against what the last one took.
set -euo pipefail
dir="$1" name="$2" package="$3" first="$4"
shift 4
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${GO_TOOL_BIN_DIR:-$root/.cache/bin}"

hash="$(cd "$dir" && cat go.mod go.sum ./*.go build.sh "$root/test/go-tool-build.sh" | sha256sum | cut -d' ' -f1)"
if [[ -x "$out/$name" && -f "$out/$name.sha256" && "$(cat "$out/$name.sha256")" == "$hash" ]]; then
  echo "$name: up to date ($out/$name)"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "$name: Go is required to build $name for the tests (go 1.26 or newer)" >&2
  exit 1
fi
mkdir -p "$out"
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
cd "$dir"
start=$(date +%s)
source "$root/scripts/stage.sh"
log="$root/.cache/logs/$name-build.log"
mkdir -p "$(dirname "$log")" && : >"$log"
run_stage "$name" 1/2 "downloading Go modules" "$log" 10 go mod download
run_stage "$name" 2/2 "building $name" "$log" "$first" go build -ldflags="-s -w $*" -o "$out/$name" "$package"
echo "$hash" > "$out/$name.sha256"
echo "$name: built in $(stage_duration $(( $(date +%s) - start )))"
