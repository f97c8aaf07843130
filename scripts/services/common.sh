# shellcheck shell=bash
# Shared helpers for scripts/services.sh (sourced, not run).
#
# Every daemon is started through spawn(), which records its PID in
# $SERVICES_DIR/run/NAME.pid; stop_pid() kills by that PID and waits for the
# exit.  Every wait is bounded (wait_until) and a failed wait prints the tail of
# the server's log.

SERVICES_DIR=${IMGMOD_SERVICES_DIR:-/tmp/imgmod-services}
RUN_DIR=$SERVICES_DIR/run
# Optional: when run as root, run the daemons as this OS user (for example
# 'postgres', so that TAP tests running as that user can stop/start them).
SERVICES_USER=${IMGMOD_SERVICES_USER:-}

say() { printf '%s\n' "services: $*" >&2; }
die() { printf '%s\n' "services: ERROR: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Run a command as the services user (or as ourselves when none is set).
as_svc() {
  if [ -n "$SERVICES_USER" ] && is_root && [ "$SERVICES_USER" != root ]; then
    runuser -u "$SERVICES_USER" -- "$@"
  else
    "$@"
  fi
}

# mkdir -p, owned by the services user.
make_dir() {
  mkdir -p "$@"
  if [ -n "$SERVICES_USER" ] && is_root; then chown "$SERVICES_USER:" "$@"; fi
}

# chown -R a tree to the services user (no-op without one).
own_tree() {
  if [ -n "$SERVICES_USER" ] && is_root; then chown -R "$SERVICES_USER:" "$@"; fi
}

APT_UPDATED=
# apt_ensure PACKAGE...: install the Debian packages that are missing.
apt_ensure() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  is_root || die "missing Debian packages ${missing[*]}: run this script once as root to install them"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$APT_UPDATED" ]; then
    timeout 300 apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
  fi
  timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$SERVICES_DIR/apt.log" 2>&1 \
    || { tail -n 20 "$SERVICES_DIR/apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
}

pidfile() { echo "$RUN_DIR/$1.pid"; }

# read_pid NAME: the recorded PID of NAME if that process is alive and still
# runs the expected program (guards against a stale file and PID reuse).
read_pid() {
  local f pid
  f=$(pidfile "$1")
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || [ -d "/proc/$pid" ] || return 1
  if [ -n "${2:-}" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
  fi
  echo "$pid"
}

# is_running NAME PATTERN
is_running() { read_pid "$1" "$2" >/dev/null; }

declare -A SPAWN_OUT=()

# show_logs FILE...: the last lines of each existing, non-empty FILE.
show_logs() {
  local f
  for f in "$@"; do
    [ -s "$f" ] || continue
    printf '\n----- last lines of %s\n' "$f"
    tail -n 30 "$f"
  done
}

# spawn NAME LOGFILE CMD...: start CMD in the background in its own session,
# as the services user, stdout/stderr to LOGFILE, PID to run/NAME.pid.
spawn() {
  local name=$1 log=$2 f
  shift 2
  SPAWN_OUT[$name]=$log
  f=$(pidfile "$name")
  rm -f "$f"
  # shellcheck disable=SC2016
  # The daemon (and runuser above it) keeps none of its starter's
  # descriptors beyond 0-2: a lock the caller holds, for one, would
  # otherwise stay held for as long as the daemon runs.
  (
    for d in /proc/$BASHPID/fd/*; do n=${d##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null
    as_svc setsid bash -c 'echo $$ >"$0"; exec "$@"' "$f" "$@"
  ) >>"$log" 2>&1 </dev/null &
  for _ in $(seq 50); do [ -s "$f" ] && return 0; sleep 0.1; done
  die "$name did not start (no PID file $f)$(show_logs "$log")"
}

# stop_pid NAME PATTERN [TIMEOUT]: SIGTERM the recorded PID, wait up to
# TIMEOUT seconds for it to exit, then SIGKILL.
stop_pid() {
  local name=$1 pat=$2 timeout=${3:-30} pid t0
  pid=$(read_pid "$name" "$pat") || { rm -f "$(pidfile "$name")"; return 0; }
  t0=$(now)
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while [ -d "/proc/$pid" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  if [ -d "/proc/$pid" ]; then
    say "$name (pid $pid) still running after ${timeout}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while [ -d "/proc/$pid" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    [ -d "/proc/$pid" ] && die "$name (pid $pid) survived SIGKILL"
  fi
  rm -f "$(pidfile "$name")"
  say "stopped $name (pid $pid) in $(elapsed "$t0")s"
}

# wait_until TIMEOUT WHAT LOGFILE NAME PATTERN -- CMD...: poll CMD every 0.2 s
# until it succeeds; fail with the log's tail on timeout or when the process
# recorded as NAME dies meanwhile (NAME may be '' to skip that check).
wait_until() {
  local timeout=$1 what=$2 log=$3 name=$4 pat=$5
  shift 6
  local deadline=$((SECONDS + timeout))
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ -n "$name" ] && ! is_running "$name" "$pat"; then
      die "$what: $name exited$(show_logs "$log" "${SPAWN_OUT[$name]:-}")"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "$what: not ready after ${timeout}s$(show_logs "$log" "${SPAWN_OUT[$name]:-}")"
    fi
    sleep 0.2
  done
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# port_free_or_die PORT WHAT: refuse to start when a foreign process holds PORT.
port_free_or_die() {
  if port_open "$1"; then
    die "$2: port 127.0.0.1:$1 is already in use by another process (set its IMGMOD_*_PORT variable)"
  fi
}
