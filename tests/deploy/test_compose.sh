#!/usr/bin/env bash
# test_compose.sh [BUILD_DIR] — brings docker-compose.yml up under podman and checks it:
# every health check turns healthy; the stack is a private network (network-init's key, 0600;
# unsigned keys refused 403 not_a_member); transports registered through the published transport
# discovery port (signed by BUILD_DIR/bin/skywire-cli, with certificates signed by the network
# key) are listed and routed by the route
# finder (curl POST /routes); the messaging server is in the messaging discovery; restarting
# the transport discovery and recreating the PostgreSQL and messaging-server containers lose
# nothing; then tears everything down (containers, volumes, network), also on failure.
# With the `visors` profile (in the same up; SW_COMPOSE_VISORS=0 leaves it out): the three visors
# turn healthy, and over the 2-hop route A-B-C a skychat message posted to A's published port
# arrives at C, and curl through A's published SOCKS5 port reaches a service by the name the exit
# (C) resolves; a restarted visor A keeps its key and reaches C again.
#
# No Docker engine and no image registry are needed: docker-compose (v1, Debian's package)
# talks to a private `podman system service` socket, and the debian:bookworm-slim base image
# is made with debootstrap from the host's apt mirror (cached: reused while it exists; remove
# it with `podman rmi debian:bookworm-slim` to rebuild). Podman's health checks need systemd
# timers; without systemd this script runs them itself (`podman healthcheck run`) every 2 s.
#
# Root only (prints SKIP otherwise). On a machine without podman configuration it writes
# /etc/containers/containers.conf and storage.conf (runc, cgroupfs, netavark, no default
# ulimits); existing files are left alone.
# Environment: SW_TEST_DEPLOY=0 skips; SW_TEST_ONLY as in tests/run-tests.sh;
# SW_COMPOSE_PORT_BASE=N publishes on ports N..N+8 (default: a free random range);
# SW_DEBIAN_MIRROR overrides the mirror debootstrap uses; SW_KEEP_STACK=1 leaves the stack up;
# SW_COMPOSE_VISORS=0 leaves the visors profile out.
# Prints "ok: ..." / "FAILED: ..." per check and ends with "N passed, N failed".
# shellcheck disable=SC2317 # the check helpers are run through check NAME CMD
set -uo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build/release}" 2>/dev/null && pwd) || BUILD=""
CLI="$BUILD/bin/skywire-cli"
NAME=test_compose

skip() { echo "DESELECTED: $NAME: $*"; echo "0 passed, 0 failed"; exit 0; }
# A missing dependency is a skip for a developer and a failure under CI=true (tests/run-tests.sh).
missing() {
    if [ "${CI:-}" = true ]; then
        echo "FAILED: $NAME: $* (CI=true: a test may not skip for a missing dependency)"
        echo "0 passed, 1 failed"
        exit 1
    fi
    echo "SKIP: $NAME: $*"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
}
[ "${SW_TEST_DEPLOY:-1}" != 0 ] || skip "SW_TEST_DEPLOY=0"
if [ -n "${SW_TEST_ONLY:-}" ]; then
    sel=0
    set -f
    # shellcheck disable=SC2254
    for pat in $SW_TEST_ONLY; do case "$NAME" in $pat) sel=1 ;; esac; done
    set +f
    [ "$sel" = 1 ] || skip "not selected by SW_TEST_ONLY"
fi
[ "$(id -u)" -eq 0 ] || missing "needs root (rootful podman)"

# shellcheck source=tests/lib/check.sh
. "$ROOT/tests/lib/check.sh"
fail() { check_fail "$@"; }
log() { echo "--- $(date -u +%H:%M:%S) $*"; }

for c in podman docker-compose debootstrap curl python3 ss flock; do
    command -v "$c" >/dev/null || { fail "missing command $c (run scripts/install-deps.sh)"; echo "$CHECK_PASSED passed, $CHECK_FAILED failed"; exit 1; }
