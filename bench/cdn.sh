#!/usr/bin/env bash
# imgmod-origin against nginx, same run, same bytes, on loopback with wrk:
#   origin, memory hits     the variant in the origin's LRU
#   origin, Redis path      a cache too small for it: every request reads Redis
#                           (and checks the bytes against the ETag)
#   nginx                   the same variant file from disk (sendfile), the anchor
#   edge, hits              the Varnish edge (edge/imgmod.vcl) in front of the
#                           memory origin, the variant in its cache
# for 1 and 64 connections: requests/s, p50 and p99, and the ratios to nginx.
# Target: memory hits >= 0.8x nginx's requests/s with p99 <= 2x nginx's.
# Then edit-to-served latency through the edge (bench/edge_latency.py): 50
# replaces under a steady read load of 200 requests/s, from the call of
# imgmod.replace() to the edge serving the new bytes; target p99 <= 1 s.
#
#   bench/cdn.sh [SECONDS per run, default 10]
#
# Starts its own cluster (port 54360) and Redis (scripts/services.sh start
# redis); leaves nothing running.  The figures also go to
# bench/results/cdn.json, with the machine and versions (bench/benchinfo.py),
# for bench/report.py.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SECONDS_PER_RUN=${1:-10}
WORK=/tmp/imgmod-bench-cdn
export IMGMOD_CLUSTER_DIR=$WORK/cluster IMGMOD_PGPORT=54360
MEM_PORT=18181 REDIS_PORT_ORIGIN=18182 NGINX_PORT=18183 EDGE_PORT=18184

for tool in wrk nginx curl varnishd cjpeg; do
  command -v "$tool" >/dev/null || { echo "bench/cdn.sh needs $tool (apt-get install wrk nginx-light curl varnish varnish-modules libjpeg-turbo-progs)"; exit 1; }
done
make -s >/dev/null
make -s install >/dev/null
rm -rf "$WORK" && mkdir -p "$WORK/www"
chmod 755 "$WORK"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill -QUIT "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  [ -f "$WORK/varnishd.pid" ] && kill -TERM "$(cat "$WORK/varnishd.pid")" 2>/dev/null || true
  scripts/cluster.sh destroy >/dev/null 2>&1 || true
  bash scripts/services.sh stop redis >/dev/null 2>&1 || true
}
trap cleanup EXIT

bash scripts/services.sh start redis >/dev/null
eval "$(bash scripts/services.sh env)"
scripts/cluster.sh destroy >/dev/null 2>&1 || true
IMGMOD_EXTRA_CONF="imgmod.redis_url = '$IMGMOD_REDIS_URL'
imgmod.cdn_purge_urls = 'http://127.0.0.1:$EDGE_PORT/'" scripts/cluster.sh start imgmod_bench >/dev/null
eval "$(scripts/cluster.sh env)"
export PGDATABASE=imgmod_bench
psql -XqAt -c "CREATE EXTENSION IF NOT EXISTS imgmod" \
  -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_origin') THEN
        CREATE ROLE bench_origin LOGIN IN ROLE imgmod_cdn; END IF; END \$\$" >/dev/null
cp test/fixtures/formats/jpeg_progressive_420.jpg "$WORK/photo.jpg"
chmod 644 "$WORK/photo.jpg"
ID=$(psql -XqAt -c "SELECT imgmod.upload(pg_read_binary_file('$WORK/photo.jpg'), 'bench.jpg')")
[ "$(psql -XqAt -c "SELECT imgmod.wait($ID)")" = ready ] || { echo "the image did not become ready"; exit 1; }
KEY=$(psql -XqAt -c "SELECT object_key FROM imgmod.variants WHERE image_id = $ID AND preset = 'medium'")
BYTES=$(psql -XqAt -c "SELECT bytes FROM imgmod.variants WHERE image_id = $ID AND preset = 'medium'")
STORE=$IMGMOD_CLUSTER_DIR/data/imgmod/store
cp "$STORE/$KEY" "$WORK/www/medium.jpg"
chmod -R a+rX "$WORK/www"

start_origin() { # port cache-bytes
  runuser -u postgres -- env IMGMOD_ORIGIN_CONNINFO="host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=bench_origin" \
    IMGMOD_STORE_DIR="$STORE" IMGMOD_S3_ENDPOINT= IMGMOD_REDIS_URL="$IMGMOD_REDIS_URL" \
    origin/imgmod-origin --port "$1" --cache-bytes "$2" --node "bench-$1" >"$WORK/origin-$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null && return 0; sleep 0.05; done
  cat "$WORK/origin-$1.log"; exit 1
}
start_origin $MEM_PORT 268435456
start_origin $REDIS_PORT_ORIGIN 1000    # smaller than any variant: never kept in memory

cat >"$WORK/nginx.conf" <<CONF
worker_processes $(nproc);
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  types { image/jpeg jpg; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
    add_header Cache-Control "public, max-age=31536000, immutable";
  }
}
CONF
nginx -c "$WORK/nginx.conf"

mkdir -p "$WORK/edge"
cat >"$WORK/edge/imgmod-site.vcl" <<VCL
vcl 4.1;
backend imgmod_origin { .host = "127.0.0.1"; .port = "$MEM_PORT"; }
acl imgmod_purgers { "127.0.0.1"; }
VCL
varnishd -j none -n "$WORK/edge/work" -a "127.0.0.1:$EDGE_PORT" -T 127.0.0.1:0 -P "$WORK/varnishd.pid" \
  -f "$ROOT/edge/imgmod.vcl" -p "vcl_path=$WORK/edge:$ROOT/edge" -s imgmod=malloc,256m >"$WORK/varnishd.log" 2>&1
