#!/usr/bin/env bash
# run-local.sh — brings up a complete local Skywire-C network on this machine:
#   an embedded PostgreSQL cluster, the five services, and three visors A, B, C (with apps) where A and C
#   are connected only through B (stcp transports A-B and B-C).
# State (database, keys, visor configs and data) lives in build/local/ and is reused by the
# next run. Runs in the foreground; Ctrl-C stops every process it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SW_LOCAL_BIN:-$ROOT/build/release/bin}  # tests/shell/test_run_local.sh points these
STATE=${SW_LOCAL_STATE:-$ROOT/build/local}     # at its build and a throwaway directory
CLI="$BIN/skywire-cli"
MD_ADDR=127.0.0.1:9090
TD_ADDR=127.0.0.1:9091
RF_ADDR=127.0.0.1:9092
SN_ADDR=127.0.0.1:9093
MS_ADDR=127.0.0.1:8081
MS_HTTP=127.0.0.1:8082
HV_ADDR=127.0.0.1:9080
HV_VISORS=127.0.0.1:9081
NETWORK_MODE=${SW_LOCAL_NETWORK:-private}
pids=()

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    bash "$ROOT/tests/pg-cluster.sh" stop "$STATE/pg" >/dev/null 2>&1 || true
    echo "local network stopped (state kept in $STATE; remove it to start afresh)"
}

wait_health() { # name url
    for _ in $(seq 1 75); do
        curl -fsS "$2" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "$1 did not become healthy; see $STATE/$1.log" >&2
    tail -n 20 "$STATE/$1.log" >&2
    exit 1
}

start() { # name command...
    local name=$1
    shift
    "$@" 2>>"$STATE/$name.log" &
    pids+=($!)
}

public_key() { # key file or visor config -> its own public key (keys.public_key in a config)
    perl -MJSON::PP -e 'local $/; open(my $f, "<", $ARGV[0]) or exit 1; my $j = decode_json(<$f>);
        print(($j->{keys} || $j)->{public_key} // "")' "$1" 2>/dev/null
}

mkdir -p "$STATE"
# PostgreSQL listens on its unix socket only (mode 0700): no TCP port for other local users or
# a SOCKS exit to reach with the trusted superuser.
PG_URL=$(bash "$ROOT/tests/pg-cluster.sh" start-socket "$STATE/pg")
trap cleanup EXIT
trap 'exit 130' INT TERM
db_url() { echo "postgresql:///$1?${PG_URL#*\?}"; } # the same socket, another database
for db in transport_discovery messaging_discovery setup_node; do
    psql -q "$PG_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
        psql -q "$PG_URL" -c "CREATE DATABASE $db" >/dev/null
done
for k in setup-node hypervisor messaging-server; do
    [ -f "$STATE/$k.key" ] || "$CLI" keygen -o "$STATE/$k.key" >/dev/null
done
SN_PK=$(public_key "$STATE/setup-node.key")
HV_PK=$(public_key "$STATE/hypervisor.key")

# Private network: the network key (made once, 0600) and a certificate per member, signed when
# missing or older than 300 days (they last 365).
NET=() NET_REV=() NET_PK=""
sign() { # name public-key role certificate-file
    [ -n "$NET_PK" ] || return 0
    [ -s "$4" ] && [ -z "$(find "$4" -mtime +300)" ] && return 0
    "$CLI" net sign --key "$STATE/network.key" --pk "$2" --role "$3" --name "$1" --expires 365d \
        --out "$4" >/dev/null
}
case "$NETWORK_MODE" in
private)
    [ -f "$STATE/network.key" ] || "$CLI" net init --out "$STATE/network.key" >/dev/null
    NET_PK=$(public_key "$STATE/network.key")
    NET=(--network "$NET_PK")
    NET_REV=(--network "$NET_PK" --revocations "http://$TD_ADDR")
    sign messaging-server "$(public_key "$STATE/messaging-server.key")" messaging-server \
        "$STATE/messaging-server.cert"
    sign setup-node "$SN_PK" setup-node "$STATE/setup-node.cert"
    ;;
