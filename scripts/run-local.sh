#!/usr/bin/env bash
# run-local.sh — brings up a local Skywire-C control plane on this machine: an embedded
# PostgreSQL cluster (state in build/local/) and the transport discovery on 127.0.0.1:9091.
# Runs in the foreground; Ctrl-C stops every process it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/build/release/bin"
STATE="$ROOT/build/local"
TD_ADDR=${TD_ADDR:-127.0.0.1:9091}
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
for db in transport_discovery; do
    psql -q "$PG_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
        psql -q "$PG_URL" -c "CREATE DATABASE $db" >/dev/null
done

"$BIN/transport-discovery" --addr "$TD_ADDR" --db "$DB_BASE/transport_discovery" \
    2>>"$STATE/transport-discovery.log" &
pids+=($!)
for _ in $(seq 1 50); do
    curl -fsS "http://$TD_ADDR/health" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "http://$TD_ADDR/health" >/dev/null || { tail "$STATE/transport-discovery.log"; exit 1; }

cat <<EOT
Skywire-C local control plane is up.
  PostgreSQL           $PG_URL
  transport discovery  http://$TD_ADDR   (log: $STATE/transport-discovery.log)

Try it:
  curl -s http://$TD_ADDR/health
  $BIN/skywire-cli keygen -o $STATE/a.key
  $BIN/skywire-cli keygen -o $STATE/b.key
  $BIN/skywire-cli tpdisc --tpd http://$TD_ADDR register --key-file $STATE/a.key --peer-key-file $STATE/b.key
  $BIN/skywire-cli tpdisc --tpd http://$TD_ADDR list
  curl -s http://$TD_ADDR/metrics | grep td_

Press Ctrl-C to stop.
EOT
wait "${pids[@]}"
