#!/usr/bin/env bash
# Builds actionlint (the version go.mod pins) into .cache/bin, to lint the release workflow that
# cannot run here. Cached: runs only when go.mod, go.sum, tools.go or this script changed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${ACTIONLINT_BIN_DIR:-$root/.cache/bin}"

hash="$(cd "$here" && cat go.mod go.sum tools.go build.sh | sha256sum | cut -d' ' -f1)"
if [[ -x "$out/actionlint" && -f "$out/actionlint.sha256" && "$(cat "$out/actionlint.sha256")" == "$hash" ]]; then
  echo "actionlint: up to date ($out/actionlint)"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "actionlint: Go is required to build actionlint for the workflow test (go 1.26 or newer)" >&2
  exit 1
fi
mkdir -p "$out"
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
cd "$here"
start=$(date +%s)
go build -ldflags="-s -w" -o "$out/actionlint" github.com/rhysd/actionlint/cmd/actionlint
echo "$hash" > "$out/actionlint.sha256"
echo "actionlint: built $("$out/actionlint" -version | head -1) in $(( $(date +%s) - start ))s"
