#!/usr/bin/env bash
# test_local_user.sh BUILD_DIR — another Unix user on a visor's machine (docs/security.md,
# "local user"): a visor made with gen-config defaults runs as root with its default apps;
# the user `nobody` must not read its key, its API token or its data directory, must not reach
# its app socket or SSH-client socket, and gets 401 from its local API. Root only (it needs a
# second user); prints "SKIP: ..." otherwise. Prints "ok: ..." per check and "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$1" && pwd)
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root to act as a second local user"
    exit 0
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sw-localuser.XXXXXX")
chmod 0755 "$WORK" # others may look inside; what the visor makes must protect itself
VISOR_PID=""
cleanup() {
    [ -n "$VISOR_PID" ] && kill -TERM "$VISOR_PID" 2>/dev/null && wait "$VISOR_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
CHECK_QUIET=1
source "$ROOT/tests/lib/check.sh"
as_nobody() { runuser -u nobody -- "$@"; }
free_port() { # a TCP port nothing listens on
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 12000))
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

API="127.0.0.1:$(free_port)"
"$BUILD/bin/skywire-cli" node gen-config -o "$WORK/skywire-config.json" --tpd http://127.0.0.1:9 \
    --mdisc "" --stcp "127.0.0.1:$(free_port)" --api-addr "$API" --data-dir "$WORK/data" \
    --skychat-addr "127.0.0.1:$(free_port)" >/dev/null || { echo "gen-config failed"; exit 1; }
(cd "$WORK" && exec "$BUILD/bin/skywire-visor" skywire-config.json) 2>"$WORK/visor.log" &
VISOR_PID=$!
for _ in $(seq 1 100); do
    [ -S "$WORK/data/ssh-client.sock" ] && [ -f "$WORK/data/api-token" ] &&
        curl -fsS "http://$API/health" >/dev/null 2>&1 && break
    sleep 0.1
done
check "the visor is up with its app socket, SSH-client socket and API token" \
    test -S "$WORK/data/app.sock" -a -S "$WORK/data/ssh-client.sock" -a -f "$WORK/data/api-token"

check "nobody cannot read the config (it holds the secret key)" \
    bash -c "! runuser -u nobody -- cat '$WORK/skywire-config.json'"
check "nobody cannot list the data directory" bash -c "! runuser -u nobody -- ls '$WORK/data'"
check "nobody cannot read the API token" bash -c "! runuser -u nobody -- cat '$WORK/data/api-token'"
check "nobody cannot reach the app socket" bash -c "! runuser -u nobody -- stat '$WORK/data/app.sock'"
check "nobody cannot reach the SSH-client socket" \
    bash -c "! runuser -u nobody -- stat '$WORK/data/ssh-client.sock'"
check "nobody cannot read the apps' logs" bash -c "! runuser -u nobody -- cat '$WORK/data/skychat.log'"
status=$(as_nobody curl -s -o /dev/null -w '%{http_code}' "http://$API/api/summary")
check "nobody gets 401 from the local API (got $status)" test "$status" = 401
status=$(as_nobody curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{}' "http://$API/api/apps/skychat/stop")
check "nobody cannot stop an app through the API (got $status)" test "$status" = 401
status=$(as_nobody "$BUILD/bin/skywire-cli" --config "$WORK/skywire-config.json" node summary \
    >/dev/null 2>&1; echo $?)
check "nobody's skywire-cli with the visor's config gets nothing (exit $status)" test "$status" != 0
check "the operator's skywire-cli works with the config alone" \
    "$BUILD/bin/skywire-cli" --config "$WORK/skywire-config.json" node summary

[ "$CHECK_FAILED" -eq 0 ] || { echo "--- visor log:"; tail -n 30 "$WORK/visor.log"; }
check_summary
