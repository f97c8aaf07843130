# shellcheck shell=bash
# Redis for scripts/services.sh (sourced).  redis-server from Debian, run as a
# plain process (not systemd) on 127.0.0.1:$REDIS_PORT with its own directory
# configured as a cache: no append-only file (rewriting it would cost the
# pipeline a core), but a save point, so a stop (SIGTERM) writes a snapshot
# and the keys survive a stop/start.

REDIS_PORT=${IMGMOD_REDIS_PORT:-6391}
REDIS_DIR=$SERVICES_DIR/redis
REDIS_PAT=redis-server

redis_install() { apt_ensure redis-server redis-tools; }

redis_ping() { timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -qx PONG; }

redis_start() {
  if is_running redis "$REDIS_PAT"; then
    say "redis already running"
    return 0
  fi
  redis_install
  port_free_or_die "$REDIS_PORT" redis
  local t0
  t0=$(now)
  make_dir "$REDIS_DIR"
  cat >"$REDIS_DIR/redis.conf" <<CONF
# written by scripts/services.sh
port $REDIS_PORT
bind 127.0.0.1
protected-mode yes
daemonize no
dir $REDIS_DIR
logfile $REDIS_DIR/redis.log
appendonly no
save 3600 1
CONF
  own_tree "$REDIS_DIR"
  spawn redis "$REDIS_DIR/redis.out" redis-server "$REDIS_DIR/redis.conf"
  wait_until 30 "redis start" "$REDIS_DIR/redis.log" redis "$REDIS_PAT" -- redis_ping
  say "redis ready on 127.0.0.1:$REDIS_PORT in $(elapsed "$t0")s"
}

redis_stop() {
  # SIGTERM makes redis write its snapshot (a save point is configured) before exiting.
  stop_pid redis "$REDIS_PAT" 30
}

redis_status() {
  local pid
  if pid=$(read_pid redis "$REDIS_PAT"); then
    if redis_ping; then
      echo "redis: running  pid $pid  127.0.0.1:$REDIS_PORT  PING -> PONG  (dir $REDIS_DIR)"
      return 0
    fi
    echo "redis: UNHEALTHY  pid $pid  127.0.0.1:$REDIS_PORT  PING failed"
    return 1
  fi
  echo "redis: stopped  127.0.0.1:$REDIS_PORT"
  return 1
}

redis_env() {
  echo "export IMGMOD_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
}

redis_destroy() {
  redis_stop
  rm -rf "$REDIS_DIR"
  say "redis data wiped"
}
