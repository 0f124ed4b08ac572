#!/usr/bin/env bash
# Builds notation-sign, the test tree's Notary Project signing tool (main.go, on the notation-go
# library that go.mod pins), into .cache/bin, as the test control plane and helm are.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../go-tool-build.sh" "$here" notation-sign . 10
