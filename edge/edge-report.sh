#!/usr/bin/env bash
# Reports a Varnish edge's cache into imgmod.cdn_capacity (tier "edge"):
# every IMGMOD_EDGE_REPORT_INTERVAL seconds, and once more when stopped,
# it reads the counters with varnishstat -j and hands them to
# imgmod.cdn_report_varnish(), which picks out capacity, use, objects,
# hits, misses and LRU evictions.  Run it beside the edge.
#
# Environment:
#   IMGMOD_EDGE_CONNINFO         libpq conninfo of a login role with imgmod_cdn
#                                (PGPASSWORD or ~/.pgpass for a password)
#   IMGMOD_EDGE_WORKDIR          the edge's varnishd -n directory (empty: varnishd's default)
#   IMGMOD_EDGE_NODE             the name it reports under (default: host name)
#   IMGMOD_EDGE_REPORT_INTERVAL  seconds between reports (default 5)
set -uo pipefail

CONNINFO=${IMGMOD_EDGE_CONNINFO:?IMGMOD_EDGE_CONNINFO is not set: the conninfo of a role with imgmod_cdn}
WORKDIR=${IMGMOD_EDGE_WORKDIR:-}
NODE=${IMGMOD_EDGE_NODE:-$(hostname)}
INTERVAL=${IMGMOD_EDGE_REPORT_INTERVAL:-5}

case "$INTERVAL" in ''|*[!0-9]*) echo "edge-report: IMGMOD_EDGE_REPORT_INTERVAL must be whole seconds" >&2; exit 2 ;; esac
[ "$INTERVAL" -ge 1 ] || { echo "edge-report: IMGMOD_EDGE_REPORT_INTERVAL must be at least 1" >&2; exit 2; }

report() {
  local stats
  # only the counters imgmod reads: a few hundred bytes instead of the whole set
  stats=$(varnishstat ${WORKDIR:+-n "$WORKDIR"} -j -f 'MAIN.n_object' -f 'MAIN.cache_hit' \
            -f 'MAIN.cache_miss' -f 'MAIN.n_lru_nuked' -f 'SMA.*' -f 'SMF.*' 2>&1) || {
    echo "edge-report: varnishstat failed: $stats" >&2
    return 1
  }
  echo "SELECT imgmod.cdn_report_varnish(:'node', :'stats'::jsonb, make_interval(secs => :secs));" |
    psql "$CONNINFO" -XqAt -v ON_ERROR_STOP=1 -v node="$NODE" -v secs="$INTERVAL" -v stats="$stats" >/dev/null
}

stop=0
trap 'stop=1' TERM INT
while :; do
  report || echo "edge-report: report failed; trying again in ${INTERVAL} s" >&2
  [ "$stop" = 1 ] && break
  sleep "$INTERVAL" &
  wait $! 2>/dev/null
  [ "$stop" = 1 ] && { report; break; }
done
exit 0
