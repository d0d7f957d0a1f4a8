#!/usr/bin/env bash
# test_private_network.sh BUILD_DIR — the private network of `make run` against an outsider and
# a revoked member (docs/security.md "Membership").
#   - make run is private: a network key, every service and visor signed;
#   - an outsider visor X (a fresh key, no certificate) gets nothing: its messaging session is
#     refused, so it has no messaging discovery entry; its add-tp to visor A and A's add-tp to it
#     fail with "not a member"; the transport discovery refuses its registrations (403
#     not_a_member) and lists nothing for it;
#   - X with a certificate of another network, or of the wrong role, does not even start;
#   - the messaging discovery lists only the network's own messaging server, also while an
#     outsider's messaging server (fresh key, no certificate) tries to register;
#   - revoking visor B (skywire-cli net revoke) takes B out within a minute: A forgets its
#     transport to B and the route finder finds no path A-C; after undoing it, A's add-tp to B
#     works again (once A and B polled the new list) and the path is back.
# Uses make run's fixed ports (one test at a time) plus 127.0.0.1:3439 and :7779 for X and
# :8091-8092 for the outsider's messaging server.
# Prints "ok: ..." per check and "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$1" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sw-private.XXXXXX")
CLI="$BUILD/bin/skywire-cli"
TD=http://127.0.0.1:9091
MD=http://127.0.0.1:9090
RF=http://127.0.0.1:9092
X_PID=""
source "$ROOT/tests/lib/check.sh"
source "$ROOT/tests/lib/run_local.sh"
cleanup() {
    [ -n "$X_PID" ] && kill -TERM "$X_PID" 2>/dev/null && wait "$X_PID" 2>/dev/null
    run_local_cleanup
    rm -rf "$WORK"
}
trap cleanup EXIT

public_key() { # key file or visor config -> its own public key (keys.public_key in a config)
    perl -MJSON::PP -e 'local $/; open(my $f, "<", $ARGV[0]) or exit 1; my $j = decode_json(<$f>);
        print(($j->{keys} || $j)->{public_key} // "")' "$1" 2>/dev/null
}
until_true() { # SECONDS CMD...: CMD until it succeeds, every 0.5 s
    local n=$(($1 * 2))
    shift
    for ((; n > 0; n--)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}
fails_with() { # TEXT CMD...: CMD fails and its output holds TEXT
    local out
    out=$("${@:2}" 2>&1) && { echo "  succeeded: $out"; return 1; }
    grep -qi -- "$1" <<<"$out" || { echo "  output: $out"; return 1; }
}

run_local_start "$BUILD" "$WORK" || { check_fail "make run comes up"; check_summary; exit 1; }
S=$WORK/state
NET_PK=$(public_key "$S/network.key")
PK_A=$(public_key "$S/visor-a/skywire-config.json")
PK_B=$(public_key "$S/visor-b/skywire-config.json")
PK_C=$(public_key "$S/visor-c/skywire-config.json")
SN_PK=$(public_key "$S/setup-node.key")
A_CLI=("$CLI" --config "$S/visor-a/skywire-config.json")

check "make run is private: network key 0600, its key in the visors' configs" \
    bash -c '[ "$(stat -c %a "$1")" = 600 ] && grep -q "$2" "$3"' _ "$S/network.key" "$NET_PK" \
    "$S/visor-a/skywire-config.json"
check "a route A-C over B exists" until_true 30 "$CLI" rtfind --rf "$RF" "$PK_A" "$PK_C"

# ---- the messaging discovery lists only members -------------------------------------------
only_real_server() {
    local ms_pk
    ms_pk=$(public_key "$S/messaging-server.key")
    curl -fsS "$MD/messaging-discovery/all_servers" | python3 -c '
import json, sys
d = json.load(sys.stdin)
keys = [e.get("static") or e.get("pk") for e in d]
assert keys == [sys.argv[1]], keys' "$ms_pk"
}
check "the messaging discovery lists the network's messaging server and nothing else" only_real_server

# An outsider's messaging server (a fresh key, no certificate) tries to join the discovery.
"$BUILD/bin/messaging-server" --addr 127.0.0.1:8091 --http-addr 127.0.0.1:8092 \
    --key-file "$WORK/fake-ms.key" --discovery "$MD" --public-addr 127.0.0.1:8091 \
    2>"$WORK/fake-ms.log" &
FAKE_MS=$!
check "an outsider's messaging server is refused by the discovery (403 not_a_member)" \
    until_true 20 grep -q not_a_member "$WORK/fake-ms.log"
check "... and the discovery still lists only the network's server" only_real_server
kill -TERM "$FAKE_MS" 2>/dev/null
wait "$FAKE_MS" 2>/dev/null

# ---- an outsider visor X ---------------------------------------------------------------------
mkdir -p "$WORK/x"
"$CLI" node gen-config -o "$WORK/x/skywire-config.json" --tpd "$TD" --mdisc "$MD" --rf "$RF" \
    --setup-node "$SN_PK" --stcp 127.0.0.1:7779 --api-addr 127.0.0.1:3439 \
    --data-dir "$WORK/x/data" --no-apps >/dev/null 2>&1 ||
    "$CLI" node gen-config -o "$WORK/x/skywire-config.json" --tpd "$TD" --mdisc "$MD" --rf "$RF" \
        --setup-node "$SN_PK" --stcp 127.0.0.1:7779 --api-addr 127.0.0.1:3439 \
        --data-dir "$WORK/x/data" >/dev/null
PK_X=$(public_key "$WORK/x/skywire-config.json")
(cd "$WORK/x" && exec "$BUILD/bin/skywire-visor" skywire-config.json) 2>"$WORK/x.log" &
X_PID=$!
X_CLI=("$CLI" --config "$WORK/x/skywire-config.json")
check "outsider X (open config, no certificate) starts" until_true 20 curl -fsS http://127.0.0.1:3439/health

check "X's add-tp to A is refused: not a member" \
    fails_with "not a member" "${X_CLI[@]}" node add-tp "$PK_A" --type stcp --addr 127.0.0.1:7771
check "A's add-tp to X is refused: not a member" \
    fails_with "not a member" "${A_CLI[@]}" node add-tp "$PK_X" --type stcp --addr 127.0.0.1:7779
check "A logged the refusal of X" until_true 5 grep -q "not a member" "$S/visor-a.log"
check "the messaging server refused X's session (logged)" \
    until_true 20 grep -q "$PK_X.*not a member\|not a member.*$PK_X" "$S/messaging-server.log"
x_has_no_entry() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$MD/messaging-discovery/entry/$PK_X")" = 404 ]; }
check "X has no messaging discovery entry" x_has_no_entry
x_has_no_transports() { [ "$(curl -fsS "$TD/transports/edge:$PK_X" | tr -d ' \n')" = "[]" ]; }
check "the transport discovery lists no transport of X" x_has_no_transports
"$CLI" keygen -o "$WORK/x1.key" >/dev/null
"$CLI" keygen -o "$WORK/x2.key" >/dev/null
check "fresh keys cannot register a transport (403 not_a_member)" fails_with "not_a_member" \
    "$CLI" --json tpdisc register --tpd "$TD" --key-file "$WORK/x1.key" \
    --peer-key-file "$WORK/x2.key" --type stcp
