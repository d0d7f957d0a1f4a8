#!/usr/bin/env bash
# visor-entrypoint.sh — the visors of docker-compose.yml's `visors` profile (image path:
# /usr/local/bin/skywire-visor-entrypoint).
#
#   init     (the one-shot visor-init service, as root) writes, once, the configs of visors
#            A, B and C into their volumes (/visors/a, /visors/b, /visors/c): the services'
#            in-network URLs, the setup node's public key (read from its key volume, mounted
#            read-only at /run/setup-node), stcp on 0.0.0.0:7777, the default apps with
#            skychat on 0.0.0.0:8000, and on A socksproxy-client on 0.0.0.0:1080 with C as its
#            exit (C's exit policy allows the compose network's subnet as it is at the first
#            init, so the demo reaches the services by name; nothing else private), and the
#            private network's key (/run/network/network.pk, made by network-init). Each
#            visor's certificate (visor.cert beside its config) is signed with the network key
#            (/var/lib/skywire-network, read-only here) when missing or older than 300 days.
#            Existing configs are kept (same keys on every start); ssh_authorized_keys
#            (the three visors' keys) and peers.env (PK_A, PK_B, PK_C) are rewritten each time.
#   visor    (visor-a/b/c) runs skywire-visor on /var/lib/skywire/skywire-config.json as skywire;
#            with SW_VISOR_PEER=b|c and SW_VISOR_PEER_ADDR=HOST:PORT it adds the stcp transport
#            to that visor once the local API answers, retrying until the peer is up, unless the
#            visor already has one to it (transports are remembered in data_dir and redialed).
#            skywire-cli takes the API's address and token from the config (--config).
#            SIGTERM goes to the visor. Started as root, it first keeps only the first
#            nameserver in /etc/resolv.conf (the network's own DNS: aardvark-dns under podman,
#            127.0.0.11 under Docker), then drops to skywire. Podman lists the host's servers
#            after it, and they answer NXDOMAIN for visor-b: the visor asks the C library's
#            resolver, which tries the servers in order, so this only guards against a
#            resolver that spreads queries over all of them (as libevent's evdns does).
# Environment (init): SW_TPD_URL SW_MDISC_URL SW_RF_URL (in-network defaults), SKYWIRE_LOG_LEVEL.
set -uo pipefail

log() { echo "visor-entrypoint: $*" >&2; }
# A key file's public key, or a visor config's own (keys.public_key, not network.public_key).
public_key() {
    local re='s/.*"public_key": *"\([0-9a-f]\{64\}\)".*/\1/p' k
    k=$(sed -n "/\"keys\"/,/}/$re" "$1" 2>/dev/null | head -n 1)
    [ -n "$k" ] || k=$(sed -n "$re" "$1" 2>/dev/null | head -n 1)
    echo "$k"
}

