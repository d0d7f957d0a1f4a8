#!/usr/bin/env bash
# install-config.sh CLI CONFDIR — the visor's default config for `make install`: generated
# once with fresh keys (never overwritten: it holds the visor's identity), data in
# /var/lib/skywire-visor (the unit's StateDirectory), owned by the unit's user when it exists.
set -euo pipefail
cli=$1
dir=$2
cfg="$dir/skywire-config.json"
if [ -e "$cfg" ]; then
    echo "install-config: keeping $cfg"
    exit 0
fi
"$cli" node gen-config -o "$cfg" --data-dir /var/lib/skywire-visor >/dev/null
if id skywire >/dev/null 2>&1; then
    chown skywire:skywire "$cfg"
else
    echo "install-config: no user 'skywire' yet (the units run as it):" \
        "useradd --system --home-dir /var/lib/skywire skywire && chown skywire: $cfg"
fi
pk=$(sed -n 's/.*"public_key": *"\([0-9a-f]*\)".*/\1/p' "$cfg" | head -n 1)
echo "install-config: wrote $cfg (visor key $pk); set its discovery URLs and setup node" \
    "keys before starting skywire-visor (docs/operator-guide.md §2)"