kill -TERM "$X_PID" 2>/dev/null
wait "$X_PID" 2>/dev/null
X_PID=""

# ---- a certificate of another network, or of another role: the visor does not start ---------
"$CLI" net init --out "$WORK/other-network.key" >/dev/null
"$CLI" net sign --key "$WORK/other-network.key" --pk "$PK_X" --role visor --out "$WORK/x/visor.cert" >/dev/null
starts_refused() { # TEXT: X's config with this network's key and WORK/x/visor.cert exits at once, saying TEXT
    local cfg=$WORK/x/private.json
    perl -MJSON::PP -e 'local $/; open(my $f, "<", $ARGV[0]) or die; my $j = decode_json(<$f>);
        $j->{network} = { public_key => $ARGV[1], certificate_file => $ARGV[2] };
        open(my $o, ">", $ARGV[3]) or die; print $o encode_json($j)' \
        "$WORK/x/skywire-config.json" "$NET_PK" "$WORK/x/visor.cert" "$cfg" || return 1
    chmod 0600 "$cfg"
    timeout 10 "$BUILD/bin/skywire-visor" "$cfg" >"$WORK/x-start.log" 2>&1 && return 1
    grep -q "$1" "$WORK/x-start.log" || { sed 's/^/  | /' "$WORK/x-start.log"; return 1; }
}
check "X with a certificate of another network does not start" starts_refused "another network"
"$CLI" net sign --key "$S/network.key" --pk "$PK_X" --role messaging-server --out "$WORK/x/visor.cert" >/dev/null
check "X with a messaging-server certificate does not start as a visor" starts_refused "role messaging-server"

# ---- revocation --------------------------------------------------------------------------------
check "revoke B" "$CLI" net revoke --key "$S/network.key" --pk "$PK_B" --tpd "$TD"
check "the transport discovery serves the list with B" \
    bash -c 'curl -fsS "$1/network/revocations" | grep -q "$2"' _ "$TD" "$PK_B"
no_route() { ! "$CLI" rtfind --rf "$RF" "$PK_A" "$PK_C" >/dev/null 2>&1; }
check "within a minute the route finder has no path A-C (B revoked)" until_true 60 no_route
a_has_no_b() { ! "${A_CLI[@]}" --json node ls-tp 2>/dev/null | grep -q "$PK_B"; }
check "within a minute A forgets its transport to B" until_true 60 a_has_no_b
check "A logged why" grep -q "revoked" "$S/visor-a.log"
check "undo the revocation" "$CLI" net revoke --key "$S/network.key" --pk "$PK_B" --tpd "$TD" --undo
# A and B take the new list at their next poll (20 s): until then add-tp is still refused.
check "after the undo A's add-tp to B works within a minute" \
    until_true 60 "${A_CLI[@]}" node add-tp "$PK_B" --type stcp --addr 127.0.0.1:7772
check "B back: a path A-C within a minute" until_true 60 "$CLI" rtfind --rf "$RF" "$PK_A" "$PK_C"

check "SIGTERM stops make run" run_local_stop
if [ "$CHECK_FAILED" -ne 0 ]; then
    for f in visor-a visor-b messaging-server messaging-discovery transport-discovery route-finder; do
        echo "--- $f.log (last 15 lines)"
        tail -n 15 "$S/$f.log" 2>/dev/null | sed 's/^/  | /'
    done
    echo "--- x.log"
    tail -n 15 "$WORK/x.log" 2>/dev/null | sed 's/^/  | /'
fi
check_summary
