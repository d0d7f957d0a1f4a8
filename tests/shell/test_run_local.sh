#!/usr/bin/env bash
# test_run_local.sh BUILD_DIR — `make run` as a newcomer meets it: scripts/run-local.sh brings
# up the local network from BUILD_DIR's binaries in a throwaway state directory, and every
# command it prints under "Try it:" is run as printed and must work (chat over the 2-hop
# route, SOCKS through the exit, SSH, the CLI, the hypervisor, the setup node's records).
# Also: its PostgreSQL has no TCP listener, and SIGTERM stops every process it started.
# Uses make run's fixed ports (9080-9093, 8000-8082, 3435-3437, 7771-7773, 1080).
# Prints "ok: ..." per check and "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$1" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sw-runlocal.XXXXXX")
source "$ROOT/tests/lib/check.sh"
source "$ROOT/tests/lib/run_local.sh"
cleanup() {
    run_local_cleanup
    rm -rf "$WORK"
}
trap cleanup EXIT

run_local_start "$BUILD" "$WORK" && up=1 || up=0
check "make run comes up" test "$up" = 1
if [ "$up" != 1 ]; then
    check_summary
    exit 1
fi

# Every printed command, as printed. The interactive shell (SSH-cli with no command) and
# comments are left out; each command gets 60 s.
sed -n '/^Try it:/,/^Press Ctrl-C/p' "$WORK/out" | sed -n 's/^  \([^#].*\)$/\1/p' >"$WORK/commands"
n=0
while IFS= read -r cmd; do
    case "$cmd" in *SSH-cli*) [[ "$cmd" =~ [0-9a-f]{64}$ ]] && continue ;; esac
    n=$((n + 1))
    check "printed command works: ${cmd:0:100}" \
        bash -c 'timeout 60 bash -c "$1" >"$2" 2>&1 </dev/null && [ -s "$2" ]' _ "$cmd" "$WORK/cmd$n.out"
done <"$WORK/commands"
check "make run printed at least 12 commands to try" test "$n" -ge 12
# (grep over the files, not their concatenation: a reply without a final newline would
# glue itself to the next file's first line)
check "the greetings arrived at C over the 2-hop route" grep -qh 'Hello Mike!' "$WORK"/cmd*.out
check "SOCKS through A reached the demo destination at exit C" \
    grep -qh '"status":"ok"' "$WORK"/cmd*.out
check "SSH ran uname on C" grep -qh '^Linux ' "$WORK"/cmd*.out

port=$(cat "$WORK/state/pg/port")
check "make run's PostgreSQL has no TCP listener (port $port)" \
    bash -c "! ss -Htln | awk '{print \$4}' | grep -q ':$port\$'"
check "its socket directory is private" \
    bash -c "[ \"\$(stat -c %a \"\$(ls -d '$WORK/state/pg/sock' /tmp/skywire-pg-* 2>/dev/null | head -1)\")\" = 700 ]"

pids=$(pgrep -s "$RUN_PID" | wc -l)
check "SIGTERM stops all $pids processes it started" run_local_stop

if [ "$CHECK_FAILED" -ne 0 ]; then
    for f in "$WORK"/cmd*.out; do echo "--- $(basename "$f")"; sed 's/^/  | /' "$f"; echo; done
fi
check_summary
