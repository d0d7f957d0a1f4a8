#!/usr/bin/env bash
# test_install.sh BUILD_DIR — `make install` into temporary prefixes: binaries, units that
# point at PREFIX/bin, example environment files that never overwrite an operator's, and the
# visor's default config generated once (same key on a second install) when there is no
# DESTDIR. Prints "ok: ..." per check and "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(basename "$(cd "$1" && pwd)")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sw-install.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
CHECK_QUIET=1
source "$ROOT/tests/lib/check.sh"
install_to() { # PREFIX SYSCONFDIR DESTDIR
    make -s -C "$ROOT" install BUILD="$BUILD" PREFIX="$1" SYSCONFDIR="$2" DESTDIR="$3" \
        >>"$WORK/make.log" 2>&1
}
key_of() { sed -n 's/.*"public_key": *"\([0-9a-f]*\)".*/\1/p' "$1" | head -n 1; }

# a package-style staging install
check "install into DESTDIR succeeds" install_to /usr /etc "$WORK/stage"
for b in skywire-visor skywire-cli transport-discovery route-finder setup-node skychat; do
    check "binary $b installed and executable" test -x "$WORK/stage/usr/bin/$b"
done
check "units point at PREFIX/bin" grep -q '^ExecStart=/usr/bin/skywire-visor ' \
    "$WORK/stage/usr/lib/systemd/system/skywire-visor.service"
check "no unit still names /usr/local/bin" bash -c "! grep -l /usr/local/bin '$WORK'/stage/usr/lib/systemd/system/*.service"
check "environment files installed" test -f "$WORK/stage/etc/skywire/transport-discovery.env"
check "no visor config (keys) in a DESTDIR install" test ! -e "$WORK/stage/etc/skywire/skywire-config.json"

# an install on the machine itself (no DESTDIR), into temporary directories
echo "DATABASE_URL=mine" >"$WORK/mine.env"
mkdir -p "$WORK/etc/skywire"
cp "$WORK/mine.env" "$WORK/etc/skywire/transport-discovery.env"
check "install without DESTDIR succeeds" install_to "$WORK/usr" "$WORK/etc" ""
cfg="$WORK/etc/skywire/skywire-config.json"
check "the visor config is generated" test -s "$cfg"
check "the visor config is private (0600)" test "$(stat -c %a "$cfg")" = 600
check "the operator's environment file is kept" cmp -s "$WORK/mine.env" "$WORK/etc/skywire/transport-discovery.env"
key=$(key_of "$cfg")
check "a second install keeps the visor's keys" install_to "$WORK/usr" "$WORK/etc" ""
check "same key after the second install" test -n "$key" -a "$(key_of "$cfg")" = "$key"
check "the generated config runs the default apps" grep -q '"SSH-client"' "$cfg"

[ "$CHECK_FAILED" -eq 0 ] || sed 's/^/  make: /' "$WORK/make.log"
check_summary
