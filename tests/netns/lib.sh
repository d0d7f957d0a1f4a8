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
