#!/usr/bin/env bash
# run-local.sh — brings up a local Skywire-C network on this machine: an embedded
# PostgreSQL cluster (state in build/local/), the transport discovery (127.0.0.1:9091), the
# messaging discovery (127.0.0.1:9090) and a messaging server (127.0.0.1:8081, metrics :8082).
# Runs in the foreground; Ctrl-C stops every process it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/build/release/bin"
STATE="$ROOT/build/local"
TD_ADDR=${TD_ADDR:-127.0.0.1:9091}
MD_ADDR=${MD_ADDR:-127.0.0.1:9090}
MS_ADDR=${MS_ADDR:-127.0.0.1:8081}
MS_HTTP=${MS_HTTP:-127.0.0.1:8082}
pids=()

cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    bash "$ROOT/tests/pg-cluster.sh" stop "$STATE/pg" >/dev/null 2>&1 || true
    echo "local network stopped (state kept in $STATE; remove it to start afresh)"
}

mkdir -p "$STATE"
PG_URL=$(bash "$ROOT/tests/pg-cluster.sh" start "$STATE/pg")
trap cleanup EXIT
trap 'exit 130' INT TERM
DB_BASE=${PG_URL%/postgres}
for db in transport_discovery messaging_discovery; do
    psql -q "$PG_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
        psql -q "$PG_URL" -c "CREATE DATABASE $db" >/dev/null
done

wait_health() { # name url
    for _ in $(seq 1 50); do
        curl -fsS "$2" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "$1 did not become healthy; see $STATE/$1.log" >&2
    tail -n 20 "$STATE/$1.log" >&2
    exit 1
}

"$BIN/transport-discovery" --addr "$TD_ADDR" --db "$DB_BASE/transport_discovery" \
    2>>"$STATE/transport-discovery.log" &
pids+=($!)
"$BIN/messaging-discovery" --addr "$MD_ADDR" --db "$DB_BASE/messaging_discovery" \
    2>>"$STATE/messaging-discovery.log" &
pids+=($!)
wait_health transport-discovery "http://$TD_ADDR/health"
wait_health messaging-discovery "http://$MD_ADDR/health"
"$BIN/messaging-server" --addr "$MS_ADDR" --http-addr "$MS_HTTP" --key-file "$STATE/messaging-server.key" \
    --discovery "http://$MD_ADDR" 2>>"$STATE/messaging-server.log" &
pids+=($!)
wait_health messaging-server "http://$MS_HTTP/health"

cat <<EOT
Skywire-C local network is up (logs in $STATE/):
  PostgreSQL           $PG_URL
  transport discovery  http://$TD_ADDR
  messaging discovery  http://$MD_ADDR
  messaging server     $MS_ADDR   (health/metrics: http://$MS_HTTP)

Try it:
  curl -s http://$TD_ADDR/health
  $BIN/skywire-cli keygen -o $STATE/a.key
  $BIN/skywire-cli keygen -o $STATE/b.key
  $BIN/skywire-cli tpdisc --tpd http://$TD_ADDR register --key-file $STATE/a.key --peer-key-file $STATE/b.key
  $BIN/skywire-cli tpdisc --tpd http://$TD_ADDR list
  curl -s http://$TD_ADDR/metrics | grep td_
  curl -s http://$MD_ADDR/messaging-discovery/all_servers
  curl -s http://$MS_HTTP/metrics | grep ^ms_

Press Ctrl-C to stop.
EOT
wait "${pids[@]}"
