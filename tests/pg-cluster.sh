#!/usr/bin/env bash
# pg-cluster.sh — a throwaway PostgreSQL cluster for the tests.
#
#   pg-cluster.sh start DIR     create the cluster in DIR if needed, start it, print its URL
#   pg-cluster.sh stop DIR      stop it (fast shutdown)
#   pg-cluster.sh destroy DIR   stop it and remove DIR
#   pg-cluster.sh url DIR       print the maintenance URL
#   pg-cluster.sh start-socket DIR   start it with no TCP listener at all (make run): print a
#                               URL over its unix socket, which only the owner (and root) may open
#
# Trust auth on 127.0.0.1 only, a port chosen once at creation (DIR/port), the unix socket
# inside DIR, fsync off. The throwaway test clusters listen on TCP (tests connect by URL);
# make run's long-lived cluster does not: on a shared machine trust auth on TCP would let any
# local user (or a SOCKS exit) in as the superuser. PostgreSQL refuses to run as root, so as root the cluster belongs
# to the system user skywire-test (created if missing).
set -euo pipefail

PG_USER=skywire-test
MARKER=.skywire-pg-cluster
export LC_ALL=C

die() { echo "pg-cluster.sh: $*" >&2; exit 1; }

pg_bindir() {
    local d
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
    [ -x "$d/pg_ctl" ] || die "PostgreSQL server binaries not found; run scripts/install-deps.sh"
    echo "$d"
}

# Runs a command as the cluster's owner: the owner of DIR when root, else ourselves.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$(stat -c %U "$DIR")" -- "$@"
    else
        "$@"
    fi
}

ensure_user() {
    id -u "$PG_USER" >/dev/null 2>&1 && return 0
    # Several runs may start at once: useradd must not race on /etc/passwd.
    flock /tmp/.skywire-test-useradd.lock sh -c \
        "id -u $PG_USER >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin $PG_USER"
}

# A port that nothing listens on, below Linux's ephemeral range so that outgoing
# connections and th_free_port never land on it.
pick_port() {
    local port _
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 12000))
        if ! ss -Htln "sport = :$port" | grep -q .; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found in 20000-31999"
}

init_cluster() {
    local bin port sockdir
    bin=$(pg_bindir)
    touch "$DIR/$MARKER"
    if [ "$(id -u)" -eq 0 ]; then
        ensure_user
        chown -R "$PG_USER:" "$DIR"
        runuser -u "$PG_USER" -- test -w "$DIR" ||
            die "$DIR is not writable by $PG_USER (is a parent directory private?)"
    fi
    port=$(pick_port)
    sockdir="$DIR/sock"
    # sun_path holds 107 bytes; a deep DIR falls back to TCP only.
    [ ${#sockdir} -lt 90 ] || sockdir=""
    as_owner mkdir -p "$DIR/sock"
    as_owner "$bin/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C --no-sync >"$DIR/initdb.log" 2>&1 ||
        { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    as_owner tee -a "$DIR/data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    echo "$port" >"$DIR/port"
}

url() {
    [ -f "$DIR/port" ] || die "no cluster in $DIR"
    echo "postgresql://postgres@127.0.0.1:$(cat "$DIR/port")/postgres"
}

running() {
    [ -f "$DIR/data/PG_VERSION" ] && as_owner "$(pg_bindir)/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

start() {
    mkdir -p "$DIR"
    [ -f "$DIR/data/PG_VERSION" ] || init_cluster
    if ! running; then
        as_owner "$(pg_bindir)/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 -s start ||
            { tail -n 30 "$DIR/server.log" >&2 || true; die "PostgreSQL did not start"; }
    fi
    url
}

# The socket directory of a socket-only cluster: DIR/sock, or a private one under /tmp when
# DIR is too deep for sun_path (107 bytes).
socket_dir() {
    local d="$DIR/sock"
    if [ ${#d} -ge 90 ]; then
        d="/tmp/skywire-pg-$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)"
        as_owner mkdir -p -m 0700 "$d"
    fi
    echo "$d"
}

start_socket() {
    local sock
    mkdir -p "$DIR"
    [ -f "$DIR/data/PG_VERSION" ] || init_cluster
    stop # a cluster left running by an older run may still listen on TCP
    sock=$(socket_dir)
    as_owner chmod 0700 "$sock"
    as_owner "$(pg_bindir)/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 -s \
        -o "-c listen_addresses= -c unix_socket_directories=$sock -c unix_socket_permissions=0700" \
        start || { tail -n 30 "$DIR/server.log" >&2 || true; die "PostgreSQL did not start"; }
    echo "postgresql:///postgres?host=$sock&port=$(cat "$DIR/port")&user=postgres"
}

stop() {
    if running; then
        as_owner "$(pg_bindir)/pg_ctl" -D "$DIR/data" -m fast -w -t 60 -s stop
    fi
}

destroy() {
    [ -d "$DIR" ] || return 0
    if [ -f "$DIR/$MARKER" ]; then
        stop || true
        rm -rf "$DIR"
    else
        # Never remove a directory this script did not create a cluster in.
        rmdir "$DIR" 2>/dev/null || die "$DIR holds no cluster of ours; not removing it"
    fi
}

[ $# -eq 2 ] || die "usage: pg-cluster.sh start|start-socket|stop|destroy|url DIR"
DIR=$(realpath -m "$2")
cd / # the cluster owner may not be able to enter our working directory
case "$1" in
    start) start ;;
    start-socket) start_socket ;;
    stop) stop ;;
    destroy) destroy ;;
    url) url ;;
    *) die "unknown command '$1'" ;;
esac
