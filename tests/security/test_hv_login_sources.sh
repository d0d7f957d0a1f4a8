#!/usr/bin/env bash
# test_hv_login_sources.sh BUILD_DIR — the hypervisor's failed-login back-off against many
# source addresses (docs/hypervisor.md "Authentication", docs/security.md row 4, issue
# "Hostile load"). It runs in a network namespace of its own (as root, or in an unprivileged
# user namespace; else it prints SKIP) whose loopback holds 10.77.0.0/24 and a few fd77::/48 addresses, so
# curl can log in from as many addresses as it likes, while nothing leaves the namespace:
#   - 40 guessers at other addresses (one wrong password each at --login-failures 1, then
#     backed off) do not lock out the admin at a new address (the old global ceiling, 30 x
#     --login-failures failures in 10 min, did);
#   - every 127.x.y.z is one source: wrong passwords spread over 127.0.0.2-6 back off
#     127.0.0.7, 127.0.0.1 and 127.200.3.4, while the admin at 10.77.0.9 logs in;
#   - IPv6: one /64 is one source; another /64 and ::1 are not slowed;
#   - /metrics without a session is 401 and says nothing about logins.
# Prints "ok: ..." per check and "N passed, N failed". Bounded: about 60 Argon2 checks.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$(cd "$1" && pwd) || exit 2

if [ "${SW_HV_LOGIN_NETNS:-}" != inside ]; then
    if [ "$(id -u)" -eq 0 ] && unshare -n true 2>/dev/null; then
        exec env SW_HV_LOGIN_NETNS=inside unshare -n "$0" "$BUILD"
    elif unshare -rn true 2>/dev/null; then
        exec env SW_HV_LOGIN_NETNS=inside unshare -rn "$0" "$BUILD"
    fi
    echo "SKIP: needs root or unprivileged user namespaces for a network namespace of its own"
    exit 0
fi

# shellcheck source=tests/lib/check.sh
source "$ROOT/tests/lib/check.sh"
PASSWORD=admin-pass-1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sw-hvlogin.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

ip link set lo up || { echo "cannot bring up lo in the namespace"; exit 1; }
ip addr add 10.77.0.1/24 dev lo # on lo the whole /24 is local: any 10.77.0.x can be a source
for a in fd77:0:0:1::2 fd77:0:0:1::3 fd77:0:0:1::4 fd77:0:0:1::5 fd77:0:0:1::6 fd77:0:0:1::7 fd77:0:0:2::1; do
    ip -6 addr add "$a/64" dev lo nodad # IPv6 binds only to assigned addresses
done
printf '%s\n' "$PASSWORD" >"$WORK/pw"

# start_hv NAME ADDR [ARGS...]: a hypervisor listening on ADDR; waits for /health.
start_hv() {
    local name=$1 addr=$2 url
    shift 2
    "$BUILD/bin/hypervisor" --addr "$addr" --visor-addr 127.0.0.1:0 --key-file "$WORK/$name.key" \
        --data-dir "$WORK/$name" --admin-password-file "$WORK/pw" "$@" 2>"$WORK/$name.log" &
    PIDS+=($!)
    url=$(hv_url "$addr")
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "$url/health" && return 0
        sleep 0.1
    done
    echo "hypervisor $name did not start:"
    cat "$WORK/$name.log"
    exit 1
}
hv_url() { # 0.0.0.0:P -> http://127.0.0.1:P, [::]:P -> http://[::1]:P
    case "$1" in
        0.0.0.0:*) echo "http://127.0.0.1:${1#0.0.0.0:}" ;;
        "[::]:"*) echo "http://[::1]:${1#\[::\]:}" ;;
    esac
}
# login URL SOURCE PASSWORD: the HTTP status of POST /api/login from that source address
login() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 30 --interface "$2" \
        -H 'Content-Type: application/json' \
        --data "{\"username\":\"admin\",\"password\":\"$3\"}" "$1/api/login"
}
expect_login() { # DESCRIPTION URL SOURCE PASSWORD STATUS
    local got
    got=$(login "$2" "$3" "$4")
    if [ "$got" = "$5" ]; then
        echo "ok: $1"
        CHECK_PASSED=$((CHECK_PASSED + 1))
    else
        check_fail "$1 (HTTP $got, expected $5)"
    fi
}

# 1. Many guessers, one wrong password each, then each backed off: the admin at a new address
#    still logs in. 40 failures at --login-failures 1 were over the old ceiling (30).
start_hv many 0.0.0.0:19080 --login-failures 1
URL=$(hv_url 0.0.0.0:19080)
n401=0
for i in $(seq 2 41); do
    [ "$(login "$URL" "10.77.0.$i" guess-guess)" = 401 ] && n401=$((n401 + 1))
done
check "40 guessers at 40 addresses: each password checked (401)" test "$n401" -eq 40
n429=0
for i in 2 17 41; do
    [ "$(login "$URL" "10.77.0.$i" guess-guess)" = 429 ] && n429=$((n429 + 1))
done
check "each guesser is then backed off (429)" test "$n429" -eq 3
expect_login "the admin at a new address logs in after 40 guessers" "$URL" 10.77.0.200 "$PASSWORD" 200
expect_login "and the admin on loopback" "$URL" 127.0.0.1 "$PASSWORD" 200
expect_login "a backed-off guesser waits even with the right password" "$URL" 10.77.0.2 "$PASSWORD" 429
body=$(curl -s "$URL/metrics")
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")
check "/metrics without a session: 401" test "$code" = 401
says_nothing_of_logins() { ! grep -qE 'hv_sessions|route=|sw_http_requests_total' <<<"$1"; }
check "/metrics without a session names no login, session or route" says_nothing_of_logins "$body"

# 2. Every loopback address is one source (default --login-failures 5).
start_hv loop 0.0.0.0:19081
URL=$(hv_url 0.0.0.0:19081)
n401=0
for i in 2 3 4 5 6; do
    [ "$(login "$URL" "127.0.0.$i" guess-guess)" = 401 ] && n401=$((n401 + 1))
done
check "5 wrong passwords over 127.0.0.2-6 are checked" test "$n401" -eq 5
expect_login "127.0.0.7 is backed off with them" "$URL" 127.0.0.7 guess-guess 429
expect_login "127.0.0.1 too, the right password included" "$URL" 127.0.0.1 "$PASSWORD" 429
expect_login "and 127.200.3.4" "$URL" 127.200.3.4 "$PASSWORD" 429
expect_login "the admin at another address is not slowed" "$URL" 10.77.0.9 "$PASSWORD" 200
check "the log names the loopback source" grep -q "login from 127.200.3.4: rate limited (source loopback" "$WORK/loop.log"

# 3. IPv6: a /64 is one source; another /64 and ::1 are others.
start_hv six "[::]:19082"
URL=$(hv_url "[::]:19082")
n401=0
for i in 2 3 4 5 6; do
    [ "$(login "$URL" "fd77:0:0:1::$i" guess-guess)" = 401 ] && n401=$((n401 + 1))
done
check "5 wrong passwords from fd77:0:0:1::2-6 are checked" test "$n401" -eq 5
expect_login "fd77:0:0:1::7 (the same /64) is backed off" "$URL" fd77:0:0:1::7 "$PASSWORD" 429
expect_login "fd77:0:0:2::1 (another /64) logs in" "$URL" fd77:0:0:2::1 "$PASSWORD" 200
expect_login "::1 (loopback) logs in" "$URL" ::1 "$PASSWORD" 200

check_summary