# The IPv4 subnet of this container's network (the first on-link route of /proc/net/route,
# whose fields are little-endian hex), e.g. 10.89.0.0/24; empty when there is none.
network_subnet() {
    local iface dst gw flags _r _u _m mask bits=0 x
    while read -r iface dst gw flags _r _u _m mask _; do
        [ "$iface" = Iface ] && continue
        [ "$dst" = 00000000 ] || [ "$gw" != 00000000 ] && continue
        x=$((16#$mask))
        while [ "$x" -gt 0 ]; do bits=$((bits + (x & 1))); x=$((x >> 1)); done
        x=$((16#$dst))
        echo "$((x & 255)).$(((x >> 8) & 255)).$(((x >> 16) & 255)).$(((x >> 24) & 255))/$bits"
        return 0
    done </proc/net/route
}

init() {
    local sn_key=/run/setup-node/setup-node.key sn_pk="" v dir i extra subnet net_pk
    net_pk=$(tr -d ' \n' </run/network/network.pk 2>/dev/null)
    [ ${#net_pk} = 64 ] || { log "no network key in /run/network/network.pk (network-init)"; exit 1; }
    # the setup node creates its key before it listens; the volume is shared read-only
    for ((i = 0; i < 60; i++)); do
        sn_pk=$(public_key "$sn_key")
        [ -n "$sn_pk" ] && break
        sleep 1
    done
    [ -n "$sn_pk" ] || { log "no public key in $sn_key (is the setup-node volume mounted?)"; exit 1; }
    for v in c b a; do # C first: A's socksproxy-client names C's key
        dir=/visors/$v
        [ -d "$dir" ] || { log "$dir is not mounted"; exit 1; }
        if [ ! -s "$dir/skywire-config.json" ]; then
            extra=()
            [ "$v" = a ] && extra=(--socks-srv "$(public_key /visors/c/skywire-config.json)" --socks-addr 0.0.0.0:1080)
            # C is the demo's SOCKS exit: its policy refuses private ranges by default, so it
            # allows this compose network (and nothing else private) for the demo's services.
            if [ "$v" = c ]; then
                subnet=$(network_subnet)
                [ -n "$subnet" ] && extra=(--socks-allow "$subnet") &&
                    log "visor C's SOCKS exit allows the compose network $subnet"
            fi
            rm -f "$dir/skywire-config.json"
            skywire-cli node gen-config -o "$dir/skywire-config.json" \
                --tpd "${SW_TPD_URL:-http://transport-discovery:9091}" \
                --mdisc "${SW_MDISC_URL:-http://messaging-discovery:9090}" \
                --rf "${SW_RF_URL:-http://route-finder:9092}" --setup-node "$sn_pk" \
                --stcp 0.0.0.0:7777 --api-addr 127.0.0.1:3435 --data-dir /var/lib/skywire/data \
                --skychat-addr 0.0.0.0:8000 --log-level "${SKYWIRE_LOG_LEVEL:-info}" \
                --network "$net_pk" --cert-file /var/lib/skywire/visor.cert "${extra[@]}" >&2 ||
                { log "gen-config for visor $v failed"; exit 1; }
        fi
        if [ ! -s "$dir/visor.cert" ] || [ -n "$(find "$dir/visor.cert" -mtime +300)" ]; then
            skywire-cli net sign --key /var/lib/skywire-network/network.key \
                --pk "$(public_key "$dir/skywire-config.json")" --role visor --name "visor-$v" \
                --expires 365d --out "$dir/visor.cert" >/dev/null ||
                { log "signing visor $v failed"; exit 1; }
        fi
    done
    local pk_a pk_b pk_c
    pk_a=$(public_key /visors/a/skywire-config.json)
    pk_b=$(public_key /visors/b/skywire-config.json)
    pk_c=$(public_key /visors/c/skywire-config.json)
    for v in a b c; do
        dir=/visors/$v
        mkdir -p "$dir/data"
        printf '# visor keys allowed to use SSH on visor %s\n%s\n%s\n%s\n' "$v" "$pk_a" "$pk_b" "$pk_c" \
            >"$dir/data/ssh_authorized_keys"
        printf 'PK_A=%s\nPK_B=%s\nPK_C=%s\nSETUP_NODE_PK=%s\n' "$pk_a" "$pk_b" "$pk_c" "$sn_pk" >"$dir/peers.env"
        chown -R skywire:skywire "$dir"
    done
    log "visors A $pk_a, B $pk_b, C $pk_c; setup node $sn_pk"
}

VISOR_PID=""
on_term() { [ -n "$VISOR_PID" ] && kill -TERM "$VISOR_PID" 2>/dev/null; }

CONF=/var/lib/skywire/skywire-config.json
# the API address and its token (data_dir/api-token, made by the visor) come from the config
api() { skywire-cli --config "$CONF" "$@"; }

add_transport() { # PEER_PK ADDR: until the visor has a transport to PEER_PK (bounded by the visor's life)
    local pk=$1 addr=$2 i out
    for ((i = 0; i < 150; i++)); do # the local API
        curl -fsS -m 2 -o /dev/null http://127.0.0.1:3435/health 2>/dev/null && break
        kill -0 "$VISOR_PID" 2>/dev/null || return 1
        sleep 0.2
    done
    if api --json node ls-tp 2>/dev/null | grep -q "$pk"; then
        log "transport to $pk at $addr: already known (redialed by the visor)"
        return 0
    fi
    for ((i = 1; ; i++)); do
        kill -0 "$VISOR_PID" 2>/dev/null || return 1
        if out=$(api node add-tp "$pk" --type stcp --addr "$addr" 2>&1); then
            log "transport to $pk at $addr added: $out"
            return 0
        fi
        [ $((i % 15)) -eq 1 ] && log "add-tp $pk --addr $addr (attempt $i, retrying): $out"
        sleep 2
    done
}

only_first_nameserver() {
    local f=/etc/resolv.conf text
    text=$(awk '/^[ \t]*nameserver/ { if (n++) next } { print }' "$f" 2>/dev/null) || return 0
    [ "$text" = "$(cat "$f")" ] && return 0
    # the file is a bind mount: rewrite it in place
    printf '%s\n' "$text" >"$f" 2>/dev/null || log "cannot rewrite $f (stcp names may resolve slowly)"
}

visor() {
    local conf=$CONF peer_pk="" rc
    if [ "$(id -u)" = 0 ]; then
        only_first_nameserver
        export HOME=/var/lib/skywire
        exec setpriv --reuid=skywire --regid=skywire --init-groups /bin/bash "$0" visor
    fi
    [ -s "$conf" ] || { log "no $conf (the visor-init service writes it)"; exit 1; }
    if [ -n "${SW_VISOR_PEER:-}" ]; then
        case "$SW_VISOR_PEER" in
        a | b | c) peer_pk=$(sed -n "s/^PK_${SW_VISOR_PEER^^}=\([0-9a-f]\{64\}\)\$/\1/p" /var/lib/skywire/peers.env) ;;
        esac
        [ -n "$peer_pk" ] || { log "SW_VISOR_PEER must be a, b or c (keys in peers.env)"; exit 1; }
    fi
    log "visor $(public_key "$conf")"
    trap on_term TERM INT
    cd /var/lib/skywire || exit 1
    skywire-visor "$conf" &
    VISOR_PID=$!
    if [ -n "$peer_pk" ]; then
        add_transport "$peer_pk" "${SW_VISOR_PEER_ADDR:-visor-$SW_VISOR_PEER:7777}" &
    fi
    # wait returns early when a trapped signal arrives: wait until the visor itself is gone
    while :; do
        wait "$VISOR_PID"
        rc=$?
        kill -0 "$VISOR_PID" 2>/dev/null || break
    done
    exit "$rc"
}

case "${1:-visor}" in
init) init ;;
visor) visor ;;
*) exec "$@" ;;
esac