open) ;;
*) echo "SW_LOCAL_NETWORK must be private or open, not '$NETWORK_MODE'" >&2; exit 2 ;;
esac
cert_of() { [ -n "$NET_PK" ] && echo --cert-file "$STATE/$1.cert"; }

start transport-discovery "$BIN/transport-discovery" --addr "$TD_ADDR" --db "$(db_url transport_discovery)" "${NET[@]}"
start messaging-discovery "$BIN/messaging-discovery" --addr "$MD_ADDR" --db "$(db_url messaging_discovery)" "${NET_REV[@]}"
wait_health transport-discovery "http://$TD_ADDR/health"
wait_health messaging-discovery "http://$MD_ADDR/health"
start route-finder "$BIN/route-finder" --addr "$RF_ADDR" --db "$(db_url transport_discovery)" "${NET[@]}"
start messaging-server "$BIN/messaging-server" --addr "$MS_ADDR" --http-addr "$MS_HTTP" \
    --key-file "$STATE/messaging-server.key" --discovery "http://$MD_ADDR" "${NET_REV[@]}" \
    $(cert_of messaging-server)
wait_health messaging-server "http://$MS_HTTP/health"
start setup-node "$BIN/setup-node" --addr "$SN_ADDR" --db "$(db_url setup_node)" \
    --key-file "$STATE/setup-node.key" --messaging-discovery "http://$MD_ADDR" "${NET_REV[@]}" \
    $(cert_of setup-node)
wait_health route-finder "http://$RF_ADDR/health"
wait_health setup-node "http://$SN_ADDR/health"

# Three visors with apps (skychat, SSH, SSH-client, socksproxy; A also runs socksproxy-client
# with C as its exit). Configs are generated once (C first: A's config names C's key) and reused.
# Exits refuse loopback by default (common/exit_policy.h); for the SOCKS demo below, C's
# socksproxy allows 127.0.0.1 (SOCKS_DEMO_ALLOW), so A can reach a service of this machine.
declare -A API STCP CHAT
API=([a]=127.0.0.1:3435 [b]=127.0.0.1:3436 [c]=127.0.0.1:3437)
STCP=([a]=127.0.0.1:7771 [b]=127.0.0.1:7772 [c]=127.0.0.1:7773)
CHAT=([a]=127.0.0.1:8000 [b]=127.0.0.1:8001 [c]=127.0.0.1:8002)
SOCKS_ADDR=127.0.0.1:1080
SOCKS_DEMO_ALLOW=127.0.0.1/32