done
if [ ! -x "$CLI" ]; then
    fail "no skywire-cli in ${BUILD:-${1:-build/release}}/bin (build it first: make)"
    echo "$CHECK_PASSED passed, $CHECK_FAILED failed"
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sw-compose.XXXXXX") || exit 1
START=$(date +%s)
# Every step's timeout is cut to what is left of SW_COMPOSE_TIMEOUT (default 1200 s) minus a
# reserve for the teardown, so the whole run is bounded and still cleans up.
DEADLINE=$(($(date +%s) + ${SW_COMPOSE_TIMEOUT:-1200} - 120))
tmo() { # WANTED_SECONDS: that, or what is left before the deadline (at least 1)
    local left=$((DEADLINE - $(date +%s)))
    [ "$left" -ge "$1" ] && left=$1
    [ "$left" -ge 1 ] || left=1
    echo "$left"
}
PROJECT="swtest$$"
SOCK="$WORK/podman.sock"
SERVICE_PID=""
HEALTH_PID=""
LABEL="label=com.docker.compose.project=$PROJECT"
SERVICES=(postgres transport-discovery messaging-discovery messaging-server route-finder setup-node)
VISORS=()
if [ "${SW_COMPOSE_VISORS:-1}" != 0 ]; then
    VISORS=(visor-a visor-b visor-c)
    export COMPOSE_PROFILES=visors # every compose command: up, restart, down
else
    unset COMPOSE_PROFILES
fi
NPORTS=9

# ---- podman configuration (only what is missing) ------------------------------------------
setup_podman_conf() {
    local d
    mkdir -p /etc/containers
    if [ ! -e /etc/containers/containers.conf ]; then
        log "writing /etc/containers/containers.conf"
        cat >/etc/containers/containers.conf <<'EOF'
# Written by Skywire-C tests/deploy/test_compose.sh: rootful podman without systemd.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
EOF
    fi
    if [ ! -e /etc/containers/storage.conf ]; then
        # overlay when the kernel can mount it here, else vfs (slow but works everywhere);
        # storage already in use keeps its driver
        d=vfs
        if [ -d /var/lib/containers/storage/overlay ]; then
            d=overlay
        elif [ ! -d /var/lib/containers/storage/vfs ]; then
            mkdir -p "$WORK/ov/l" "$WORK/ov/u" "$WORK/ov/w" "$WORK/ov/m"
            if mount -t overlay overlay -o "lowerdir=$WORK/ov/l,upperdir=$WORK/ov/u,workdir=$WORK/ov/w" \
                "$WORK/ov/m" 2>/dev/null; then
                umount "$WORK/ov/m"
                d=overlay
            fi
            rm -rf "$WORK/ov"
        fi
        log "writing /etc/containers/storage.conf (driver $d)"
        cat >/etc/containers/storage.conf <<EOF
# Written by Skywire-C tests/deploy/test_compose.sh.
[storage]
driver = "$d"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
    fi
}

# ---- the base image: debootstrap of the suite the Dockerfiles start FROM -------------------
apt_mirror() { # the host's Debian mirror (the one apt uses), without a trailing slash
    local m
    m=${SW_DEBIAN_MIRROR:-}
    # shellcheck disable=SC2016 # apt's own $(FIELD) syntax
    [ -n "$m" ] || m=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk '$2 == "bookworm" { print $1; exit }')
    [ -n "$m" ] || m=http://deb.debian.org/debian
    echo "${m%/}"
}

