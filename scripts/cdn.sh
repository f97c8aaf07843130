#!/usr/bin/env bash
# imgmod's CDN on loopback -- imgmod-origin, and a Varnish edge in front of
# it when varnishd is installed -- against the cluster the standard libpq
# environment names (PGHOST, PGPORT, PGDATABASE, PGUSER), for the demo, the
# tests and a try-out.
#
#   scripts/cdn.sh start    build if needed, create the origin's login role
#                           (imgmod_cdn only), find the stores, start the
#                           origin; then the edge (edge/imgmod.vcl), its
#                           capacity reporter (edge/edge-report.sh), and
#                           add the edge to imgmod.cdn_purge_urls
#   scripts/cdn.sh stop     the edge (removed from imgmod.cdn_purge_urls:
#                           its cache goes with it), then the origin
#                           (SIGTERM: responses in flight finish)
#   scripts/cdn.sh status   health checks; exit 1 when one is not healthy
#   scripts/cdn.sh env      export lines: eval "$(scripts/cdn.sh env)"
#                           IMGMOD_ORIGIN_URL, and IMGMOD_CDN_URL: the edge
#                           while it runs, else the origin
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
# store directory, as the embedded store lives in the data directory),
# IMGMOD_EDGE (0: no edge), IMGMOD_EDGE_PORT (6081), IMGMOD_EDGE_STORAGE
# (the edge's capacity, 256m), IMGMOD_EDGE_PURGERS (addresses allowed to
# purge: "127.0.0.1 ::1").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CDN_DIR=${IMGMOD_CDN_DIR:-/tmp/imgmod-cdn}
PORT=${IMGMOD_ORIGIN_PORT:-8088}
ROLE=${IMGMOD_ORIGIN_ROLE:-imgmod_origin}
BIN=$ROOT/origin/imgmod-origin
PIDFILE=$CDN_DIR/origin.pid
URL=http://127.0.0.1:$PORT
EDGE_PORT=${IMGMOD_EDGE_PORT:-6081}
EDGE_DIR=$CDN_DIR/edge
EDGE_URL=http://127.0.0.1:$EDGE_PORT
EDGE_PIDFILE=$EDGE_DIR/varnishd.pid
REPORTER_PIDFILE=$EDGE_DIR/reporter.pid

say() { printf 'cdn: %s\n' "$*" >&2; }
die() { printf 'cdn: ERROR: %s\n' "$*" >&2; exit 1; }

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

healthy() { curl -fs --max-time 2 -o /dev/null "$URL/healthz" 2>/dev/null; }

edge_running() { [ -f "$EDGE_PIDFILE" ] && kill -0 "$(cat "$EDGE_PIDFILE")" 2>/dev/null; }

# The edge answers a path outside /i/ itself, with 404, without the origin.
edge_healthy() {
  [ "$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$EDGE_URL/" 2>/dev/null)" = 404 ]
}

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
    # the store directory may not exist before the first upload: its
    # nearest existing parent is the data directory's owner's
    local owner_of=$store_dir
    while [ -n "$owner_of" ] && [ ! -e "$owner_of" ]; do owner_of=$(dirname "$owner_of"); done
    os_user=${IMGMOD_ORIGIN_OS_USER:-$( [ -n "$store_dir" ] && stat -c %U "$owner_of" || echo nobody)}
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
  local up=0
  for _ in $(seq 100); do
    healthy && { say "origin on $URL (pid $(cat "$PIDFILE"))"; up=1; break; }
    running || break
    sleep 0.1
  done
  if [ "$up" = 0 ]; then
    tail -n 20 "$CDN_DIR/origin.log" >&2
    die "the origin did not become healthy"
  fi
  start_edge
}

# The purge list, without (or with) this script's edge.
purge_urls_without_edge() {
  sql "SELECT coalesce(string_agg(u, ',' ORDER BY n), '') FROM (
         SELECT btrim(u) AS u, n FROM unnest(string_to_array(current_setting('imgmod.cdn_purge_urls'), ',')) WITH ORDINALITY AS x(u, n)
       ) s WHERE u <> '' AND u <> '$EDGE_URL/'"
}

set_purge_urls() {
  sql "ALTER SYSTEM SET imgmod.cdn_purge_urls = '$1'" >/dev/null
  sql "SELECT pg_reload_conf()" >/dev/null
}