# Adds "-allow SOCKS_DEMO_ALLOW" to the socksproxy of a config generated before the exit
# policy existed (its args have no -allow), so that reused state keeps the demo working.
socks_demo_allow() { # config file
    perl -MJSON::PP -e '
        my ($f, $allow) = @ARGV;
        open(my $in, "<", $f) or die "$f: $!\n";
        my $j = JSON::PP->new->pretty->canonical;
        my $c = $j->decode(do { local $/; <$in> });
        my $changed = 0;
        for my $app (@{ $c->{apps} || [] }) {
            next if $app->{app} ne "socksproxy" || grep { $_ eq "-allow" } @{ $app->{args} || [] };
            push @{ $app->{args} }, "-allow", $allow;
            $changed = 1;
        }
        exit 0 unless $changed;
        open(my $out, ">", "$f.tmp") or die "$f.tmp: $!\n";
        chmod(0600, "$f.tmp");
        print $out $j->encode($c);
        close($out) or die "$f.tmp: $!\n";
        rename("$f.tmp", $f) or die "$f: $!\n";
        print STDERR "run-local.sh: $f: socksproxy now has -allow $allow (the exit policy demo)\n";
    ' "$1" "$SOCKS_DEMO_ALLOW"
}
fresh=()
for v in c b a; do
    dir="$STATE/visor-$v"
    mkdir -p "$dir"
    if [ ! -f "$dir/skywire-config.json" ]; then
        extra=()
        [ "$v" = a ] && extra=(--socks-srv "$(public_key "$STATE/visor-c/skywire-config.json")" \
            --socks-addr "$SOCKS_ADDR")
        [ "$v" = c ] && extra=(--socks-allow "$SOCKS_DEMO_ALLOW")
        [ -n "$NET_PK" ] && extra+=(--network "$NET_PK" --cert-file "$dir/visor.cert")
        "$CLI" node gen-config -o "$dir/skywire-config.json" --tpd "http://$TD_ADDR" \
            --mdisc "http://$MD_ADDR" --rf "http://$RF_ADDR" --setup-node "$SN_PK" \
            --stcp "${STCP[$v]}" --api-addr "${API[$v]}" --data-dir "$dir/data" \
            --skychat-addr "${CHAT[$v]}" --hypervisor "$HV_PK@$HV_VISORS" "${extra[@]}" >/dev/null
        fresh+=("$v")
    fi
    if [ -n "$NET_PK" ] && ! grep -q "\"$NET_PK\"" "$dir/skywire-config.json"; then
        echo "visor $v's config in $STATE belongs to another network: remove $STATE to start afresh," \
            "or run with SW_LOCAL_NETWORK=open" >&2
        exit 1
    fi
    sign "visor-$v" "$(public_key "$dir/skywire-config.json")" visor "$dir/visor.cert"
done
socks_demo_allow "$STATE/visor-c/skywire-config.json"
PK_A=$(public_key "$STATE/visor-a/skywire-config.json")
PK_B=$(public_key "$STATE/visor-b/skywire-config.json")
PK_C=$(public_key "$STATE/visor-c/skywire-config.json")
# The hypervisor manages the three visors (they connect out to it).
start hypervisor "$BIN/hypervisor" --addr "$HV_ADDR" --visor-addr "$HV_VISORS" \
    --key-file "$STATE/hypervisor.key" --data-dir "$STATE/hypervisor" --tpd "http://$TD_ADDR" \
    --visor "$PK_A" --visor "$PK_B" --visor "$PK_C"
wait_health hypervisor "http://$HV_ADDR/health"
for v in a b c; do # every visor of this network may open a shell on every other one
    dir="$STATE/visor-$v"
    mkdir -p "$dir/data"
    printf '# visor keys allowed to use SSH on visor %s\n%s\n%s\n%s\n' "$v" "$PK_A" "$PK_B" "$PK_C" \
        >"$dir/data/ssh_authorized_keys"
    (cd "$dir" && exec "$BIN/skywire-visor" skywire-config.json) 2>>"$STATE/visor-$v.log" &
    pids+=($!)
done
for v in a b c; do
    wait_health "visor-$v" "http://${API[$v]}/health"
