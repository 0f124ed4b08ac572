#!/usr/bin/env bash
# Builds the Helm CLI (the version go.mod pins) into .cache/bin for the chart tests, from its
# Go module through the Go module proxy, as the test control plane and Flux's controllers are.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(cd "$here" && GOWORK=off GOTOOLCHAIN=local go list -m -f '{{.Version}}' helm.sh/helm/v4)"
# helm version reports what upstream's Makefile stamps.
exec bash "$here/../go-tool-build.sh" "$here" helm helm.sh/helm/v4/cmd/helm 100 \
  "-X helm.sh/helm/v4/internal/version.version=$version" "-X helm.sh/helm/v4/internal/version.gitTreeState=clean"
