#!/usr/bin/env bash
# run-bench.sh BUILD_DIR — runs every benchmark in BUILD_DIR/bench-bin against one throwaway
# PostgreSQL cluster (tests/pg-cluster.sh, destroyed on exit), each under a timeout, and
# prints their output. Exits non-zero when a benchmark fails or times out. Daemon logs stay
# in BUILD_DIR/bench-logs.
set -uo pipefail
export LC_ALL=C

[ $# -eq 1 ] || { echo "usage: tests/run-bench.sh BUILD_DIR" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd) || exit 2
BENCH_TIMEOUT=${SW_BENCH_TIMEOUT:-240}
LOG_DIR="$BUILD/bench-logs"
failed=0

PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sw-pg-bench.XXXXXX") || exit 1
trap 'bash "$ROOT/tests/pg-cluster.sh" destroy "$PG_DIR" >/dev/null 2>&1' EXIT
trap 'exit 130' INT TERM
if ! PG_URL=$(bash "$ROOT/tests/pg-cluster.sh" start "$PG_DIR"); then
    echo "run-bench.sh: could not start the PostgreSQL cluster" >&2
    exit 1
fi

export SW_TEST_PG_URL="$PG_URL" SW_TEST_PG_DIR="$PG_DIR" SW_TEST_ROOT="$ROOT"
export SW_TEST_BIN_DIR="$BUILD/bin" SW_TEST_LOG_DIR="$LOG_DIR"
rm -rf "$LOG_DIR"
mkdir -p "$LOG_DIR"

shopt -s nullglob
benches=("$BUILD"/bench-bin/*)
if [ ${#benches[@]} -eq 0 ]; then
    echo "run-bench.sh: no benchmarks in $BUILD/bench-bin" >&2
    exit 1
fi

for bin in "${benches[@]}"; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    name=$(basename "$bin")
    if [ -n "${SW_BENCH_ONLY:-}" ]; then # names or shell patterns, e.g. "bench_socks bench_td"
        set -f
        sel=no
        for pat in $SW_BENCH_ONLY; do
            # shellcheck disable=SC2254
            case "$name" in $pat) sel=yes ;; esac
        done
        set +f
        [ "$sel" = yes ] || continue
    fi
    echo "=== $name"
    (cd "$ROOT" && timeout -k 10 "$BENCH_TIMEOUT" "$bin")
    rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "--- $name: TIMED OUT after ${BENCH_TIMEOUT}s"
        failed=$((failed + 1))
    elif [ "$rc" -ne 0 ]; then
        echo "--- $name: FAILED (exit $rc)"
        failed=$((failed + 1))
    else
        echo "--- $name: ok"
    fi
done

[ "$failed" -eq 0 ]