done
if [ ${#fresh[@]} -gt 0 ]; then # first run: A-B and B-C (remembered by the visors afterwards)
    "$CLI" --config "$STATE/visor-a/skywire-config.json" node add-tp "$PK_B" --addr "${STCP[b]}" >/dev/null
    "$CLI" --config "$STATE/visor-b/skywire-config.json" node add-tp "$PK_C" --addr "${STCP[c]}" >/dev/null
fi
# A transport is up in the discovery once both of its edges reported it (a second or so after
# the dial, or after a restart): wait for the A-B-C route before saying the network is up.
for _ in $(seq 1 100); do
    "$CLI" rtfind --rf "http://$RF_ADDR" "$PK_A" "$PK_C" >/dev/null 2>&1 && break
    sleep 0.2
done
"$CLI" rtfind --rf "http://$RF_ADDR" "$PK_A" "$PK_C" >/dev/null 2>&1 ||
    echo "warning: no route A-B-C after 20 s; see $STATE/visor-*.log" >&2

SSH_CLI="$BIN/SSH-cli -sock $STATE/visor-a/data/ssh-client.sock"
cat <<EOT
Skywire-C local network is up (logs in $STATE/):
  PostgreSQL           $PG_URL
  messaging discovery  http://$MD_ADDR
  transport discovery  http://$TD_ADDR
  route finder         http://$RF_ADDR
  setup node           http://$SN_ADDR   key $SN_PK
  messaging server     $MS_ADDR   (health/metrics: http://$MS_HTTP)
  visor A  $PK_A  api http://${API[a]}  skychat http://${CHAT[a]}  SOCKS5 $SOCKS_ADDR (exit: C)
  visor B  $PK_B  api http://${API[b]}  skychat http://${CHAT[b]}
  visor C  $PK_C  api http://${API[c]}  skychat http://${CHAT[c]}
  A and C are connected only through B (stcp A-B and B-C): their apps talk over 2-hop routes.
  network              ${NET_PK:-open (any key may join)}${NET_PK:+ (private: only keys signed by $STATE/network.key)}
  hypervisor           http://$HV_ADDR   (user admin, password: cat $STATE/hypervisor/initial-password)

Try it:
  # skychat: A and C greet each other (open http://${CHAT[a]} and http://${CHAT[c]} in a browser)
  curl -s -X POST -H 'Content-Type: application/json' http://${CHAT[a]}/message -d '{"recipient":"$PK_C","message":"Hello Mike!"}'
  curl -s -X POST -H 'Content-Type: application/json' http://${CHAT[c]}/message -d '{"recipient":"$PK_A","message":"Hello Joe!"}'
  curl -s -X POST -H 'Content-Type: application/json' http://${CHAT[a]}/message -d '{"recipient":"$PK_C","message":"System is working!"}'
  curl -s http://${CHAT[c]}/messages
  # SOCKS5 through A with C as the exit (names are resolved at the exit). An exit refuses
  # loopback, private ranges and its own addresses by default; this local network's config
  # lets C's socksproxy reach 127.0.0.1 (-allow $SOCKS_DEMO_ALLOW) so that the demo can use the
  # transport discovery on this machine:
  curl -s --socks5-hostname $SOCKS_ADDR http://localhost:9091/health
  # what the default policy refuses, e.g. ::1 or a private address (SOCKS reply 2, "curl: (97)",
  # no packet sent; one line per refusal in $STATE/visor-c/data/socksproxy.log):
  #   curl -sS --socks5-hostname $SOCKS_ADDR 'http://[::1]:9091/health'
  #   curl -sS --socks5-hostname $SOCKS_ADDR http://192.168.1.1/
  # a shell on C from A (SSH-client on A, SSH on C), or one command
  $SSH_CLI $PK_C
  $SSH_CLI $PK_C uname -a
  # the network (also on the hypervisor's page, or through it with the CLI)
  SKYWIRE_HYPERVISOR_PASSWORD=\$(cat $STATE/hypervisor/initial-password) $CLI --hypervisor http://$HV_ADDR hv visors
  # a visor's API wants its token (data_dir/api-token): the CLI takes it and the address from --config
  $CLI --config $STATE/visor-a/skywire-config.json node summary
  $CLI --config $STATE/visor-a/skywire-config.json node ls-apps
  $CLI --config $STATE/visor-b/skywire-config.json node ls-tp
  $CLI rtfind $PK_A $PK_C
  curl -s http://$SN_ADDR/route-groups
  curl -s http://$MS_HTTP/metrics | grep ^ms_
  # private network: a visor's certificate, and taking a key out of the network (within a minute)
  $CLI net show $STATE/visor-a/visor.cert
  #   $CLI net revoke --key $STATE/network.key --pk <key> --tpd http://$TD_ADDR
  curl -s http://$TD_ADDR/network/revocations

Press Ctrl-C to stop.
EOT
wait "${pids[@]}"