base_image() { # REF (debian:SUITE-slim or debian:SUITE): present, or debootstrapped and imported
    local ref=$1 full suite mirror rootfs
    case "$ref" in */*) full=$ref ;; *) full=docker.io/library/$ref ;; esac
    suite=${ref#*:}
    suite=${suite%-slim}
    podman image exists "$full" && return 0
    mirror=$(apt_mirror)
    rootfs="$WORK/rootfs"
    log "debootstrap $suite from $mirror for $full"
    if ! timeout "$(tmo 600)" debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
        tail -20 "$WORK/debootstrap.log"
        return 1
    fi
    # as slim as the real image: no package caches, lists or docs
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
    # the host's apt settings that the mirror may need (an old snapshot, a proxy)
    apt-config dump 2>/dev/null | grep -E '^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy) ' \
        >"$rootfs/etc/apt/apt.conf.d/99host" || rm -f "$rootfs/etc/apt/apt.conf.d/99host"
    tar -C "$rootfs" -c . | timeout "$(tmo 300)" podman import \
        --change 'CMD ["/bin/bash"]' --change 'LABEL org.skywire.base=debootstrap' - "$full" >/dev/null
    local rc=$?
    rm -rf "$rootfs"
    return $rc
}

# ---- compose through podman's Docker API -------------------------------------------------
start_service() {
    podman system service --time=0 "unix://$SOCK" >"$WORK/podman-service.log" 2>&1 &
    SERVICE_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

compose() { # TIMEOUT ARGS... (the timeout is cut to the deadline; see tmo)
    local t
    t=$(tmo "$1")
    shift
    timeout -k 10 "$t" docker-compose --ansi never -f "$ROOT/docker-compose.yml" \
        --project-directory "$ROOT" -p "$PROJECT" "$@"
}

# Runs the containers' health checks (what systemd timers do on a host with systemd).
health_driver() {
    local c
    while :; do
        for c in $(podman ps -q --filter "$LABEL" 2>/dev/null); do
            timeout 10 podman healthcheck run "$c" >/dev/null 2>&1
        done
        sleep 2
    done
}

cid() { podman ps -aq --filter "$LABEL" --filter "label=com.docker.compose.service=$1" | head -1; }
health() { podman inspect --format '{{.State.Health.Status}}' "$(cid "$1")" 2>/dev/null; }

wait_healthy() { # SECONDS SERVICE...: all of them healthy within SECONDS
    local secs=$1 s ok i
    shift
    for ((i = 0; i < secs; i++)); do
        ok=1
        for s in "$@"; do
            [ "$(health "$s")" = healthy ] || { ok=0; break; }
        done
        [ "$ok" = 1 ] && return 0
        sleep 1
    done
    for s in "$@"; do echo "  $s: $(health "$s")"; done
    return 1
}

wait_http() { # SECONDS URL
    local i
    for ((i = 0; i < $1 * 2; i++)); do
        curl -fsS -m 2 -o /dev/null "$2" 2>/dev/null && return 0
        sleep 0.5
    done
    return 1
}

dump_logs() {
    local s
    for s in "${SERVICES[@]}" ${VISORS[@]:+visor-init "${VISORS[@]}"}; do
        echo "----- logs: $s"
        podman logs --tail 30 "$(cid "$s")" 2>&1 | sed 's/^/  /'
    done
}

teardown() {
    [ -n "$SERVICE_PID" ] || return 0
    DEADLINE=$(($(date +%s) + 180)) # the reserve
    compose 120 down -v --remove-orphans -t 5 >"$WORK/down.log" 2>&1
    # whatever compose left (it was killed, or the service died): by the project's label
    podman ps -aq --filter "$LABEL" | xargs -r podman rm -f -t 2 >/dev/null 2>&1
    podman volume ls -q --filter "$LABEL" | xargs -r podman volume rm -f >/dev/null 2>&1
    podman network rm -f "${PROJECT}_default" >/dev/null 2>&1
    return 0
}

finish() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$HEALTH_PID" ]; then
        kill "$HEALTH_PID" 2>/dev/null
        wait "$HEALTH_PID" 2>/dev/null
    fi
    if [ "${SW_KEEP_STACK:-0}" = 1 ] && [ -n "$SERVICE_PID" ]; then
        echo "SW_KEEP_STACK=1: project $PROJECT left up (docker-compose -p $PROJECT down -v)"
    else
        teardown
    fi
    if [ -n "$SERVICE_PID" ]; then
        kill "$SERVICE_PID" 2>/dev/null
        wait "$SERVICE_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
    log "$NAME took $(($(date +%s) - START)) s"
    [ "$rc" -eq 0 ] || [ "$CHECK_FAILED" -gt 0 ] || CHECK_FAILED=1
    echo "$CHECK_PASSED passed, $CHECK_FAILED failed"
    [ "$CHECK_FAILED" -eq 0 ]
    exit
}
trap finish EXIT
trap 'echo "FAILED: interrupted"; FAILED=$((FAILED + 1)); exit 130' INT TERM

# A stage that failed leaves nothing to check after it.
abort() { echo "FAILED: $*"; FAILED=$((FAILED + 1)); exit 1; }

# ---- free published ports ----------------------------------------------------------------
# Nine ports in a row below the ephemeral range (a client socket there would make the bind
# fail), none in use by any TCP socket.
port_free() { ! ss -Htan "sport = :$1" 2>/dev/null | grep -q .; }
pick_ports() {
    local base i try lo hi
    if [ -n "${SW_COMPOSE_PORT_BASE:-}" ]; then
        PORT_BASE=$SW_COMPOSE_PORT_BASE
    else
        read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
        hi=$(((lo - 20000) / 10))
        [ "$hi" -ge 100 ] || hi=100
        PORT_BASE=""
        for ((try = 0; try < 50; try++)); do
            base=$((20000 + (RANDOM % hi) * 10))
            for ((i = 0; i < NPORTS; i++)); do port_free $((base + i)) || continue 2; done
            PORT_BASE=$base
            break
        done
        [ -n "$PORT_BASE" ] || return 1
    fi
    export SW_TD_PORT=$PORT_BASE SW_MD_PORT=$((PORT_BASE + 1)) SW_RF_PORT=$((PORT_BASE + 2))
    export SW_SN_PORT=$((PORT_BASE + 3)) SW_MS_PORT=$((PORT_BASE + 4)) SW_MS_HTTP_PORT=$((PORT_BASE + 5))
    TD="http://127.0.0.1:$SW_TD_PORT" MD="http://127.0.0.1:$SW_MD_PORT" RF="http://127.0.0.1:$SW_RF_PORT"
    SN="http://127.0.0.1:$SW_SN_PORT" MSH="http://127.0.0.1:$SW_MS_HTTP_PORT"
    # the visors profile: skychat of A and C, A's SOCKS5 listener (host loopback)
    export SW_CHAT_A_PORT=$((PORT_BASE + 6)) SW_CHAT_C_PORT=$((PORT_BASE + 7)) SW_SOCKS_PORT=$((PORT_BASE + 8))
    CHAT_A="http://127.0.0.1:$SW_CHAT_A_PORT" CHAT_C="http://127.0.0.1:$SW_CHAT_C_PORT"
    SOCKS="127.0.0.1:$SW_SOCKS_PORT"
}

# ==== 1. podman, base image, images ========================================================
setup_podman_conf
BASE_REFS=$(awk 'toupper($1) == "FROM" { print $2 }' "$ROOT/deploy/Dockerfile" "$ROOT/deploy/postgres/Dockerfile" | sort -u)
if [ -z "$BASE_REFS" ] || [ "$(wc -l <<<"$BASE_REFS")" -ne 1 ]; then
    abort "the Dockerfiles start FROM one base image (got: ${BASE_REFS//$'\n'/ })"
fi
T0=$(date +%s)
(
    flock -w "$(tmo 900)" 9 || exit 1 # concurrent runs build the base image once
    base_image "$BASE_REFS"
) 9>/tmp/skywire-compose-base.lock || abort "base image $BASE_REFS (debootstrap + podman import)"
echo "ok: base image $BASE_REFS ($(($(date +%s) - T0)) s)"
CHECK_PASSED=$((CHECK_PASSED + 1))

start_service || abort "podman system service on $SOCK"
export DOCKER_HOST="unix://$SOCK" COMPOSE_HTTP_TIMEOUT=300
pick_ports || abort "no free port range"
# the setup node reaches the messaging server by its advertised address: inside the network
export MSG_PUBLIC_ADDR=messaging-server:8081
export POSTGRES_PASSWORD="ci-$RANDOM$RANDOM" SKYWIRE_LOG_LEVEL=info
log "project $PROJECT, ports $PORT_BASE..$((PORT_BASE + NPORTS - 1))"

T0=$(date +%s)
# The five services share one image (skywire-c:latest): building it once is enough.
if ! compose 900 build postgres transport-discovery >"$WORK/build.log" 2>&1; then
    tail -40 "$WORK/build.log"
    abort "compose build"
fi
echo "ok: compose build ($(($(date +%s) - T0)) s)"
CHECK_PASSED=$((CHECK_PASSED + 1))

# ==== 2. up, health ========================================================================
health_driver &
HEALTH_PID=$!
T0=$(date +%s)
# A port taken between pick_ports and the bind: down, other ports, again (twice at most).
for try in 1 2 3; do
    compose 300 up -d --no-build >"$WORK/up.log" 2>&1 && break
    if [ "$try" -lt 3 ] && [ -z "${SW_COMPOSE_PORT_BASE:-}" ] &&
        grep -q 'address already in use' "$WORK/up.log"; then
        compose 120 down -v -t 2 >>"$WORK/down.log" 2>&1
        pick_ports || abort "no free port range"
        log "a port was taken; again on $PORT_BASE..$((PORT_BASE + NPORTS - 1))"
        continue
    fi
    cat "$WORK/up.log"
    dump_logs
    abort "compose up -d"
done
echo "ok: compose up -d ($(($(date +%s) - T0)) s)"
CHECK_PASSED=$((CHECK_PASSED + 1))
if ! check "every health check healthy (${SERVICES[*]})" wait_healthy 120 "${SERVICES[@]}"; then
    dump_logs
    abort "stack not healthy"
fi
for url in "$TD" "$MD" "$RF" "$SN" "$MSH"; do
    check "GET $url/health through the published port" wait_http 20 "$url/health"
done

# ==== 3. transports and routes =============================================================
# The stack is a private network: network-init made the network key in the volume netkey (read
# here from the host, as root) and every service refuses keys it did not sign.
NETKEY=$(podman volume inspect --format '{{.Mountpoint}}' "${PROJECT}_netkey" 2>/dev/null)/network.key
check "network-init made the network key (mode 0600)" \
    bash -c '[ "$(stat -c %a "$1")" = 600 ]' _ "$NETKEY"
for k in a b c; do
    "$CLI" keygen -o "$WORK/$k.key" >"$WORK/$k.pk" || abort "skywire-cli keygen"
done
A=$(cat "$WORK/a.pk") B=$(cat "$WORK/b.pk") C=$(cat "$WORK/c.pk")
unsigned_refused() {
    "$CLI" --json tpdisc register --tpd "$TD" --key-file "$WORK/a.key" --peer-key-file "$WORK/b.key" \
        --type stcp >"$WORK/reg-unsigned.json" 2>&1 && return 1
    grep -q not_a_member "$WORK/reg-unsigned.json"
}
check "a transport of unsigned keys is refused (403 not_a_member)" unsigned_refused
for k in a b c; do
    "$CLI" net sign --key "$NETKEY" --pk "$(cat "$WORK/$k.pk")" --role visor --name "test-$k" \
        --out "$WORK/$k.cert" >/dev/null || abort "skywire-cli net sign"
done

register() { # KEY PEER: a transport between them, signed by both (and their certificates)
    "$CLI" --json tpdisc register --tpd "$TD" --key-file "$WORK/$1.key" \
        --peer-key-file "$WORK/$2.key" --cert-file "$WORK/$1.cert" --peer-cert-file "$WORK/$2.cert" \
        --type stcp --label compose-test >"$WORK/reg-$1$2.json" 2>&1
}
# Each edge keeps its own half (up, refreshed): a transport is up once both edges registered it.
both_edges() { register "$1" "$2" && register "$2" "$1"; }
check "register transport A-B (signed, by each edge, via published port)" both_edges a b
check "register transport B-C (signed, by each edge, via published port)" both_edges b c

# The transport ids listed for B's edges, sorted, one line.
tp_ids() {
    curl -fsS -m 5 "$TD/transports/edge:$B" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
d = d if isinstance(d, list) else d.get("transports", [])
print(" ".join(sorted(e.get("t_id") or e.get("entry", {}).get("t_id", "") for e in d)))'
}
IDS=$(tp_ids)
two_ids() { [ "$(wc -w <<<"$1")" -eq 2 ]; }
check "both transports listed by the transport discovery ($IDS)" two_ids "$IDS"

# POST /routes A -> C: one path of two hops, A->B then B->C, over the registered ids.
route_ok() {
    local body
    body=$(curl -sS -m 5 -w '\n%{http_code}' "$RF/routes" -H 'Content-Type: application/json' \
        -d '{"edges":[["'"$A"'","'"$C"'"]],"opts":{"min_hops":1,"max_hops":3,"count":1}}' 2>&1)
    echo "$body" >"$WORK/route.last"
    [ "${body##*$'\n'}" = 200 ] || return 1
    body=${body%$'\n'*}
    python3 -c '
import json, sys
a, b, c, ids = sys.argv[1:5]
r = json.loads(sys.argv[5])[a + ":" + c]
fwd, rev = r["forward"][0], r["reverse"][0]
assert [(h["from"], h["to"]) for h in fwd] == [(a, b), (b, c)], fwd
assert [(h["from"], h["to"]) for h in rev] == [(c, b), (b, a)], rev
assert sorted(h["t_id"] for h in fwd) == sorted(ids.split()), (fwd, ids)
' "$A" "$B" "$C" "$IDS" "$body" 2>>"$WORK/route.err"
}
wait_route() { # SECONDS
    local i
    for ((i = 0; i < $1 * 2; i++)); do
        route_ok && return 0
        sleep 0.5
    done
    echo "  last answer: $(tr '\n' ' ' <"$WORK/route.last" 2>/dev/null | cut -c1-400)"
    tail -3 "$WORK/route.err" 2>/dev/null | sed 's/^/  /'
    curl -sS -m 5 "$RF/metrics" 2>&1 | grep -E '^rf_(sync|graph)' | sed 's/^/  /'
    return 1
}
check "route finder: POST /routes A->C is A->B->C (published port)" wait_route 15

# ==== 4. messaging =========================================================================
MS_PK=""
ms_pk() { # the messaging server's public key, from its log
    podman logs "$(cid messaging-server)" 2>&1 | sed -n 's/.*public key \([0-9a-f]\{64\}\).*/\1/p' | tail -1
}
ms_registered() { # the messaging discovery lists $MS_PK as an available server
    curl -fsS -m 5 "$MD/messaging-discovery/available_servers" 2>/dev/null | grep -q "$MS_PK"
}
wait_ms_registered() {
    local i
    for ((i = 0; i < 40; i++)); do
        ms_registered && return 0
        sleep 0.5
    done
    return 1
}
MS_PK=$(ms_pk)
check "messaging-server registered in messaging discovery (${MS_PK:0:16}...)" wait_ms_registered

