# shellcheck shell=bash
# lib.sh — network namespace helpers for tests (sourced). Every namespace and process a test
# creates is recorded and removed by netns_cleanup, which the test traps on EXIT.
# Addresses live only inside the namespaces the test creates.

NETNS_PREFIX="sw$$"
NETNS_LIST=()
NETNS_PIDS=()

netns_need_root() {
    if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! command -v iptables >/dev/null; then
        echo "SKIP: network namespace tests need root, iproute2 and iptables"
        exit 0
    fi
}

netns_add() { # name
    local ns="$NETNS_PREFIX-$1"
    ip netns add "$ns"
    NETNS_LIST+=("$ns")
    ip -n "$ns" link set lo up
    echo "$ns"
}

# netns_link NS_A ADDR_A/NN NS_B ADDR_B/NN: a veth pair between two namespaces.
netns_link() {
    local a=$1 aaddr=$2 b=$3 baddr=$4 ia ib
    ia="v${#NETNS_LIST[@]}a$RANDOM"
    ib="v${#NETNS_LIST[@]}b$RANDOM"
    ip link add "$ia" netns "$a" type veth peer name "$ib" netns "$b"
    ip -n "$a" addr add "$aaddr" dev "$ia"
    ip -n "$b" addr add "$baddr" dev "$ib"
    ip -n "$a" link set "$ia" up
    ip -n "$b" link set "$ib" up
    echo "$ia $ib"
}

# netns_spawn NS LOG CMD...: runs CMD in NS in the background, records its pid.
netns_spawn() {
    local ns=$1 log=$2
    shift 2
    ip netns exec "$ns" "$@" >"$log" 2>&1 &
    NETNS_PIDS+=($!)
}

netns_cleanup() {
    local pid ns
    for pid in "${NETNS_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.3
    for pid in "${NETNS_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for ns in "${NETNS_LIST[@]}"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
}

# wait_for_line FILE PATTERN SECONDS: waits until FILE has a line matching PATTERN.
wait_for_line() {
    local file=$1 pattern=$2 secs=$3 i
    for ((i = 0; i < secs * 10; i++)); do
        grep -q "$pattern" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# ---- checks ------------------------------------------------------------------------------
# check NAME CMD...: runs CMD, prints "ok: NAME" or "FAILED: NAME" and counts it.
# netns_finish (trap it on EXIT, or call it from the test's own EXIT trap) removes the
# namespaces, the processes and $WORK, then prints "N passed, N failed".
# shellcheck source=tests/lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"

netns_finish() {
    netns_cleanup
    [ -z "${WORK:-}" ] || rm -rf "$WORK"
    check_summary
}

# netns_wait_http NS URL SECONDS: waits until GET URL inside NS answers 2xx.
netns_wait_http() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        ip netns exec "$1" curl -fsS "$2" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# ---- the NAT topology --------------------------------------------------------------------
#   hostA 192.168.77.2 -- rtrA (NAT) 10.77.1.2 -- 10.77.1.1 pub
#   hostB 192.168.78.2 -- rtrB (NAT) 10.77.2.2 -- 10.77.2.1 pub
# Each host's router masquerades it behind the router's address on the pub link; the hosts
# reach pub only, not each other. Sets pub, rtrA, rtrB, hostA and hostB to the namespaces.
netns_nat_topology() {
    local rtrA_up rtrB_up r
    netns_add pub >/dev/null # not in $(...): the namespace must be recorded for cleanup here
    netns_add rtrA >/dev/null
    netns_add rtrB >/dev/null
    netns_add hostA >/dev/null
    netns_add hostB >/dev/null
    # shellcheck disable=SC2034 # used by the sourcing test
    pub="$NETNS_PREFIX-pub" rtrA="$NETNS_PREFIX-rtrA" rtrB="$NETNS_PREFIX-rtrB" \
        hostA="$NETNS_PREFIX-hostA" hostB="$NETNS_PREFIX-hostB"
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
}

# True when hostA cannot ping hostB (the NATs leave no direct path).
nat_no_direct_path() { ! ip netns exec "$hostA" ping -c1 -W1 192.168.78.2 >/dev/null 2>&1; }

# netns_msg_server NS: a key for a messaging-server in $WORK/server.key (its public key in
# SERVER_PK) and the server on 0.0.0.0:8081, HTTP on 127.0.0.1:8082, logging to
# $WORK/server.log. Needs BUILD and WORK.
netns_msg_server() {
    "$BUILD/bin/skywire-cli" keygen -o "$WORK/server.key" >"$WORK/server.pk"
    chmod 644 "$WORK/server.key"
    # shellcheck disable=SC2034 # used by the sourcing test
    SERVER_PK=$(cat "$WORK/server.pk")
    netns_spawn "$1" "$WORK/server.log" "$BUILD/bin/messaging-server" --addr 0.0.0.0:8081 \
        --http-addr 127.0.0.1:8082 --key-file "$WORK/server.key"
}
