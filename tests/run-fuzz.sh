#!/usr/bin/env bash
# run-fuzz.sh SECONDS TARGET...
#
# Runs each libFuzzer target for SECONDS (-max_total_time) on a corpus kept under
# build/fuzz/corpus/NAME, seeded from tests/fuzz/corpus/NAME/ when that exists. Crash,
# leak, timeout and OOM artifacts go to build/fuzz/artifacts/NAME/, logs to
# build/fuzz/logs/NAME.log. Exits non-zero if any target fails (crash, sanitizer report,
# missing binary).
set -u

if [ $# -lt 2 ]; then
    echo "usage: $0 SECONDS TARGET..." >&2
    exit 2
fi
secs=$1
shift
case "$secs" in
    ''|*[!0-9]*) echo "run-fuzz: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build/fuzz"
mkdir -p "$out/corpus" "$out/artifacts" "$out/logs"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
for target in "$@"; do
    name=$(basename "$target")
    if [ ! -x "$target" ]; then
        echo "run-fuzz: $target: no such executable" >&2
        failed+=("$name")
        continue
    fi
    corpus="$out/corpus/$name"
    artifacts="$out/artifacts/$name/"
    log="$out/logs/$name.log"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$root/tests/fuzz/corpus/$name" ]; then
        # seeds never overwrite what earlier runs found
        cp -n "$root/tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null || true
    fi
    echo "run-fuzz: $name for ${secs}s (corpus $(ls "$corpus" | wc -l) files)"
    "$target" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
        -artifact_prefix="$artifacts" "$corpus" >"$log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "run-fuzz: $name FAILED (exit $rc); log $log, artifacts in $artifacts" >&2
        tail -n 40 "$log" >&2
        failed+=("$name")
    else
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
        echo "run-fuzz: $name ok (${runs:-?} runs, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) files)"
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "run-fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "run-fuzz: all ${#} targets passed"