# ==== 4b. the visors profile: A - B - C with apps ===========================================
visor_checks() {
    local T0 PKS PK_A PK_C
    T0=$(date +%s)
    if ! check "visors healthy (${VISORS[*]})" wait_healthy 120 "${VISORS[@]}"; then
        dump_logs
        return
    fi
    log "visors healthy after $(($(date +%s) - T0)) s"
    # the keys visor-init wrote (the same file every visor gets)
    PKS=$(podman exec "$(cid visor-a)" cat /var/lib/skywire/peers.env 2>/dev/null)
    PK_A=$(sed -n 's/^PK_A=\([0-9a-f]\{64\}\)$/\1/p' <<<"$PKS")
    PK_C=$(sed -n 's/^PK_C=\([0-9a-f]\{64\}\)$/\1/p' <<<"$PKS")
    if [ -z "$PK_A" ] || [ -z "$PK_C" ]; then
        fail "visor keys in visor-a:/var/lib/skywire/peers.env (got: ${PKS:-nothing})"
        return
    fi
    # POST /message answers 200 once C's skychat stored it; until the transports are up
    # and the route is set up it answers 502 (no_route, ...): retry, bounded.
    chat_sent() { # within 90 s
        local i code end=$((SECONDS + 90))
        for ((i = 0; SECONDS < end; i++)); do
            code=$(curl -sS -m 15 -o "$WORK/chat.last" -w '%{http_code}' -X POST "$CHAT_A/message" \
                -H 'Content-Type: application/json' \
                -d '{"recipient":"'"$PK_C"'","message":"Hello Mike!"}' 2>>"$WORK/chat.err")
            [ "$code" = 200 ] && { log "skychat: sent after $(($(date +%s) - T0)) s (try $((i + 1)))"; return 0; }
            sleep 2
        done
        echo "  last answer: $code $(head -c 300 "$WORK/chat.last" 2>/dev/null)"
        return 1
    }
    chat_arrived() {
        local i out
        for ((i = 0; i < 20; i++)); do
            out=$(curl -fsS -m 5 "$CHAT_C/messages" 2>/dev/null)
            grep -q 'Hello Mike!' <<<"$out" && grep -q "$PK_A" <<<"$out" && return 0
            sleep 0.5
        done
        echo "  C's messages: $(head -c 300 <<<"$out")"
        return 1
    }
    check "skychat: 'Hello Mike!' POSTed to A ($CHAT_A) with C as recipient: 200" chat_sent &&
        check "skychat: 'Hello Mike!' from A listed by C (GET $CHAT_C/messages)" chat_arrived
    # SOCKS5 through A, C as the exit: the name resolves at C (in the compose network)
    socks_ok() { # within 60 s
        local end=$((SECONDS + 60))
        while [ "$SECONDS" -lt "$end" ]; do
            curl -fsS -m 10 -o "$WORK/socks.last" --socks5-hostname "$SOCKS" \
                http://transport-discovery:9091/health 2>"$WORK/socks.err" &&
                grep -q '"status"' "$WORK/socks.last" && return 0
            sleep 2
        done
        echo "  last error: $(tail -1 "$WORK/socks.err" 2>/dev/null)"
        return 1
    }
    check "socks5: curl via A ($SOCKS) fetches http://transport-discovery:9091/health at exit C" socks_ok
    # A and C only through B: A's transports name B, never C
    only_b() {
        local tps pk_b
        pk_b=$(sed -n 's/^PK_B=\([0-9a-f]\{64\}\)$/\1/p' <<<"$PKS")
        tps=$(podman exec "$(cid visor-a)" skywire-cli --json node ls-tp 2>/dev/null)
        [ -n "$pk_b" ] && grep -q "$pk_b" <<<"$tps" && ! grep -q "$PK_C" <<<"$tps"
    }
    check "visor A has a transport to B and none to C" only_b
    api_locked() { # the local API wants the visor's token (data_dir/api-token), even in its container
        [ "$(podman exec "$(cid visor-a)" curl -s -o /dev/null -w '%{http_code}' \
            http://127.0.0.1:3435/api/summary 2>/dev/null)" = 401 ]
    }
    check "visor A's API answers 401 without its token" api_locked
    # A restarted: the same config (key) from its volume, the transport to B redialed, and a
    # new route to C
    same_key_a() { # (only_b used the CLI's default config, ./skywire-config.json in the workdir)
        [ "$(podman exec "$(cid visor-a)" skywire-cli --config /var/lib/skywire/skywire-config.json \
            node pk 2>/dev/null)" = "$PK_A" ]
    }
    if compose 60 restart -t 5 visor-a >>"$WORK/restart.log" 2>&1; then
        check "restart visor-a: healthy again" wait_healthy 60 visor-a
        check "restart visor-a: the same public key" same_key_a
        check "restart visor-a: skychat to C over A-B-C again" chat_sent
    else
        cat "$WORK/restart.log"
        fail "compose restart visor-a"
    fi
    log "visors profile checks took $(($(date +%s) - T0)) s"
}
[ "${#VISORS[@]}" -eq 0 ] || visor_checks

