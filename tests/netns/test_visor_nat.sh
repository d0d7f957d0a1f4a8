#!/usr/bin/env bash
# Two visors, each behind its own NAT router (iptables MASQUERADE), that can reach only the
# public namespace (messaging server, transport discovery with its own PostgreSQL), set up
# a dmsg transport through the messaging server; stcp between them is impossible.
#
#   hostA 192.168.77.2 -- rtrA (NAT) 10.77.1.2 -- 10.77.1.1 pub (messaging-server :8081,
#   hostB 192.168.78.2 -- rtrB (NAT) 10.77.2.2 -- 10.77.2.1      transport-discovery :9091)
#
# Usage: test_visor_nat.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/netns/lib.sh
. "$ROOT/tests/netns/lib.sh"
netns_need_root

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sw-visor-nat.XXXXXX")
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

# the public side: PostgreSQL + transport discovery, and the messaging server
mkdir -p "$PG_DIR"
PG_URL=$(ip netns exec "$pub" bash "$ROOT/tests/pg-cluster.sh" start "$PG_DIR")
netns_spawn "$pub" "$WORK/td.log" "$BUILD/bin/transport-discovery" --addr 0.0.0.0:9091 --db "$PG_URL"
netns_msg_server "$pub"
netns_wait_http "$pub" http://127.0.0.1:9091/health 20 || { cat "$WORK/td.log"; exit 1; }
netns_wait_http "$pub" http://127.0.0.1:8082/health 20 || { cat "$WORK/server.log"; exit 1; }

# the visors: configs from the CLI, messaging server pinned, no messaging discovery
gen() { # name router_side_ip
    "$BUILD/bin/skywire-cli" node gen-config -o "$WORK/$1.json" --tpd "http://$2:9091" --mdisc "" \
        --msg-server "$SERVER_PK@$2:8081" --stcp 0.0.0.0:7777 --api-addr 127.0.0.1:3435 \
        --data-dir "$WORK/$1-data" --log-level debug >/dev/null
    sed -n 's/.*"public_key":"\([0-9a-f]*\)".*/\1/p' "$WORK/$1.json"
}
gen a 10.77.1.1 >/dev/null
PK_B=$(gen b 10.77.2.1)
netns_spawn "$hostA" "$WORK/a.log" "$BUILD/bin/skywire-visor" "$WORK/a.json"
netns_spawn "$hostB" "$WORK/b.log" "$BUILD/bin/skywire-visor" "$WORK/b.json"
PID_B=${NETNS_PIDS[-1]}
netns_wait_http "$hostA" http://127.0.0.1:3435/health 20 || { cat "$WORK/a.log"; exit 1; }
netns_wait_http "$hostB" http://127.0.0.1:3435/health 20 || { cat "$WORK/b.log"; exit 1; }

config_of() { # ns -> the config of the visor in it (skywire-cli takes its API token from it)
    if [ "$1" = "$hostA" ]; then echo "$WORK/a.json"; else echo "$WORK/b.json"; fi
}
cli() { # ns args...
    local ns=$1
    shift
    ip netns exec "$ns" "$BUILD/bin/skywire-cli" --json --config "$(config_of "$ns")" "$@"
}
sessions_up() { # ns
    local i
    for ((i = 0; i < 150; i++)); do
        cli "$1" node summary | grep -q '"sessions":[1-9]' && return 0
        sleep 0.2
    done
    return 1
}
state_of() { # ns id
    cli "$1" node tp "$2" 2>/dev/null | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'
}
wait_state() { # ns id state seconds
    local i
    for ((i = 0; i < $4 * 5; i++)); do
        [ "$(state_of "$1" "$2")" = "$3" ] && return 0
        sleep 0.2
    done
    return 1
}

no_token_401() { # the local API wants the visor's token (docs/visor.md "Access to the local API")
    [ "$(ip netns exec "$hostA" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:3435/api/summary)" = 401 ]
}
check "visor A's API answers 401 without its token" no_token_401
check "hostA cannot reach hostB directly" nat_no_direct_path
both_sessions_up() { sessions_up "$hostA" && sessions_up "$hostB"; }
check "both visors hold a messaging session" both_sessions_up

stcp_refused() { # the dial fails (502 dial_failed), not the CLI
    local out
    out=$(timeout 30 ip netns exec "$hostA" "$BUILD/bin/skywire-cli" --config "$WORK/a.json" node add-tp "$PK_B" \
        --type stcp --addr 192.168.78.2:7777 2>&1) && return 1
    echo "$out" | grep -q dial_failed || { echo "$out"; return 1; }
}
check "an stcp transport across the NATs fails" stcp_refused

TP=""
add_dmsg() {
    local out
    out=$(cli "$hostA" node add-tp "$PK_B" --type dmsg) || { echo "$out"; return 1; }
    TP=$(echo "$out" | sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p')
    echo "$out" | grep -q '"state":"up"'
}
check "add-tp --type dmsg through the messaging server" add_dmsg
check "visor B sees the dmsg transport up" wait_state "$hostB" "$TP" up 10

disc_up() {
    local i
    for ((i = 0; i < 50; i++)); do
        ip netns exec "$pub" curl -fsS "http://127.0.0.1:9091/transports/id:$TP" 2>/dev/null |
            grep -q '"is_up":true' && return 0
        sleep 0.2
    done
    return 1
}
check "the transport discovery shows it up with both signatures" disc_up

received() { cli "$hostB" node tp "$TP" | sed -n 's/.*"bytes_received":\([0-9]*\).*/\1/p'; }
discard_flows() {
    local before after i
    before=$(received)
    ip netns exec "$hostA" curl -fsS -X POST -d '{"bytes":4000000}' -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $(cat "$WORK/a-data/api-token")" \
        "http://127.0.0.1:3435/api/transports/$TP/discard" >/dev/null || return 1
    for ((i = 0; i < 100; i++)); do
        after=$(received)
        [ "$after" -ge $((before + 4000000)) ] && return 0
        sleep 0.2
    done
    echo "received $before -> $after"
    return 1
}
check "4 MB of DISCARD packets cross the NATs" discard_flows

recovers() {
    { kill -KILL "$PID_B" && wait "$PID_B"; } 2>/dev/null || true
    wait_state "$hostA" "$TP" down 10 || return 1
    netns_spawn "$hostB" "$WORK/b2.log" "$BUILD/bin/skywire-visor" "$WORK/b.json"
    wait_state "$hostA" "$TP" up 60 && wait_state "$hostB" "$TP" up 10
}
check "after kill -9 of visor B the transport comes back by itself" recovers

[ "$CHECK_FAILED" -eq 0 ]
