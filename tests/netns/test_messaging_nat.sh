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
passed=0
failed=0
check() { # name command...
    local name=$1
    shift
    if "$@"; then
        echo "ok: $name"
        passed=$((passed + 1))
    else
        echo "FAILED: $name"
        failed=$((failed + 1))
    fi
}
finish() {
    netns_cleanup
    rm -rf "$WORK"
    echo "$passed passed, $failed failed"
}
trap finish EXIT
trap 'exit 130' INT TERM

pub=$(netns_add pub)
rtrA=$(netns_add rtrA)
rtrB=$(netns_add rtrB)
hostA=$(netns_add hostA)
hostB=$(netns_add hostB)
read -r _ rtrA_up <<<"$(netns_link "$pub" 10.77.1.1/24 "$rtrA" 10.77.1.2/24)"
read -r _ rtrB_up <<<"$(netns_link "$pub" 10.77.2.1/24 "$rtrB" 10.77.2.2/24)"
netns_link "$rtrA" 192.168.77.1/24 "$hostA" 192.168.77.2/24 >/dev/null
netns_link "$rtrB" 192.168.78.1/24 "$hostB" 192.168.78.2/24 >/dev/null
for r in "$rtrA" "$rtrB"; do
    ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
done
ip -n "$rtrA" route add default via 10.77.1.1
ip -n "$rtrB" route add default via 10.77.2.1
ip netns exec "$rtrA" iptables -t nat -A POSTROUTING -o "$rtrA_up" -j MASQUERADE
ip netns exec "$rtrB" iptables -t nat -A POSTROUTING -o "$rtrB_up" -j MASQUERADE
ip -n "$hostA" route add default via 192.168.77.1
ip -n "$hostB" route add default via 192.168.78.1

# The server's key, made up front so the clients can be told it.
"$BUILD/bin/skywire-cli" keygen -o "$WORK/server.key" >"$WORK/server.pk"
chmod 644 "$WORK/server.key"
SERVER_PK=$(cat "$WORK/server.pk")
netns_spawn "$pub" "$WORK/server.log" "$BUILD/bin/messaging-server" --addr 0.0.0.0:8081 \
    --http-addr 127.0.0.1:8082 --key-file "$WORK/server.key"
for _ in $(seq 1 50); do
    ip netns exec "$pub" curl -fsS http://127.0.0.1:8082/health >/dev/null 2>&1 && break
    sleep 0.1
done

no_direct_path() { ! ip netns exec "$hostA" ping -c1 -W1 192.168.78.2 >/dev/null 2>&1; }
server_reachable() { ip netns exec "$hostA" ping -c1 -W2 10.77.1.1 >/dev/null 2>&1; }
check "hostA cannot reach hostB directly" no_direct_path
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
[ "$failed" -eq 0 ]