# ==== 5. restarts lose nothing =============================================================
same_ids() { [ "$(tp_ids)" = "$IDS" ]; }
wait_same_ids() {
    local i
    for ((i = 0; i < 60; i++)); do
        same_ids && return 0
        sleep 0.5
    done
    return 1
}
if compose 120 restart -t 5 transport-discovery >>"$WORK/restart.log" 2>&1; then
    check "restart transport-discovery: healthy again" wait_healthy 60 transport-discovery
    check "restart transport-discovery: the same transports listed" wait_same_ids
else
    cat "$WORK/restart.log"
    fail "compose restart transport-discovery"
fi

# A new PostgreSQL container on the same named volume; the services reconnect.
if compose 180 up -d --no-build --no-deps --force-recreate postgres >>"$WORK/restart.log" 2>&1; then
    check "recreate postgres: healthy again" wait_healthy 90 postgres
    check "recreate postgres: the same transports listed (data in the volume)" wait_same_ids
    check "recreate postgres: route still found" wait_route 30
    check "recreate postgres: every service healthy" wait_healthy 90 "${SERVICES[@]}"
else
    cat "$WORK/restart.log"
    fail "compose up --force-recreate postgres"
fi

# A new messaging-server container keeps its key (named volume) and registers again.
if compose 120 up -d --no-build --no-deps --force-recreate messaging-server >>"$WORK/restart.log" 2>&1; then
    check "recreate messaging-server: healthy again" wait_healthy 60 messaging-server
    same_pk() { [ -n "$MS_PK" ] && [ "$(ms_pk)" = "$MS_PK" ]; }
    check "recreate messaging-server: same public key" same_pk
    check "recreate messaging-server: registered again" wait_ms_registered
else
    cat "$WORK/restart.log"
    fail "compose up --force-recreate messaging-server"
fi

[ "$CHECK_FAILED" -eq 0 ] || dump_logs

# ==== 6. teardown ==========================================================================
if [ "${SW_KEEP_STACK:-0}" != 1 ]; then
    kill "$HEALTH_PID" 2>/dev/null
    wait "$HEALTH_PID" 2>/dev/null
    HEALTH_PID=""
    nothing_left() {
        compose 180 down -v --remove-orphans -t 5 >"$WORK/down.log" 2>&1 || { cat "$WORK/down.log"; return 1; }
        [ -z "$(podman ps -aq --filter "$LABEL")" ] &&
            [ -z "$(podman volume ls -q --filter "$LABEL")" ] &&
            ! podman network exists "${PROJECT}_default"
    }
    check "compose down -v: no containers, volumes or network left" nothing_left
fi
exit 0
