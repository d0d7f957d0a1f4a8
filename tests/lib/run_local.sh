# shellcheck shell=bash
# run_local.sh — starts and stops `make run` (scripts/run-local.sh) for a shell test (sourced;
# needs ROOT and tests/lib/check.sh). It uses make run's fixed ports, so one test at a time.
#   run_local_start BUILD_DIR WORK   state in WORK/state, output in WORK/out; true once it
#                                    printed "Press Ctrl-C" (120 s at most), else prints it
#   run_local_stop                   SIGTERM, then waits (30 s at most) until its whole session
#                                    is gone; true when nothing was left to kill
#   run_local_cleanup                stop, and remove the database cluster (for an EXIT trap)
RUN_PID=""
RUN_WORK=""

run_local_stop() {
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

run_local_cleanup() {
    run_local_stop
    [ -n "$RUN_WORK" ] && bash "$ROOT/tests/pg-cluster.sh" destroy "$RUN_WORK/state/pg" >/dev/null 2>&1
}

run_local_start() {
    local build=$1 up=0
    RUN_WORK=$2
    mkdir -p "$RUN_WORK/state"
    chmod 0755 "$RUN_WORK" "$RUN_WORK/state" # the cluster runs as skywire-test when we are root
    SW_LOCAL_BIN="$build/bin" SW_LOCAL_STATE="$RUN_WORK/state" setsid bash "$ROOT/scripts/run-local.sh" \
        >"$RUN_WORK/out" 2>&1 </dev/null &
    RUN_PID=$!
    for _ in $(seq 1 600); do
        grep -q '^Press Ctrl-C to stop' "$RUN_WORK/out" && { up=1; break; }
        kill -0 "$RUN_PID" 2>/dev/null || break
        sleep 0.2
    done
    [ "$up" = 1 ] && return 0
    sed 's/^/  | /' "$RUN_WORK/out"
    return 1
}