for _ in $(seq 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$EDGE_PORT/")" = 404 ] && break; sleep 0.1; done

# Same bytes from each, or the comparison means nothing.
want=$(md5sum <"$WORK/www/medium.jpg" | cut -d' ' -f1)
for url in "http://127.0.0.1:$MEM_PORT/i/$ID/v1/medium.jpg" "http://127.0.0.1:$REDIS_PORT_ORIGIN/i/$ID/v1/medium.jpg" \
           "http://127.0.0.1:$NGINX_PORT/medium.jpg" "http://127.0.0.1:$EDGE_PORT/i/$ID/v1/medium.jpg"; do
  got=$(curl -fsS "$url" | md5sum | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "$url served other bytes"; exit 1; }
done

# requests/s p50_ms p99_ms of one wrk run
measure() { # url connections
  local threads=$(( $2 < $(nproc) ? $2 : $(nproc) ))
  wrk -t"$threads" -c"$2" -d"${SECONDS_PER_RUN}s" --latency "$1" | awk '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    END { printf "%.0f %.3f %.3f\n", rps, ms(p50), ms(p99) }'
}

printf '\nimgmod-origin vs nginx, %s-byte variant, %ss per run, %s cores\n\n' "$BYTES" "$SECONDS_PER_RUN" "$(nproc)"
printf '| connections | server | req/s | p50 ms | p99 ms | req/s vs nginx | p99 vs nginx |\n'
printf '| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n'
printf 'connections\tserver\treq_per_s\tp50_ms\tp99_ms\n' >"$WORK/cdn.tsv"
for c in 1 64; do
  read -r n_rps n_p50 n_p99 < <(measure "http://127.0.0.1:$NGINX_PORT/medium.jpg" $c)
  read -r m_rps m_p50 m_p99 < <(measure "http://127.0.0.1:$MEM_PORT/i/$ID/v1/medium.jpg" $c)
  read -r r_rps r_p50 r_p99 < <(measure "http://127.0.0.1:$REDIS_PORT_ORIGIN/i/$ID/v1/medium.jpg" $c)
  read -r e_rps e_p50 e_p99 < <(measure "http://127.0.0.1:$EDGE_PORT/i/$ID/v1/medium.jpg" $c)
  printf '| %s | nginx (disk) | %s | %s | %s | 1.00 | 1.00 |\n' $c "$n_rps" "$n_p50" "$n_p99"
  printf '| %s | origin, memory | %s | %s | %s | %.2f | %.2f |\n' $c "$m_rps" "$m_p50" "$m_p99" \
    "$(echo "$m_rps / $n_rps" | bc -l)" "$(echo "$m_p99 / $n_p99" | bc -l)"
  printf '| %s | origin, Redis | %s | %s | %s | %.2f | %.2f |\n' $c "$r_rps" "$r_p50" "$r_p99" \
    "$(echo "$r_rps / $n_rps" | bc -l)" "$(echo "$r_p99 / $n_p99" | bc -l)"
  printf '| %s | edge (Varnish), hits | %s | %s | %s | %.2f | %.2f |\n' $c "$e_rps" "$e_p50" "$e_p99" \
    "$(echo "$e_rps / $n_rps" | bc -l)" "$(echo "$e_p99 / $n_p99" | bc -l)"
  printf '%s\t%s\t%s\t%s\t%s\n' $c nginx "$n_rps" "$n_p50" "$n_p99" $c origin-memory "$m_rps" "$m_p50" "$m_p99" \
    $c origin-redis "$r_rps" "$r_p50" "$r_p99" $c edge-hits "$e_rps" "$e_p50" "$e_p99" >>"$WORK/cdn.tsv"
done
echo
curl -fsS "http://127.0.0.1:$REDIS_PORT_ORIGIN/metrics" | grep -E 'tier_(hits|misses)_total' | sed 's/^/redis-path origin: /'

# Edit-to-served through the edge: more images to read, then 50 replaces.
READ_IDS=$ID
for n in 1 2 3; do
  READ_IDS="$READ_IDS,$(psql -XqAt -c "SELECT imgmod.upload(pg_read_binary_file('$WORK/photo.jpg'), 'read-$n.jpg')")"
done
EDIT=$(psql -XqAt -c "SELECT imgmod.upload(pg_read_binary_file('$WORK/photo.jpg'), 'edited.jpg')")
for i in ${READ_IDS//,/ } $EDIT; do psql -XqAt -c "SELECT imgmod.wait($i)" >/dev/null; done
mkdir -p "$WORK/replaces" && chmod 755 "$WORK/replaces"
echo
python3 bench/edge_latency.py --edge "http://127.0.0.1:$EDGE_PORT" --image "$EDIT" --read-ids "$READ_IDS" \
  --replaces 50 --rate 200 --workdir "$WORK/replaces" --json "$WORK/edge.json"
purges=$(psql -XqAt -c "SELECT 'edge purges: ' || sent || ' sent, ' || acknowledged || ' acknowledged, ' || pending || ' pending' FROM imgmod.cdn_purge_status")
echo "$purges"

python3 bench/benchinfo.py bench/results/cdn.json --bench cdn --versions imgmod,PostgreSQL,Redis,Varnish,nginx,wrk \
  --set command="bench/cdn.sh $SECONDS_PER_RUN" --set seconds_per_run="$SECONDS_PER_RUN" --set variant_bytes="$BYTES" \
  --set purges="${purges#edge purges: }" --tsv wrk="$WORK/cdn.tsv" --json edit_to_served="$WORK/edge.json"
