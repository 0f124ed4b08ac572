#!/usr/bin/env bash
# The helm CLI for the chart tests: built from its Go module (test/helm), cached by hash.
set -euo pipefail
exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/test/helm/build.sh"
