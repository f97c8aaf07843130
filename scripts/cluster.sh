#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster with imgmod preloaded, for the demo and
# the regression tests.  Runs initdb/pg_ctl as the 'postgres' OS user, as
# initdb refuses to run as root.
#
#   scripts/cluster.sh start [DATABASE]   create (if needed) and start; DATABASE
#                                         is where imgmod's workers run
#   scripts/cluster.sh stop               stop it
#   scripts/cluster.sh destroy            stop and delete its data
#   scripts/cluster.sh env                print PGHOST/PGPORT/PGUSER for psql
#
# IMGMOD_CLUSTER_DIR, IMGMOD_PGPORT and IMGMOD_EXTRA_CONF (lines appended to
# postgresql.conf when the cluster is created) let tests run their own.
set -euo pipefail

PGBIN=${PGBIN:-$(pg_config --bindir)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLUSTER_DIR=${IMGMOD_CLUSTER_DIR:-/tmp/imgmod-cluster}
PORT=${IMGMOD_PGPORT:-54329}
SOCKDIR=${IMGMOD_SOCKDIR:-/tmp}
DATABASE=${2:-imgmod_demo}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd_env() {
  echo "export PGHOST=$SOCKDIR PGPORT=$PORT PGUSER=postgres"
}

cmd_start() {
  if [ ! -f "$CLUSTER_DIR/data/PG_VERSION" ]; then
    mkdir -p "$CLUSTER_DIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$CLUSTER_DIR"
    as_postgres "$PGBIN/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust -E UTF8 \
      --locale=C.UTF-8 >"$CLUSTER_DIR/initdb.log"
    cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCKDIR'
shared_preload_libraries = 'imgmod'
imgmod.database = '$DATABASE'
imgmod.workers = 2
imgmod.poll_interval = '200ms'
imgmod.retry_base_delay = '200ms'
fsync = off
log_min_messages = info
CONF
    if [ -n "${IMGMOD_EXTRA_CONF:-}" ]; then
      printf '%s\n' "$IMGMOD_EXTRA_CONF" >>"$CLUSTER_DIR/data/postgresql.conf"
    fi
  fi
  if ! as_postgres "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" status >/dev/null 2>&1; then
    as_postgres "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null
  fi
  PGHOST=$SOCKDIR PGPORT=$PORT "$PGBIN/psql" -U postgres -d postgres -qAtc \
    "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'" | grep -q 1 ||
    PGHOST=$SOCKDIR PGPORT=$PORT "$PGBIN/createdb" -U postgres "$DATABASE"
  # Workers that started before the database existed retry within a second;
  # wait for them so the first upload is picked up at once.
  for _ in $(seq 1 100); do
    n=$(PGHOST=$SOCKDIR PGPORT=$PORT "$PGBIN/psql" -U postgres -d postgres -qAtc \
      "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'imgmod worker' AND datname = '$DATABASE'")
    [ "${n:-0}" -gt 0 ] && break
    sleep 0.1
  done
  echo "cluster: running on $SOCKDIR port $PORT, imgmod workers in database $DATABASE (log: $CLUSTER_DIR/server.log)"
}

cmd_stop() {
  if [ -f "$CLUSTER_DIR/data/PG_VERSION" ]; then
    as_postgres "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  destroy) cmd_stop; rm -rf "$CLUSTER_DIR" ;;
  env) cmd_env ;;
  *) echo "usage: $0 start [DATABASE] | stop | destroy | env" >&2; exit 2 ;;
esac
