#!/usr/bin/env bash
# A visor behind a NAT router (iptables MASQUERADE) managed by a hypervisor in the public
# namespace through the link the visor opens itself: listed online (seen from the router's
# address), a transport added through the hypervisor, an app stopped and started, its logs.
#
#   hostA 192.168.77.2 -- rtrA (NAT) 10.77.1.2 -- 10.77.1.1 pub (hypervisor :9080/:9081,
#                                                   transport-discovery :9091, visor P :7777)
#
# Usage: test_hypervisor_nat.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/netns/lib.sh
. "$ROOT/tests/netns/lib.sh"
netns_need_root

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sw-hv-nat.XXXXXX")
chmod 755 "$WORK"
PG_DIR="$WORK/pg"
finish() {
    [ -n "${pub:-}" ] && [ -d "$PG_DIR" ] &&
        ip netns exec "$pub" bash "$ROOT/tests/pg-cluster.sh" destroy "$PG_DIR" >/dev/null 2>&1
    netns_finish
}
trap finish EXIT
trap 'exit 130' INT TERM

netns_nat_topology

# the public side: PostgreSQL + transport discovery, the hypervisor, a public visor P
mkdir -p "$PG_DIR"
PG_URL=$(ip netns exec "$pub" bash "$ROOT/tests/pg-cluster.sh" start "$PG_DIR")
netns_spawn "$pub" "$WORK/td.log" "$BUILD/bin/transport-discovery" --addr 0.0.0.0:9091 --db "$PG_URL"
netns_wait_http "$pub" http://127.0.0.1:9091/health 20 || { cat "$WORK/td.log"; exit 1; }

"$BUILD/bin/skywire-cli" keygen -o "$WORK/hv.key" >"$WORK/hv.pk"
HV_PK=$(cat "$WORK/hv.pk")
echo "hv-nat-password" >"$WORK/hv.password"

