#!/usr/bin/env bash
# Pipeline throughput with every service on (S3 via Ceph RGW, Redis, Kafka),
# against the render-only throughput of the same images on the same cores.
#
#   bench/pipeline.sh [ROUNDS]        (default 3 rounds of the photo set)
#   IMGMOD_BENCH_SERVICES=0   the embedded default instead (local store, no
#                             Redis, no Kafka) for comparison
#   IMGMOD_BENCH_WORKERS=N    workers (2);  IMGMOD_BENCH_SESSIONS=N  uploaders (2)
#   IMGMOD_BENCH_RENDER_THREADS=N  imgmod.render_threads (the server's default, 2)
#
# Pipeline: $SESSIONS sessions upload every image (autocommit, one call each)
# while the imgmod workers render, store, cache and publish; throughput is
# uploads / (first upload start .. last image ready).  It is compared with:
#   render-only: the same normalised masters rendered by `imgmod-cli render`
#     (compressed master and four widths from one decode), 2 processes in
#     parallel like the 2 workers, no database, no network;
#   normalise + render: the image work the pipeline must do (upload
#     normalisation, then the render), 2 processes, no database, no network;
#   worker stage: the same uploads committed in one transaction, timed from
#     the COMMIT to the last ready image (render + store + cache + publish).
# Also reported: object-store GETs while rendering, PUTs per upload, Redis
# writes, Kafka acknowledgements, the time from commit to ready (median,
# p95), and the CPU seconds each kind of process used (bench/cpu_by_process.py),
# which shows what the servers themselves cost on the shared cores.  Needs the
# photos in ../shared/corpus/photos (or IMGMOD_BENCH_PHOTOS=dir) and starts
# the servers with scripts/services.sh.  The figures also go to
# bench/results/pipeline-services.json (or pipeline-embedded.json), with the
# machine and versions (bench/benchinfo.py), for bench/report.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=${1:-3}
PHOTOS=${IMGMOD_BENCH_PHOTOS:-$ROOT/../shared/corpus/photos}
[ -d "$PHOTOS" ] || { echo "pipeline: no photo directory $PHOTOS (set IMGMOD_BENCH_PHOTOS)" >&2; exit 2; }

make -s && make -s install >/dev/null
make -s -C tools >/dev/null
CLI=$ROOT/build/tools/imgmod-cli

export IMGMOD_SERVICES_USER=${IMGMOD_SERVICES_USER:-postgres}
bash scripts/services.sh start >/dev/null
eval "$(bash scripts/services.sh env)"

