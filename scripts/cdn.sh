#!/usr/bin/env bash
# imgmod-origin on loopback, against the cluster the standard libpq
# environment names (PGHOST, PGPORT, PGDATABASE, PGUSER), for the demo, the
# tests and a try-out.
#
#   scripts/cdn.sh start    build if needed, create the origin's login role
#                           (imgmod_cdn only), find the stores, start
#   scripts/cdn.sh stop     SIGTERM: responses in flight finish, exit 0
#   scripts/cdn.sh status   a health check; exit 1 when it is not healthy
#   scripts/cdn.sh env      export lines: eval "$(scripts/cdn.sh env)"
#
# Run start as a PostgreSQL administrator: it reads imgmod's store settings
# (the embedded store's directory, or the S3 endpoint, bucket and keys) from
# the server, and passes them to the origin in its environment (never its
# command line).  IMGMOD_REDIS_URL and the IMGMOD_S3_* variables of
# scripts/services.sh env, when set, take precedence.
#
# Settings (environment): IMGMOD_ORIGIN_PORT (8088), IMGMOD_ORIGIN_CACHE_BYTES
# (256 MiB), IMGMOD_CDN_DIR (state: /tmp/imgmod-cdn), IMGMOD_ORIGIN_ROLE
# (imgmod_origin), IMGMOD_ORIGIN_OS_USER (when run as root: the owner of the
# store directory, as the embedded store lives in the data directory).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CDN_DIR=${IMGMOD_CDN_DIR:-/tmp/imgmod-cdn}
PORT=${IMGMOD_ORIGIN_PORT:-8088}
ROLE=${IMGMOD_ORIGIN_ROLE:-imgmod_origin}
BIN=$ROOT/origin/imgmod-origin
PIDFILE=$CDN_DIR/origin.pid
URL=http://127.0.0.1:$PORT

say() { printf 'cdn: %s\n' "$*" >&2; }
die() { printf 'cdn: ERROR: %s\n' "$*" >&2; exit 1; }

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

healthy() { curl -fs --max-time 2 -o /dev/null "$URL/healthz" 2>/dev/null; }

sql() { psql -XqAt -v ON_ERROR_STOP=1 -c "$1"; }

cmd_start() {
  running && { say "already running (pid $(cat "$PIDFILE"))"; return 0; }
  [ -x "$BIN" ] || make -s -C "$ROOT" origin/imgmod-origin >/dev/null
  mkdir -p "$CDN_DIR"

  sql "SELECT 1 FROM pg_extension WHERE extname = 'imgmod'" | grep -q 1 ||
    die "imgmod is not created in database ${PGDATABASE:-(default)}: CREATE EXTENSION imgmod first"
  sql "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN
         CREATE ROLE $ROLE LOGIN IN ROLE imgmod_cdn; END IF; END \$\$" >/dev/null

  local store_dir="" os_user="" s3_endpoint="" env_file=$CDN_DIR/origin.env
  s3_endpoint=${IMGMOD_S3_ENDPOINT:-$(sql "SELECT current_setting('imgmod.s3_endpoint')")}
  : >"$env_file"
  chmod 600 "$env_file"
  if [ -n "$s3_endpoint" ]; then
    {
      echo "IMGMOD_S3_ENDPOINT=$s3_endpoint"
      echo "IMGMOD_S3_REGION=${IMGMOD_S3_REGION:-$(sql "SELECT current_setting('imgmod.s3_region')")}"
      echo "IMGMOD_S3_BUCKET=${IMGMOD_S3_BUCKET:-$(sql "SELECT current_setting('imgmod.s3_bucket')")}"
      echo "IMGMOD_S3_ACCESS_KEY=${IMGMOD_S3_ACCESS_KEY:-$(sql "SELECT current_setting('imgmod.s3_access_key')")}"
      echo "IMGMOD_S3_SECRET_KEY=${IMGMOD_S3_SECRET_KEY:-$(sql "SELECT current_setting('imgmod.s3_secret_key')")}"
    } >>"$env_file"
  else
    store_dir=$(sql "SELECT CASE WHEN s ~ '^/' THEN s ELSE current_setting('data_directory') || '/' || s END
                       FROM current_setting('imgmod.storage_dir') s")
    echo "IMGMOD_STORE_DIR=$store_dir" >>"$env_file"
  fi
  local redis=${IMGMOD_REDIS_URL:-$(sql "SELECT current_setting('imgmod.redis_url')")}
  [ -n "$redis" ] && echo "IMGMOD_REDIS_URL=$redis" >>"$env_file"
  echo "IMGMOD_ORIGIN_CONNINFO=host=${PGHOST:-/var/run/postgresql} port=${PGPORT:-5432} dbname=${PGDATABASE:-postgres} user=$ROLE" >>"$env_file"

  # An unprivileged user: the embedded store is in the data directory,
  # readable by its owner only.
  if [ "$(id -u)" = 0 ]; then
    os_user=${IMGMOD_ORIGIN_OS_USER:-$( [ -n "$store_dir" ] && stat -c %U "$(dirname "$store_dir")" || echo nobody)}
    chown "$os_user" "$env_file" "$CDN_DIR"
  fi
  # The environment file is read by the shell that execs the origin, so
  # secrets are in its environment only, never on a command line.
  local launch="set -a; . '$env_file'; set +a; exec '$BIN' --port $PORT --cache-bytes ${IMGMOD_ORIGIN_CACHE_BYTES:-268435456}"
  if [ -n "$os_user" ] && [ "$os_user" != root ]; then
    runuser -u "$os_user" -- sh -c "ulimit -n 8192 2>/dev/null; $launch" >"$CDN_DIR/origin.log" 2>&1 &
  else
    sh -c "ulimit -n 8192 2>/dev/null; $launch" >"$CDN_DIR/origin.log" 2>&1 &
  fi
  echo $! >"$PIDFILE"
  for _ in $(seq 100); do
    healthy && { say "origin on $URL (pid $(cat "$PIDFILE"))"; return 0; }
    running || break
    sleep 0.1
  done
  tail -n 20 "$CDN_DIR/origin.log" >&2
  die "the origin did not become healthy"
}

cmd_stop() {
  running || { say "not running"; rm -f "$PIDFILE"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  kill -TERM "$pid"
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && die "origin $pid did not stop within 20 s"
  rm -f "$PIDFILE"
  say "stopped"
}

cmd_status() {
  if running && healthy; then echo "origin: healthy on $URL (pid $(cat "$PIDFILE"))"
  else echo "origin: not healthy"; return 1; fi
}

cmd_env() {
  echo "export IMGMOD_ORIGIN_URL=$URL"
  # the same until an edge stands in front of the origin
  echo "export IMGMOD_CDN_URL=$URL"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
