#!/usr/bin/env bash
# test_run_tests.sh BUILD_DIR — the test runner itself: a test that prints "SKIP: reason" is
# counted and listed as skipped, never as passed, and under CI=true it fails the run (here a
# browser check run without chromium on its PATH). Runs tests/run-tests.sh on a throwaway
# build directory of fake tests. Prints "ok: ..." per check and "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sw-runner.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
source "$ROOT/tests/lib/check.sh"

mkdir -p "$WORK/build/test-bin" "$WORK/emptybin"
fake() { # name body
    printf '#!/usr/bin/env bash\n%s\n' "$2" >"$WORK/build/test-bin/$1"
    chmod +x "$WORK/build/test-bin/$1"
}
fake fake_pass 'echo "3 passed, 0 failed"'
fake fake_skip 'echo "SKIP: needs a thing this machine lacks"; exit 0'
# a skip printed behind another test's prefix or misspelt is still a skip
fake fake_prefixed 'echo "3 passed, 0 failed"; printf "page_check:\n  SKIP no browser here\n"'
# The skychat page check with no chromium reachable: what CI would see on a machine without it.
fake fake_browser "PATH=$WORK/emptybin exec /bin/bash $ROOT/tests/integration/skychat_page_check.sh http://127.0.0.1:1/ x"

run_runner() { # CI value -> output in $WORK/out, exit status in $WORK/rc
    (unset SW_TEST_ONLY; CI=$1 SW_TEST_ONLY='fake_*' bash "$ROOT/tests/run-tests.sh" "$WORK/build") \
        >"$WORK/out" 2>&1
    echo $? >"$WORK/rc"
}

run_runner false
check "without CI a skip is not a failure" test "$(cat "$WORK/rc")" = 0
check "skips are counted apart from passes" grep -qx '5 passed, 0 failed, 3 skipped' "$WORK/out"
check "an indented, colon-less SKIP is a skip" grep -q 'fake_prefixed: no browser here' "$WORK/out"
check "each skip is listed with its reason" grep -q 'fake_skip: needs a thing this machine lacks' "$WORK/out"
check "a missing chromium is a skip" grep -q 'fake_browser: chromium is not installed' "$WORK/out"

run_runner true
check "under CI=true a skip fails the run" test "$(cat "$WORK/rc")" != 0
check "under CI=true skips count as failures" grep -qx '5 passed, 3 failed, 0 skipped' "$WORK/out"
check "under CI=true the missing browser is named" grep -q 'fake_browser: SKIP under CI=true counts as a failure' "$WORK/out"

[ "$CHECK_FAILED" -eq 0 ] || { echo "--- runner output:"; sed "s/^/  | /" "$WORK/out"; }
check_summary
