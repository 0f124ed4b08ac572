#!/usr/bin/env bash
# Builds actionlint (the version go.mod pins) into .cache/bin, to lint the release workflow that
# cannot run here.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../go-tool-build.sh" "$here" actionlint github.com/rhysd/actionlint/cmd/actionlint 10