WORK=/tmp/imgmod-bench-pipeline
rm -rf "$WORK" && mkdir -p "$WORK/in" "$WORK/masters" "$WORK/out"
i=0
for f in "$PHOTOS"/*.jpg "$PHOTOS"/*.png; do
  [ -f "$f" ] || continue
  i=$((i + 1)); cp "$f" "$WORK/in/$(printf '%02d' $i)-$(basename "$f")"
done
chmod -R a+rX "$WORK"
NIMG=$(ls "$WORK/in" | wc -l)
N=$((NIMG * ROUNDS))

# ---- render-only --------------------------------------------------------
for f in "$WORK"/in/*; do "$CLI" normalise "$f" "$WORK/masters/$(basename "${f%.*}").jpg" >/dev/null; done
list=$(for r in $(seq 1 "$ROUNDS"); do ls "$WORK"/masters/*.jpg; done)
t0=$(date +%s.%N)
echo "$list" | xargs -P 2 -I{} sh -c "mkdir -p $WORK/out/\$\$ && $CLI render {} $WORK/out/\$\$ 2560,1920,1024,512,256 >/dev/null"
t1=$(date +%s.%N)
render_rate=$(echo "$N / ($t1 - $t0)" | bc -l)

# ---- image work only: what the pipeline computes, without database or servers
# (upload normalisation + the render of each image, 2 processes)
list=$(for r in $(seq 1 "$ROUNDS"); do ls "$WORK"/in/*; done)
t0=$(date +%s.%N)
echo "$list" | xargs -P 2 -I{} sh -c "mkdir -p $WORK/out/w\$\$ && $CLI normalise {} $WORK/out/w\$\$/m.jpg >/dev/null && $CLI render $WORK/out/w\$\$/m.jpg $WORK/out/w\$\$ 2560,1920,1024,512,256 >/dev/null"
t1=$(date +%s.%N)
work_rate=$(echo "$N / ($t1 - $t0)" | bc -l)

# ---- pipeline -----------------------------------------------------------
export IMGMOD_CLUSTER_DIR=$WORK/cluster IMGMOD_PGPORT=54331
SERVICES=${IMGMOD_BENCH_SERVICES:-1}
SESSIONS=${IMGMOD_BENCH_SESSIONS:-2}
if [ "$SERVICES" = 1 ]; then
export IMGMOD_EXTRA_CONF="imgmod.s3_endpoint = '$IMGMOD_S3_ENDPOINT'
imgmod.s3_bucket = '$IMGMOD_S3_BUCKET'
imgmod.s3_access_key = '$IMGMOD_S3_ACCESS_KEY'
imgmod.s3_secret_key = '$IMGMOD_S3_SECRET_KEY'
imgmod.hires_s3_endpoint = '$IMGMOD_HIRES_S3_ENDPOINT'
imgmod.hires_s3_bucket = '$IMGMOD_HIRES_S3_BUCKET'
imgmod.hires_s3_access_key = '$IMGMOD_HIRES_S3_ACCESS_KEY'
imgmod.hires_s3_secret_key = '$IMGMOD_HIRES_S3_SECRET_KEY'
imgmod.redis_url = '$IMGMOD_REDIS_URL'
imgmod.kafka_brokers = '$IMGMOD_KAFKA_BROKERS'
imgmod.workers = ${IMGMOD_BENCH_WORKERS:-2}
fsync = on"
else
export IMGMOD_EXTRA_CONF="imgmod.workers = ${IMGMOD_BENCH_WORKERS:-2}
fsync = on"
fi
if [ -n "${IMGMOD_BENCH_RENDER_THREADS:-}" ]; then
  IMGMOD_EXTRA_CONF="$IMGMOD_EXTRA_CONF
imgmod.render_threads = $IMGMOD_BENCH_RENDER_THREADS"
fi
scripts/cluster.sh destroy >/dev/null 2>&1 || true
scripts/cluster.sh start imgmod_bench >/dev/null
trap 'scripts/cluster.sh destroy >/dev/null 2>&1 || true' EXIT
eval "$(scripts/cluster.sh env)"
psql -qX -d imgmod_bench -c "CREATE EXTENSION imgmod"
sql=$WORK/uploads.sql
: > "$sql"
for r in $(seq 1 "$ROUNDS"); do
  for f in "$WORK"/in/*; do
    echo "SELECT imgmod.upload(pg_read_binary_file('$f'), '$(basename "$f")');" >> "$sql"
  done
done
# Uploads come from $SESSIONS concurrent sessions, as from several app servers.
split -n "l/$SESSIONS" -d "$sql" "$WORK/uploads.part."
rm -f "$WORK/cpu.stop"
python3 "$ROOT/bench/cpu_by_process.py" "$WORK/cpu.stop" "$WORK/cpu.json" > "$WORK/cpu.txt" &
sampler=$!
# Sets t1 when every image is ready, then stops the CPU sampler.  One
# session waits for each image in turn with imgmod.wait(), as an application
# would: polling with a new psql (a new backend) every few milliseconds took
# a noticeable share of the very cores being measured.
wait_all_ready_then_stop_sampler() {
  local states
  states=$(psql -qXAt -d imgmod_bench -c "SELECT string_agg(DISTINCT s, ',') FROM
             (SELECT imgmod.wait(id, '600 s') AS s FROM (SELECT id FROM imgmod.images ORDER BY id) i) w")
  t1=$(date +%s.%N)
  touch "$WORK/cpu.stop"; wait "$sampler"
  [ "$states" = ready ] || { echo "pipeline: images ended $states, not all ready" >&2; exit 1; }
}
t0=$(date +%s.%N)
uploaders=()
for part in "$WORK"/uploads.part.*; do psql -qXAt -d imgmod_bench -f "$part" >/dev/null & uploaders+=($!); done
wait "${uploaders[@]}"
wait_all_ready_then_stop_sampler
pipeline_rate=$(echo "$N / ($t1 - $t0)" | bc -l)
# With Kafka on, wait for every acknowledgement before reading the counters.
while [ "$SERVICES" = 1 ] &&
      [ "$(psql -qXAt -d imgmod_bench -c "SELECT count(*) FROM imgmod.events WHERE published_at IS NULL")" != 0 ]; do
  sleep 0.1
done

psql -qX -d imgmod_bench <<SQL
\pset footer off
\echo
\echo '## imgmod pipeline benchmark ($N uploads: $NIMG images x $ROUNDS rounds, ${IMGMOD_BENCH_WORKERS:-2} workers, $SESSIONS upload sessions, services: $SERVICES)'
SELECT round($pipeline_rate, 2) AS pipeline_uploads_per_s,
       round($render_rate, 2) AS render_only_per_s,
       round(100 * $pipeline_rate / $render_rate, 1) AS pipeline_pct_of_render_only,
       round($work_rate, 2) AS normalise_and_render_per_s,
       round(100 * $pipeline_rate / $work_rate, 1) AS pipeline_pct_of_normalise_and_render;
SELECT store, verb, requests, failures, retries FROM imgmod.stats WHERE requests > 0 ORDER BY store, verb;
SELECT round(sum(requests) FILTER (WHERE verb = 'PUT')::numeric / $N, 2) AS puts_per_upload,
       coalesce(sum(requests) FILTER (WHERE verb = 'GET'), 0) AS gets_during_rendering
  FROM imgmod.stats;
SELECT counter, total FROM imgmod.cache_stats WHERE total > 0;
SELECT threads AS render_threads, renders FROM imgmod.render_stats WHERE renders > 0 ORDER BY threads;
SELECT count(*) AS events, count(published_at) AS acknowledged_by_kafka FROM imgmod.events;
SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ready_at - created_at))::numeric, 0) AS commit_to_ready_median_ms,
       round(1000 * percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM ready_at - created_at))::numeric, 0) AS commit_to_ready_p95_ms
  FROM imgmod.images;
SQL
# the same figures for bench/results (before the worker stage adds to the counters)
psql -qXAt -d imgmod_bench >"$WORK/db.json" <<'SQL'
SELECT json_build_object(
  'store_requests', (SELECT coalesce(json_agg(s ORDER BY store, verb), '[]') FROM
                       (SELECT store, verb, requests, failures, retries FROM imgmod.stats WHERE requests > 0) s),
  'cache', (SELECT coalesce(json_object_agg(counter, total), '{}') FROM imgmod.cache_stats WHERE total > 0),
  'renders_by_threads', (SELECT coalesce(json_object_agg(threads, renders), '{}') FROM imgmod.render_stats WHERE renders > 0),
  'events', (SELECT count(*) FROM imgmod.events),
  'acknowledged_by_kafka', (SELECT count(published_at) FROM imgmod.events),
  'commit_to_ready_median_ms', (SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ready_at - created_at))::numeric, 0) FROM imgmod.images),
  'commit_to_ready_p95_ms', (SELECT round(1000 * percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM ready_at - created_at))::numeric, 0) FROM imgmod.images));
SQL
echo
echo "## where the CPU went during the pipeline run (bench/cpu_by_process.py)"
cat "$WORK/cpu.txt"

# ---- worker stage: the same uploads committed in one transaction, so the
# workers start together and the rate is render + store + cache + publish
# (the servers still share the two cores), comparable with render-only.
# The sampler starts just before the COMMIT (the last statement), so it
# sees the workers' stage, not the uploads' normalisation.
{ echo "BEGIN;"; cat "$sql"; } > "$WORK/one-transaction.sql"
rm -f "$WORK/cpu.stop" "$WORK/uploaded"
coproc UPLOADER { psql -qXAt -d imgmod_bench 2>&1; }
cat "$WORK/one-transaction.sql" >&"${UPLOADER[1]}"
echo "\\o $WORK/uploaded" >&"${UPLOADER[1]}"
echo "SELECT 1;" >&"${UPLOADER[1]}"
until [ -s "$WORK/uploaded" ]; do sleep 0.02; done
python3 "$ROOT/bench/cpu_by_process.py" "$WORK/cpu.stop" "$WORK/cpu-workers.json" > "$WORK/cpu-workers.txt" &
sampler=$!
echo "COMMIT;" >&"${UPLOADER[1]}"
echo "\\q" >&"${UPLOADER[1]}"
wait "$UPLOADER_PID"
t0=$(date +%s.%N)   # the COMMIT has returned: the workers start now
wait_all_ready_then_stop_sampler
worker_rate=$(echo "$N / ($t1 - $t0)" | bc -l)
echo
echo "## worker stage: $N uploads committed at once, then rendered, stored, cached and published"
printf 'worker_stage_per_s %.2f   render_only_per_s %.2f   worker_stage_pct_of_render_only %.1f\n' \
  "$worker_rate" "$render_rate" "$(echo "100 * $worker_rate / $render_rate" | bc -l)"
cat "$WORK/cpu-workers.txt"

if [ "$SERVICES" = 1 ]; then
  mode=services command="bench/pipeline.sh $ROUNDS" versions=imgmod,PostgreSQL,libjpeg-turbo,Ceph,Redis
  extra=(--version "Kafka=${IMGMOD_KAFKA_VERSION:-3.9.1}")
else
  mode=embedded command="IMGMOD_BENCH_SERVICES=0 bench/pipeline.sh $ROUNDS" versions=imgmod,PostgreSQL,libjpeg-turbo
  extra=()
fi
python3 "$ROOT/bench/benchinfo.py" "$ROOT/bench/results/pipeline-$mode.json" --bench pipeline \
  --versions "$versions" "${extra[@]}" --set command="$command" --set services="$SERVICES" \
  --set rounds="$ROUNDS" --set images="$NIMG" --set uploads="$N" --set workers="${IMGMOD_BENCH_WORKERS:-2}" \
  --set sessions="$SESSIONS" --set pipeline_uploads_per_s="$pipeline_rate" --set render_only_per_s="$render_rate" \
  --set normalise_and_render_per_s="$work_rate" --set worker_stage_per_s="$worker_rate" \
  --json db="$WORK/db.json" --json cpu_pipeline="$WORK/cpu.json" --json cpu_worker_stage="$WORK/cpu-workers.json"
