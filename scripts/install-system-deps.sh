#!/usr/bin/env bash
# Installs the Debian packages the integration and end-to-end tests use, when missing:
#   docker-registry  the CNCF distribution registry (a real OCI registry with notifications)
#   openssl          to make the certificates and keys of the registry's token auth
#   git              the git server of the GitOps tests (smart HTTP through git http-backend)
#                    and the operator's own git client
#   gnupg            OpenPGP signing of write-back commits (and verifying them in the tests)
#   openssh-server   the SSH git server of the GitOps tests (a second sshd on a loopback port;
#                    the packaged service is not started)
#   tmux             a real terminal for the CLI's table layout tests
# Needs root (or sudo) the first time; does nothing when everything is there.
set -euo pipefail
missing=()
command -v docker-registry >/dev/null || [[ -x /usr/bin/docker-registry ]] || missing+=(docker-registry)
command -v openssl >/dev/null || missing+=(openssl)
command -v git >/dev/null || missing+=(git)
command -v ssh >/dev/null || missing+=(openssh-client)
command -v gpg >/dev/null || missing+=(gnupg)
[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
command -v tmux >/dev/null || missing+=(tmux)
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "need root to install ${missing[*]}: run as root, or install them yourself" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package starts a system registry on :5000; the tests run their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
  "${sudo[@]}" systemctl stop docker-registry || true
  "${sudo[@]}" systemctl disable docker-registry || true
fi
