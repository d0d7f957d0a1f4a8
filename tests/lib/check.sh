# shellcheck shell=bash
# check.sh — the check helpers of every shell test (sourced). `check DESCRIPTION CMD...` runs
# CMD and prints "ok: DESCRIPTION" or "FAILED: DESCRIPTION", counting either; `check_fail TEXT`
# counts a failure found another way; `check_summary` prints the "N passed, N failed" line
# tests/run-tests.sh reads and returns non-zero when anything failed. With CHECK_QUIET=1 the
# commands' own output goes to /dev/null.
CHECK_PASSED=0
CHECK_FAILED=0

check() {
    local what=$1 ok
    shift
    if [ "${CHECK_QUIET:-0}" = 1 ]; then
        "$@" >/dev/null 2>&1 && ok=1 || ok=0
    else
        "$@" && ok=1 || ok=0
    fi
    if [ "$ok" = 1 ]; then
        echo "ok: $what"
        CHECK_PASSED=$((CHECK_PASSED + 1))
    else
        echo "FAILED: $what"
        CHECK_FAILED=$((CHECK_FAILED + 1))
    fi
}

check_fail() {
    echo "FAILED: $*"
    CHECK_FAILED=$((CHECK_FAILED + 1))
}

check_summary() {
    echo "$CHECK_PASSED passed, $CHECK_FAILED failed"
    [ "$CHECK_FAILED" -eq 0 ]
}