start_edge() {
  if [ "${IMGMOD_EDGE:-1}" = 0 ]; then say "no edge (IMGMOD_EDGE=0)"; return 0; fi
  command -v varnishd >/dev/null ||
    { say "no edge: varnishd is not installed (apt-get install varnish varnish-modules)"; return 0; }
  edge_running && { say "edge already running (pid $(cat "$EDGE_PIDFILE"))"; return 0; }
  mkdir -p "$EDGE_DIR"
  {
    echo 'vcl 4.1;'
    echo "backend imgmod_origin { .host = \"127.0.0.1\"; .port = \"$PORT\"; .connect_timeout = 1s; .first_byte_timeout = 10s; .between_bytes_timeout = 5s; }"
    echo 'acl imgmod_purgers {'
    for a in ${IMGMOD_EDGE_PURGERS:-127.0.0.1 ::1}; do echo "  \"$a\";"; done
    echo '}'
  } >"$EDGE_DIR/imgmod-site.vcl"
  # As root varnishd drops to its own users (Debian's varnish package makes
  # them); otherwise it runs as the caller.
  local jail=(-j none)
  [ "$(id -u)" = 0 ] && jail=()
  varnishd "${jail[@]}" -n "$EDGE_DIR/work" -a "127.0.0.1:$EDGE_PORT" -T 127.0.0.1:0 \
    -f "$ROOT/edge/imgmod.vcl" -p "vcl_path=$EDGE_DIR:$ROOT/edge" \
    -s "imgmod=malloc,${IMGMOD_EDGE_STORAGE:-256m}" -P "$EDGE_PIDFILE" >"$EDGE_DIR/varnishd.log" 2>&1 ||
    { cat "$EDGE_DIR/varnishd.log" >&2; die "the edge did not start"; }
  for _ in $(seq 100); do edge_healthy && break; sleep 0.1; done
  edge_healthy || die "the edge did not answer on $EDGE_URL"

  # Its capacity in imgmod.cdn_capacity, as the origin's role.
  IMGMOD_EDGE_CONNINFO="host=${PGHOST:-/var/run/postgresql} port=${PGPORT:-5432} dbname=${PGDATABASE:-postgres} user=$ROLE" \
  IMGMOD_EDGE_WORKDIR="$EDGE_DIR/work" IMGMOD_EDGE_NODE="edge-127.0.0.1:$EDGE_PORT" \
    nohup bash "$ROOT/edge/edge-report.sh" >"$EDGE_DIR/reporter.log" 2>&1 </dev/null &
  echo $! >"$REPORTER_PIDFILE"

  local others
  others=$(purge_urls_without_edge)
  set_purge_urls "${others:+$others,}$EDGE_URL/"
  say "edge on $EDGE_URL (pid $(cat "$EDGE_PIDFILE")), purged through imgmod.cdn_purge_urls"
}

stop_edge() {
  if [ -f "$REPORTER_PIDFILE" ]; then
    kill -TERM "$(cat "$REPORTER_PIDFILE")" 2>/dev/null || true
    rm -f "$REPORTER_PIDFILE"
  fi
  edge_running || { rm -f "$EDGE_PIDFILE"; return 0; }
  # A stopped edge's cache is gone: it needs no purges.
  set_purge_urls "$(purge_urls_without_edge)" || say "could not remove $EDGE_URL/ from imgmod.cdn_purge_urls"
  local pid
  pid=$(cat "$EDGE_PIDFILE")
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$EDGE_PIDFILE"
  say "edge stopped"
}

cmd_stop() {
  stop_edge
  running || { say "origin not running"; rm -f "$PIDFILE"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  kill -TERM "$pid"
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && die "origin $pid did not stop within 20 s"
  rm -f "$PIDFILE"
  say "origin stopped"
}

cmd_status() {
  local rc=0
  if running && healthy; then echo "origin: healthy on $URL (pid $(cat "$PIDFILE"))"
  else echo "origin: not healthy"; rc=1; fi
  if edge_running; then
    if edge_healthy; then echo "edge: healthy on $EDGE_URL (pid $(cat "$EDGE_PIDFILE"))"
    else echo "edge: not answering on $EDGE_URL"; rc=1; fi
  else
    echo "edge: not running"
  fi
  return $rc
}

cmd_env() {
  echo "export IMGMOD_ORIGIN_URL=$URL"
  # browsers go through the edge when there is one
  if edge_running; then echo "export IMGMOD_CDN_URL=$EDGE_URL"; else echo "export IMGMOD_CDN_URL=$URL"; fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
