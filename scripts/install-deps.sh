#!/usr/bin/env bash
# install-deps.sh — installs the Debian packages Skywire-C needs to build and test.
# A quick no-op when everything is present. As root it installs what is missing; otherwise
# it prints the command to run and fails.
set -euo pipefail

PKGS=(
    build-essential pkg-config clang libclang-rt-14-dev
    libmicrohttpd-dev libpq-dev libsodium-dev libjson-c-dev libcurl4-openssl-dev
    check libsubunit-dev libevent-dev
    postgresql iproute2 iptables iputils-ping curl procps util-linux ca-certificates
    chromium # headless page check of skychat (tests/integration/skychat_page_check.sh)
    tmux # interactive SSH session test (tests/integration/test_ssh.c)
    # the compose stack under podman (tests/deploy/test_compose.sh)
    podman runc netavark aardvark-dns debootstrap docker-compose
)
# Node.js and npm drive the hypervisor's page test (tests/hypervisor/page_test.sh, playwright-core
# from npm). Only when npm is absent: a Node.js from elsewhere (NodeSource) bundles its own npm
# and conflicts with Debian's npm package.
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps.sh: not a Debian system; make sure equivalents of these are installed:" >&2
    echo "  ${PKGS[*]}" >&2
    exit 0
fi

# One dpkg-query for all: it lists the installed ones; unknown names only go to stderr.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null |
    awk '$2 == "installed" { print $1 }' || true)
missing=()
for p in "${PKGS[@]}"; do
    grep -qxF "$p" <<<"$installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: missing packages: ${missing[*]}" >&2
    echo "install them as root: apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
