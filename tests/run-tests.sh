#!/usr/bin/env bash
# run-tests.sh BUILD_DIR — runs every test binary in BUILD_DIR/test-bin against one
# throwaway PostgreSQL cluster, unit tests first, each under a timeout. Counts individual
# libcheck checks (a binary without a summary counts as one test) and ends with the line
# "N passed, N failed, N skipped". Exits non-zero on any failure. Logs stay in
# BUILD_DIR/test-logs. SW_TEST_ONLY="name..." (shell patterns, e.g. "test_ssh test_bytes*")
# runs only those.
# A test that could not run what it checks (no browser, no root for namespaces, no podman)
# prints a line "SKIP: reason": each such line counts as skipped, not passed, and is listed
# at the end. Under CI=true a SKIP line fails the test instead: CI must not be green without
# the checks it was given the dependencies for (scripts/install-deps.sh installs them all).
set -uo pipefail
export LC_ALL=C

[ $# -eq 1 ] || { echo "usage: tests/run-tests.sh BUILD_DIR" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd) || exit 2
BIN_TIMEOUT=${SW_TEST_TIMEOUT:-300}
LOG_DIR="$BUILD/test-logs"
passed=0
failed=0
skipped=0
# "SKIP: why" as documented, and the near misses ("  SKIP:", "SKIP why", "SKIP:why"), so a
# skip cannot pass for a pass by its spelling
SKIP_LINE='^[[:space:]]*SKIP($|[^A-Za-z0-9_])'

skip_list=()
fail_list=() # "name: first failing line", repeated at the end where a CI excerpt shows it

PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sw-pg.XXXXXX") || exit 1
trap 'bash "$ROOT/tests/pg-cluster.sh" destroy "$PG_DIR" >/dev/null 2>&1' EXIT
trap 'exit 130' INT TERM
if ! PG_URL=$(bash "$ROOT/tests/pg-cluster.sh" start "$PG_DIR"); then
    echo "run-tests.sh: could not start the test PostgreSQL cluster" >&2
    exit 1
fi

export SW_TEST_PG_URL="$PG_URL" SW_TEST_PG_DIR="$PG_DIR" SW_TEST_ROOT="$ROOT"
export SW_TEST_BIN_DIR="$BUILD/bin" SW_TEST_LOG_DIR="$LOG_DIR"
export CK_DEFAULT_TIMEOUT=60
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
rm -rf "$LOG_DIR"
mkdir -p "$LOG_DIR"

# Prints "summaries checks failures" from libcheck lines such as
# "100%: Checks: 12, Failures: 0, Errors: 0" (several suites may each print one).
summarize() {
    awk 'match($0, /[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+/) {
            s = substr($0, RSTART, RLENGTH); gsub(/[^0-9]+/, " ", s); split(s, a, " ")
            n++; c += a[2]; f += a[3] + a[4]
         }
         /^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$/ { n++; c += $1 + $3; f += $3 }
         END { print n + 0, c + 0, f + 0 }' "$1"
}

# The first line of a log that reports a failure (libcheck, check.sh, sanitizers), else its last.
first_failure() { # log
    local line
    line=$(grep -m1 -E ':[0-9]+:[FE]:|^FAILED|ERROR: (Address|Leak)Sanitizer|runtime error:|SKIP' "$1")
    [ -n "$line" ] || line=$(tail -n 1 "$1")
    printf '%s' "${line:0:300}"
}

selected() { # name
    local pat
    [ -z "${SW_TEST_ONLY:-}" ] && return 0
    set -f # the patterns are for case, not for the file system
    for pat in $SW_TEST_ONLY; do
        # shellcheck disable=SC2254
        case "$1" in $pat) set +f; return 0 ;; esac
    done
    set +f
    return 1
}

run_one() {
    local bin=$1 name log rc n checks fails t0 secs
    shift
    name=$(basename "$bin")
    selected "${name%.sh}" || return 0
    log="$LOG_DIR/$name.log"
    echo "=== $name"
    t0=$SECONDS
    (cd "$ROOT" && timeout -k 10 "$BIN_TIMEOUT" "$bin" "$@") >"$log" 2>&1
    rc=$?
    secs=$((SECONDS - t0))
    cat "$log"
    read -r n checks fails < <(summarize "$log")
    skips=$(grep -cE "$SKIP_LINE" "$log")
    if [ "$n" -eq 0 ]; then
        checks=1
        fails=$((rc != 0))
    elif [ "$rc" -ne 0 ] && [ "$fails" -eq 0 ]; then
        fails=1 # all checks passed, yet it crashed, leaked or hung afterwards
        checks=$((checks + 1))
    fi
    # A skipped part is not a pass: it comes off the passes (a whole-binary skip leaves none).
    [ "$skips" -gt $((checks - fails)) ] && skips=$((checks - fails))
    while IFS= read -r line; do
        skip_list+=("$name: $line")
    done < <(grep -E "$SKIP_LINE" "$log" | sed -E 's/^[[:space:]]*SKIP[[:space:]]*:?[[:space:]]*//')
    if [ "${CI:-}" = true ] && [ "$skips" -gt 0 ]; then
        echo "--- $name: SKIP under CI=true counts as a failure (a dependency is missing)"
        fails=$((fails + skips))
        skips=0
    fi
    skipped=$((skipped + skips))
    passed=$((passed + checks - fails - skips))
    failed=$((failed + fails))
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "--- $name: TIMED OUT after ${BIN_TIMEOUT}s"
        fail_list+=("$name: timed out after ${BIN_TIMEOUT}s")
    elif [ "$rc" -ne 0 ] || [ "$fails" -ne 0 ]; then
        echo "--- $name: FAILED (exit $rc, $fails of $checks failed, ${secs} s)"
        fail_list+=("$name: exit $rc; $(first_failure "$log")")
    elif [ "$skips" -gt 0 ]; then
        echo "--- $name: ok ($((checks - skips)) passed, $skips skipped, ${secs} s)"
    else
        echo "--- $name: ok ($checks passed, ${secs} s)"
    fi
}

unit=()
other=()
for f in "$BUILD"/test-bin/*; do
    if [ ! -f "$f" ] || [ ! -x "$f" ]; then
        continue
    fi
    if [ -f "$ROOT/tests/unit/$(basename "$f").c" ]; then
        unit+=("$f")
    else
        other+=("$f")
    fi
done
if [ $((${#unit[@]} + ${#other[@]})) -eq 0 ] && [ -z "${SW_TEST_ONLY:-}" ]; then
    echo "run-tests.sh: no test binaries in $BUILD/test-bin" >&2
    exit 1
fi
for f in "${unit[@]}" "${other[@]}"; do
    run_one "$f"
done
# Script tests (tests/shell, tests/security) and multi-host tests in network namespaces (tests/netns; they
# skip themselves when not root).
for f in "$ROOT"/tests/shell/test_*.sh "$ROOT"/tests/security/test_*.sh "$ROOT"/tests/netns/test_*.sh; do
    if [ -x "$f" ]; then
        run_one "$f" "$BUILD"
    elif [ -f "$f" ] && selected "$(basename "$f" .sh)"; then # a lost exec bit must not hide a test
        echo "--- $(basename "$f"): FAILED (not executable)"
        fail_list+=("$(basename "$f"): not executable")
        failed=$((failed + 1))
    fi
done

if [ ${#skip_list[@]} -gt 0 ]; then
    echo "skipped or failed for a missing dependency:"
    printf '  %s\n' "${skip_list[@]}"
fi
if [ ${#fail_list[@]} -gt 0 ]; then
    echo "failed:"
    printf '  %s\n' "${fail_list[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
