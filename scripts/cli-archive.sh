#!/usr/bin/env bash
# Builds the kubectl-patchline release archive and its krew manifest:
#   <out>/patchline-cli-<version>.tar.gz   bin/kubectl-patchline, dist/, package.json and the
#                                          production node_modules (npm ci --omit=dev)
#   <out>/patchline-krew.yaml              plugins/krew/patchline.yaml with this version, the
#                                          release download URL and the archive's sha256
# Used by .github/workflows/release.yml; test/e2e/cli-archive.test.ts installs from it.
#
#   scripts/cli-archive.sh <version (vX.Y.Z)> <out dir> [download base URL]
set -euo pipefail
version="$1" out="$2"
base="${3:-https://github.com/patchline-dev/patchline/releases/download/$version}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -f "$root/dist/cli/main.js" ]] || { echo "cli-archive: run npm run build first" >&2; exit 1; }
mkdir -p "$out"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -r "$root/bin" "$root/dist" "$root/package.json" "$root/package-lock.json" "$stage/"
(cd "$stage" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
archive="patchline-cli-$version.tar.gz"
tar -C "$stage" -czf "$out/$archive" bin dist node_modules package.json
sha="$(sha256sum "$out/$archive" | cut -d' ' -f1)"
sed -e "s|^  version: .*|  version: $version|" \
  -e "s|^      uri: .*|      uri: $base/$archive|" \
  -e "s|^      sha256: .*|      sha256: '$sha'|" \
  "$root/plugins/krew/patchline.yaml" > "$out/patchline-krew.yaml"
echo "cli-archive: $out/$archive ($sha) and $out/patchline-krew.yaml"
