#!/usr/bin/env bash
# page_test.sh URL PASSWORD PK_A PK_B ADDR_B [APP] — the browser check of the hypervisor's web
# page: installs playwright-core (pinned, from the npm registry, once per build directory) and
# runs tests/hypervisor/page_test.mjs in headless Debian Chromium against a running hypervisor
# that manages visors A and B (ADDR_B: B's stcp address). See page_test.mjs for what it does;
# screenshots go to $SW_TEST_LOG_DIR. Run by tests/integration/test_hypervisor.c.
#
# Where playwright-core goes: $PLAYWRIGHT_PREFIX, else BUILD_DIR/node next to $SW_TEST_BIN_DIR,
# else build/node. Prints SKIP and exits 0 when chromium or node/npm are missing (unless
# SW_REQUIRE_BROWSER=1); exits 1 with a FAIL line on any failure, 2 on a usage error.
set -uo pipefail

PLAYWRIGHT_VERSION=1.61.1 # the newest that runs on Node.js 18 (Debian 12's nodejs)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 5 ] || { echo "usage: $0 URL PASSWORD PK_A PK_B ADDR_B [APP]" >&2; exit 2; }

skip() {
    if [ "${SW_REQUIRE_BROWSER:-0}" = 1 ]; then
        echo "FAIL: $*"
        exit 1
    fi
    echo "SKIP: $*"
    exit 0
}

chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$chromium" ] || [ ! -x "$chromium" ]; then
    skip "chromium is not installed (scripts/install-deps.sh adds it)"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    skip "node and npm are not installed (scripts/install-deps.sh adds them)"
fi
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$major" -ge 18 ] || skip "node $(node --version 2>/dev/null) is older than 18"

if [ -n "${PLAYWRIGHT_PREFIX:-}" ]; then
    prefix=$PLAYWRIGHT_PREFIX
elif [ -n "${SW_TEST_BIN_DIR:-}" ]; then
    prefix=$(dirname "$SW_TEST_BIN_DIR")/node
else
    prefix=$ROOT/build/node
fi
mkdir -p "$prefix" || exit 1
prefix=$(cd "$prefix" && pwd)

have=$(node -p "require('$prefix/node_modules/playwright-core/package.json').version" 2>/dev/null || true)
if [ "$have" != "$PLAYWRIGHT_VERSION" ]; then
    echo "installing playwright-core@$PLAYWRIGHT_VERSION into $prefix"
    if ! timeout -k 5 120 npm install --no-save --no-package-lock --no-audit --no-fund --no-update-notifier \
        --cache "$prefix/.npm-cache" --prefix "$prefix" "playwright-core@$PLAYWRIGHT_VERSION" >"$prefix/npm.log" 2>&1; then
        tail -n 20 "$prefix/npm.log"
        echo "FAIL: npm install playwright-core@$PLAYWRIGHT_VERSION failed (log: $prefix/npm.log)"
        exit 1
    fi
fi

export PLAYWRIGHT_PREFIX=$prefix CHROMIUM=$chromium
timeout -k 5 "${HV_PAGE_WALL_SECONDS:-90}" node "$ROOT/tests/hypervisor/page_test.mjs" "$@"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "FAIL: page_test.mjs was killed after ${HV_PAGE_WALL_SECONDS:-90} s"
    exit 1
fi
exit "$rc"
