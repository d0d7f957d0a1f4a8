#!/usr/bin/env bash
# test_net_cli.sh BUILD_DIR — `skywire-cli net` offline: the network key (mode 0600, never
# overwritten), certificates (fields, expiry, refusals of bad input, show from a file or hex)
# and a revocation list kept in a file (revoke, again, --undo, issued_at only going forward,
# another key's refusal). The transport discovery side (--tpd) is in
# tests/integration/test_private_td_rf.c. Prints "ok: ..." per check and "N passed, N failed".
# shellcheck disable=SC2016 # the bash -c bodies take their values as arguments
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLI="$(cd "$1" && pwd)/bin/skywire-cli"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sw-netcli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=tests/lib/check.sh
source "$ROOT/tests/lib/check.sh"
cd "$WORK" || exit 1

key_of() { sed -n 's/.*"public_key": *"\([0-9a-f]*\)".*/\1/p' "$1" | head -n 1; }
json_field() { sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1" | head -n 1; }

# ---- the network key
"$CLI" net init --out net.key >init.out 2>init.err
check "net init succeeds" test $? -eq 0
NET=$(head -n 1 init.out)
check "net init prints the network's public key" test "$NET" = "$(key_of net.key)" -a ${#NET} -eq 64
check "the network key file is mode 0600" test "$(stat -c %a net.key)" = 600
cp net.key net.key.orig
"$CLI" net init --out net.key >again.out 2>again.err
check "net init refuses to overwrite a network key (exit 1)" test $? -eq 1
check "the refusal says why" grep -q "never overwritten" again.err
check "the existing key is untouched" cmp -s net.key net.key.orig
"$CLI" --json net init -o other.key >other.json 2>/dev/null
check "net init --json names the key and the file" grep -q "\"file\":\"other.key\"" other.json
check "the default file name is network-key.json" bash -c '"$1" net init >/dev/null 2>&1 && test -s network-key.json' _ "$CLI"

# ---- certificates
"$CLI" keygen -o visor.key >/dev/null
PK=$(key_of visor.key)
"$CLI" net sign --key net.key --pk "$PK" --role visor --name lab-1 --groups lab,eu --expires 90d \
    --out visor.cert >sign.out 2>&1
check "net sign --out writes a certificate" test $? -eq 0 -a -s visor.cert
"$CLI" net show visor.cert >show.json
check "net show reads the file" test $? -eq 0
check "the certificate names the visor's key" test "$(json_field show.json public_key)" = "$PK"
check "... the network" test "$(json_field show.json network)" = "$NET"
check "... the role" test "$(json_field show.json role)" = visor
check "... the name" test "$(json_field show.json name)" = lab-1
check "... the groups" bash -c 'tr -d " \n" <show.json | grep -q "\"groups\":\[\"lab\",\"eu\"\]"'
nb=$(json_field show.json not_before)
na=$(json_field show.json not_after)
check "... 90 days of validity" test $((na - nb)) -eq $((90 * 86400))
check "... a signature that verifies" test "$(json_field show.json signature_valid)" = true
check "... not expired" test "$(json_field show.json expired)" = false
"$CLI" net show "$(cat visor.cert)" >show-hex.json
check "net show reads the hex form too" cmp -s show.json show-hex.json
"$CLI" net sign --key net.key --pk "$PK" --role service >plain.out
check "net sign without --out prints the certificate" bash -c '"$1" net show "$(cat plain.out)" | grep -q "\"role\":\"service\""' _ "$CLI"
"$CLI" net sign --key net.key --pk "$PK" --role visor --out default.cert >/dev/null
"$CLI" net show default.cert >default.json
nb=$(json_field default.json not_before)
na=$(json_field default.json not_after)
check "the default validity is 365 days" test $((na - nb)) -eq $((365 * 86400))
for bad in "--role admin" "--role visor --expires 5x" "--role visor --expires 0d" "--role visor --name bad/name" \
    "--role visor --groups Lab" "--role visor --groups a,,b"; do
    # shellcheck disable=SC2086
    "$CLI" net sign --key net.key --pk "$PK" $bad >/dev/null 2>bad.err
    check "net sign refuses $bad (exit 2)" test $? -eq 2
done
"$CLI" net sign --key net.key --pk 1234 --role visor >/dev/null 2>&1
check "net sign refuses a malformed --pk (exit 2)" test $? -eq 2
"$CLI" net sign --pk "$PK" --role visor >/dev/null 2>&1
check "net sign needs --key (exit 2)" test $? -eq 2
"$CLI" net sign --key missing.key --pk "$PK" --role visor >/dev/null 2>&1
check "net sign with a missing key file fails (exit 1)" test $? -eq 1
sed 's/.$/0/' visor.cert >flipped.cert
[ "$(tail -c 2 visor.cert | head -c 1)" = 0 ] && sed 's/.$/1/' visor.cert >flipped.cert
"$CLI" net show flipped.cert >flipped.json
check "a flipped bit shows as a signature that does not verify" test "$(json_field flipped.json signature_valid)" = false
"$CLI" net show not-a-cert >/dev/null 2>&1
check "net show refuses what is neither a file nor a certificate (exit 1)" test $? -eq 1

# ---- a revocation list in a file
"$CLI" net revocations --file revs.txt >empty.json 2>/dev/null
check "no list yet: an empty one" bash -c 'tr -d " \n" <empty.json | grep -q "\"revoked\":\[\]"'
"$CLI" net revoke --key net.key --pk "$PK" --file revs.txt >revoke.out
check "net revoke --file writes the list" test $? -eq 0 -a -s revs.txt
"$CLI" net revocations --file revs.txt >list.json
check "the list holds the key" grep -q "$PK" list.json
check "the list is the network's" test "$(json_field list.json network)" = "$NET"
at1=$(json_field list.json issued_at)
cp revs.txt revs.before
"$CLI" net revoke --key net.key --pk "$PK" --file revs.txt >/dev/null 2>again.err
check "revoking twice is no error (exit 0)" test $? -eq 0
check "... says so" grep -q "revoked already" again.err
check "... and leaves the list as it was" cmp -s revs.txt revs.before
"$CLI" --json net revoke --key net.key --pk "$PK" --file revs.txt --undo >undo.json
check "net revoke --undo takes the key out" bash -c '! grep -q "$1" undo.json' _ "$PK"
at2=$(json_field undo.json issued_at)
check "each new list is issued later than the last" test "$at2" -gt "$at1"
"$CLI" net revoke --key other.key --pk "$PK" --file revs.txt >/dev/null 2>wrong.err
check "another network's key cannot change the list (exit 1)" test $? -eq 1
check "... and is told the list does not verify" grep -q "does not verify" wrong.err

check_summary