gen() { # name hypervisor_addr tpd stcp api [gen-config options...]
    local name=$1 hv=$2 tpd=$3 stcp=$4 api=$5
    shift 5
    "$BUILD/bin/skywire-cli" node gen-config -o "$WORK/$name.json" --tpd "$tpd" --mdisc "" --no-apps \
        --stcp "$stcp" --api-addr "$api" --data-dir "$WORK/$name-data" --log-level debug \
        --hypervisor "$HV_PK@$hv" "$@" >/dev/null
    sed -n 's/.*"public_key":"\([0-9a-f]*\)".*/\1/p' "$WORK/$name.json"
}
PK_A=$(gen a 10.77.1.1:9081 http://10.77.1.1:9091 0.0.0.0:7777 127.0.0.1:3435)
PK_P=$(gen p 127.0.0.1:9081 http://127.0.0.1:9091 10.77.1.1:7777 127.0.0.1:3436)
# visor A runs helloworld
jq '.apps = [{"app":"helloworld","auto_start":true,"port":9,"args":[]}]' "$WORK/a.json" >"$WORK/a.json.tmp"
mv "$WORK/a.json.tmp" "$WORK/a.json"
chmod 600 "$WORK/a.json"

netns_spawn "$pub" "$WORK/hv.log" "$BUILD/bin/hypervisor" --addr 127.0.0.1:9080 --visor-addr 0.0.0.0:9081 \
    --key-file "$WORK/hv.key" --visor "$PK_A" --visor "$PK_P" --tpd http://127.0.0.1:9091 \
    --data-dir "$WORK/hv-data" --admin-password-file "$WORK/hv.password"
netns_wait_http "$pub" http://127.0.0.1:9080/health 20 || { cat "$WORK/hv.log"; exit 1; }
netns_spawn "$pub" "$WORK/p.log" "$BUILD/bin/skywire-visor" "$WORK/p.json"
netns_spawn "$hostA" "$WORK/a.log" "$BUILD/bin/skywire-visor" "$WORK/a.json"
netns_wait_http "$hostA" http://127.0.0.1:3435/health 20 || { cat "$WORK/a.log"; exit 1; }

# the operator's side: curl in the public namespace with a cookie jar and the CSRF token
HV=http://127.0.0.1:9080
CSRF=""
hv() { # method path [body] -> the body on stdout; fails on a non-2xx status
    local args=(-fsS -b "$WORK/cookies" -c "$WORK/cookies" -X "$1" -H "X-CSRF-Token: $CSRF")
    [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' -d "$3")
    ip netns exec "$pub" curl "${args[@]}" "$HV$2"
}
login() {
    local out
    out=$(ip netns exec "$pub" curl -fsS -c "$WORK/cookies" -H 'Content-Type: application/json' \
        -d '{"username":"admin","password":"hv-nat-password"}' "$HV/api/login") || return 1
    CSRF=$(echo "$out" | jq -r .csrf_token)
    [ -n "$CSRF" ] && [ "$CSRF" != null ]
}

check "hostA cannot be reached from the public side" \
    bash -c "! ip netns exec $pub ping -c1 -W1 192.168.77.2 >/dev/null 2>&1"
check "the hypervisor refuses the API before login" \
    bash -c "! ip netns exec $pub curl -fsS $HV/api/visors >/dev/null 2>&1"
check "login" login

online_via_nat() {
    local i out
    for ((i = 0; i < 100; i++)); do
        out=$(hv GET /api/visors 2>/dev/null || true)
        if [ "$(echo "$out" | jq -r ".[] | select(.pk==\"$PK_A\") | .online")" = true ] &&
            [ "$(echo "$out" | jq -r ".[] | select(.pk==\"$PK_P\") | .online")" = true ]; then
            echo "$out" | jq -r ".[] | select(.pk==\"$PK_A\") | .remote_addr" | grep -q '^10\.77\.1\.2:' && return 0
            echo "visor A's link does not come from the NAT router: $out"
            return 1
        fi
        sleep 0.2
    done
    echo "$out"
    return 1
}
check "both visors are online; A's link comes from the NAT router" online_via_nat
summary() { hv GET "/api/visors/$PK_A" | jq -e ".public_key == \"$PK_A\"" >/dev/null; }
check "visor A's summary through its outgoing link" summary

TP=""
add_tp() {
    local out
    out=$(hv POST "/api/visors/$PK_A/transports" "{\"remote_pk\":\"$PK_P\",\"type\":\"stcp\",\"address\":\"10.77.1.1:7777\"}") ||
        return 1
    TP=$(echo "$out" | jq -r .id)
    echo "$out" | jq -e '.state == "up"' >/dev/null
}
check "add an stcp transport A -> P through the hypervisor" add_tp
tp_on_p() {
    local i
    for ((i = 0; i < 50; i++)); do
        hv GET "/api/visors/$PK_P/transports/$TP" 2>/dev/null | jq -e '.state == "up"' >/dev/null && return 0
        sleep 0.2
    done
    return 1
}
check "visor P sees it up" tp_on_p
on_map() {
    local i
    for ((i = 0; i < 50; i++)); do
        hv GET /api/network | jq -e ".edges[] | select(.t_id == \"$TP\" and .is_up)" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}
check "the network map shows the edge" on_map

app_state() { hv GET "/api/visors/$PK_A/apps" | jq -r '.[] | select(.name == "helloworld") | .state'; }
wait_app() { # state
    local i
    for ((i = 0; i < 50; i++)); do
        [ "$(app_state 2>/dev/null)" = "$1" ] && return 0
        sleep 0.2
    done
    return 1
}
stop_app() { hv POST "/api/visors/$PK_A/apps/helloworld/stop" '{}' >/dev/null && ! wait_app_running_quick; }
wait_app_running_quick() { sleep 0.5; [ "$(app_state)" = running ]; }
start_app() { hv POST "/api/visors/$PK_A/apps/helloworld/start" '{}' >/dev/null && wait_app running; }
check "helloworld runs on A" wait_app running
check "stop helloworld on A through the hypervisor" stop_app
check "start it again" start_app
logs() { hv GET "/api/visors/$PK_A/apps/helloworld/logs?lines=10" | jq -e '.lines | type == "array"' >/dev/null; }
check "its logs" logs
cli() {
    SKYWIRE_HYPERVISOR_PASSWORD=hv-nat-password ip netns exec "$pub" "$BUILD/bin/skywire-cli" --json \
        --hypervisor "$HV" node ls-tp --visor "$PK_A" | grep -q "$TP"
}
check "skywire-cli --hypervisor lists A's transports" cli
rm_tp() { hv DELETE "/api/visors/$PK_A/transports/$TP" >/dev/null; }
check "remove the transport through the hypervisor" rm_tp

[ "$CHECK_FAILED" -eq 0 ]
