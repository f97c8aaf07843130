#!/usr/bin/env bash
# Real servers on loopback for imgmod's integration tests: Redis, S3 (Ceph
# RGW, strict SigV4) and Apache Kafka (KRaft).  No Docker needed; installs
# what is missing (Debian packages, Kafka's jars from Maven Central).
#
#   scripts/services.sh start   [redis|s3|kafka]  install if needed and start
#                                                 (all, or the one named);
#                                                 already running = no-op
#   scripts/services.sh stop    [redis|s3|rgw|kafka]  stop by recorded PID,
#                                                 data is kept
#   scripts/services.sh status  [redis|s3|kafka]  one line per server, with a
#                                                 real health check; exit 1
#                                                 if one is not healthy
#   scripts/services.sh destroy [redis|s3|kafka]  stop and wipe the data
#   scripts/services.sh env                       print export lines:
#       eval "$(scripts/services.sh env)"
#
# `stop s3` stops the whole Ceph cluster (radosgw, OSD, mon); objects are on a
# file-backed bluestore OSD and survive.  `stop rgw` stops only the gateway
# (the fastest way to take S3 away and bring it back: `start s3` restarts
# whatever is missing).
#
# Settings (environment):
#   IMGMOD_SERVICES_DIR    state directory (default /tmp/imgmod-services)
#   IMGMOD_SERVICES_USER   when run as root, run the daemons as this user
#                          (e.g. postgres, so tests running as that user can
#                          stop/start them); default: the caller
#   IMGMOD_REDIS_PORT (6391)  IMGMOD_S3_PORT (7480)  IMGMOD_CEPH_MON_PORT (3391)
#   IMGMOD_KAFKA_PORT (9092)  IMGMOD_KAFKA_CONTROLLER_PORT (9093)
#   IMGMOD_KAFKA_VERSION (3.9.1)  IMGMOD_KAFKA_PARTITIONS (1)
#   IMGMOD_S3_REGION (us-east-1); bucket names and keys: the IMGMOD_S3_* and
#   IMGMOD_HIRES_S3_* variables printed by `env`, read when the users are
#   first created and remembered after that.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/services/common.sh
. "$SCRIPT_DIR/services/common.sh"
# shellcheck source=scripts/services/redis.sh
. "$SCRIPT_DIR/services/redis.sh"
# shellcheck source=scripts/services/s3.sh
. "$SCRIPT_DIR/services/s3.sh"
# shellcheck source=scripts/services/kafka.sh
. "$SCRIPT_DIR/services/kafka.sh"

ALL=(redis s3 kafka)

usage() {
  sed -n '2,/^set -euo/p' "$SELF" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# targets ACTION [NAME]: the servers an action applies to.
targets() {
  case "${2:-}" in
    '') echo "${ALL[@]}" ;;
    redis | s3 | kafka) echo "$2" ;;
    rgw) [ "$1" = stop ] && echo rgw || echo s3 ;;
    *) usage ;;
  esac
}

cmd_env() {
  redis_env
  s3_env
  kafka_env
  echo "export IMGMOD_SERVICES_DIR=$(printf %q "$SERVICES_DIR")"
  echo "export IMGMOD_SERVICES_SCRIPT=$(printf %q "$SELF")"
}

main() {
  local action=${1:-} t rc=0
  # Files a root run creates (logs, probe objects) must stay usable by the
  # services user's own runs.
  if [ -n "$SERVICES_USER" ] && is_root; then
    trap '[ -d "$SERVICES_DIR" ] && own_tree "$SERVICES_DIR"' EXIT
  fi
  [ $# -le 2 ] || usage
  case "$action" in
    start)
      mkdir -p "$SERVICES_DIR"
      make_dir "$RUN_DIR"
      for t in $(targets start "${2:-}"); do "${t}_start"; done
      for t in $(targets status "${2:-}"); do "${t}_status" || rc=1; done
      return "$rc"
      ;;
    stop)
      # reverse order: kafka, s3, redis
      for t in $(targets stop "${2:-}" | tr ' ' '\n' | tac); do "${t}_stop"; done
      ;;
    status)
      for t in $(targets status "${2:-}"); do "${t}_status" || rc=1; done
      return "$rc"
      ;;
    destroy)
      for t in $(targets destroy "${2:-}"); do "${t}_destroy"; done
      ;;
    env)
      [ $# -eq 1 ] || usage
      cmd_env
      ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
