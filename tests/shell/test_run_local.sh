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
RUN_PID=""
source "$ROOT/tests/lib/check.sh"

# Sends SIGTERM to make run and waits (30 s at most) until its whole session is gone; true
# when nothing was left to kill.
stop_network() {
    local left
    [ -n "$RUN_PID" ] || return 0
    kill -TERM "$RUN_PID" 2>/dev/null
    for _ in $(seq 1 150); do
        pgrep -s "$RUN_PID" >/dev/null || break
        sleep 0.2
    done
    left=$(pgrep -s "$RUN_PID")
    [ -z "$left" ] || pkill -KILL -s "$RUN_PID"
    RUN_PID=""
    [ -z "$left" ]
}
cleanup() {
    stop_network
    bash "$ROOT/tests/pg-cluster.sh" destroy "$WORK/state/pg" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/state"
chmod 0755 "$WORK" "$WORK/state" # the cluster runs as skywire-test when we are root
SW_LOCAL_BIN="$BUILD/bin" SW_LOCAL_STATE="$WORK/state" setsid bash "$ROOT/scripts/run-local.sh" \
    >"$WORK/out" 2>&1 </dev/null &
RUN_PID=$!
up=0
for _ in $(seq 1 600); do
    grep -q '^Press Ctrl-C to stop' "$WORK/out" && { up=1; break; }
    kill -0 "$RUN_PID" 2>/dev/null || break
    sleep 0.2
done
check "make run comes up" test "$up" = 1
if [ "$up" != 1 ]; then
    sed 's/^/  | /' "$WORK/out"
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
check "SIGTERM stops all $pids processes it started" stop_network

if [ "$CHECK_FAILED" -ne 0 ]; then
    for f in "$WORK"/cmd*.out; do echo "--- $(basename "$f")"; sed 's/^/  | /' "$f"; echo; done
fi
check_summary
