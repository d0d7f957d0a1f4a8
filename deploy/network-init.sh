#!/usr/bin/env bash
# network-init.sh — the one-shot network-init service of docker-compose.yml (image path:
# /usr/local/bin/skywire-network-init), run as root before every service.
#
# Makes the compose network private (docs/operator-guide.md "Private networks"):
#   - the network key, once: /var/lib/skywire-network/network.key (volume netkey, mode 0600,
#     mounted only here and in visor-init), its public key in /run/network/network.pk (volume
#     netpub, mounted read-only by every service);
#   - the messaging server's and setup node's keys (made here when missing, so that they can
#     be signed before those services first start) and their certificates, signed when missing
#     or older than 300 days (a certificate lasts 365 days).
# Restarting the stack re-runs it; nothing that exists is replaced.
set -euo pipefail

NET_DIR=/var/lib/skywire-network
PUB_DIR=/run/network
log() { echo "network-init: $*" >&2; }
public_key() { sed -n 's/.*"public_key": *"\([0-9a-f]\{64\}\)".*/\1/p' "$1" 2>/dev/null | head -n 1; }

mkdir -p "$NET_DIR" "$PUB_DIR"
chmod 0700 "$NET_DIR"
if [ ! -s "$NET_DIR/network.key" ]; then
    skywire-cli net init --out "$NET_DIR/network.key" >/dev/null
    log "new network key made"
fi
net_pk=$(public_key "$NET_DIR/network.key")
[ -n "$net_pk" ] || { log "no public key in $NET_DIR/network.key"; exit 1; }
printf '%s\n' "$net_pk" >"$PUB_DIR/network.pk.tmp"
chmod 0644 "$PUB_DIR/network.pk.tmp"
mv "$PUB_DIR/network.pk.tmp" "$PUB_DIR/network.pk"

member() { # name role dir: key dir/name.key (made when missing), certificate dir/name.cert
    local name=$1 role=$2 dir=$3 pk
    [ -d "$dir" ] || { log "$dir is not mounted"; exit 1; }
    [ -s "$dir/$name.key" ] || skywire-cli keygen -o "$dir/$name.key" >/dev/null
    pk=$(public_key "$dir/$name.key")
    if [ ! -s "$dir/$name.cert" ] || [ -n "$(find "$dir/$name.cert" -mtime +300)" ]; then
        skywire-cli net sign --key "$NET_DIR/network.key" --pk "$pk" --role "$role" --name "$name" \
            --expires 365d --out "$dir/$name.cert" >/dev/null
        log "$name $pk signed as $role"
    fi
    chown skywire:skywire "$dir" "$dir/$name.key" "$dir/$name.cert"
}
member messaging-server messaging-server /keys/messaging-server
member setup-node setup-node /keys/setup-node
log "network $net_pk"
