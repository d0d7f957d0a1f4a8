#!/usr/bin/env bash
# Two messaging clients, each behind its own NAT router (iptables MASQUERADE), that can reach
# only the messaging server's namespace, exchange data through the server.
#
#   hostA 192.168.77.2 -- rtrA (NAT) 10.77.1.2 -- 10.77.1.1 pub (messaging-server :8081)
#   hostB 192.168.78.2 -- rtrB (NAT) 10.77.2.2 -- 10.77.2.1 pub
#
# Usage: test_messaging_nat.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/netns/lib.sh
. "$ROOT/tests/netns/lib.sh"
netns_need_root

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sw-nat.XXXXXX")
trap netns_finish EXIT
trap 'exit 130' INT TERM

netns_nat_topology

# The server's key, made up front so the clients can be told it.
netns_msg_server "$pub"
netns_wait_http "$pub" http://127.0.0.1:8082/health 5 || true

server_reachable() { ip netns exec "$hostA" ping -c1 -W2 10.77.1.1 >/dev/null 2>&1; }
check "hostA cannot reach hostB directly" nat_no_direct_path
check "hostA reaches the server through its NAT" server_reachable

netns_spawn "$hostB" "$WORK/peerB.log" "$BUILD/test-tools/msg_peer" --key-file "$WORK/b.key" \
    --server "$SERVER_PK@10.77.2.1:8081" listen 7
wait_for_line "$WORK/peerB.log" '^ready ' 20 || { cat "$WORK/peerB.log" "$WORK/server.log"; exit 1; }
PK_B=$(awk '/^ready /{print $2}' "$WORK/peerB.log")

dial_through_nat() {
    timeout 60 ip netns exec "$hostA" "$BUILD/test-tools/msg_peer" --server "$SERVER_PK@10.77.1.1:8081" \
        dial "$PK_B" 7 --bytes 4000000 --streams 2 >"$WORK/peerA.log" 2>&1
    local rc=$?
    cat "$WORK/peerA.log"
    return $rc
}
check "hostA and hostB exchange 2x4 MB through the server, byte exact" dial_through_nat

server_saw_nat_addresses() { grep -q "10.77.1.2" "$WORK/server.log" && grep -q "10.77.2.2" "$WORK/server.log"; }
check "the server saw both clients only by their routers' addresses" server_saw_nat_addresses
[ "$CHECK_FAILED" -eq 0 ]
