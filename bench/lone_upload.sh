#!/usr/bin/env bash
# A lone upload on an idle machine: the merchant who uploads one product
# photo and waits.  For a 20 MP photo (kleiber from the corpus, or the file
# given), N times one after the other on an otherwise idle cluster:
#   upload   the imgmod.upload() call (validate, normalise, INSERT), server time
#   ready    from the upload's commit to the version's ready event: what the
#            worker does (claim, decode once, compressed master and every
#            preset, store, register), from imgmod.events' own timestamps
# with imgmod.render_threads = 1 (before: one thread per render) and with 2
# (a second thread while a core is idle), alternating.  Prints the median and
# the minimum of each, and imgmod.render_stats.
#
#   bench/lone_upload.sh [N=9] [PHOTO]
#
# Starts its own cluster (embedded store, port 54364) and removes it.  Run
# under /tmp/imgmod-shared.lock when others use the system PostgreSQL.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
N=${1:-9}
PHOTO=${2:-${IMGMOD_CORPUS:-$ROOT/../shared/corpus}/photos/kleiber.jpg}
[ -f "$PHOTO" ] || { echo "lone_upload: no photo $PHOTO (give one as the second argument)" >&2; exit 2; }
WORK=/tmp/imgmod-bench-lone
export IMGMOD_CLUSTER_DIR=$WORK/cluster IMGMOD_PGPORT=54364

make -s >/dev/null
make -s install >/dev/null
rm -rf "$WORK" && mkdir -p "$WORK"
cp "$PHOTO" "$WORK/photo.jpg"
chmod -R a+rX "$WORK"
trap 'scripts/cluster.sh destroy >/dev/null 2>&1 || true' EXIT
scripts/cluster.sh destroy >/dev/null 2>&1 || true
IMGMOD_EXTRA_CONF="imgmod.poll_interval = '100ms'" scripts/cluster.sh start imgmod_lone >/dev/null
eval "$(scripts/cluster.sh env)"
export PGDATABASE=imgmod_lone
psql -XqAt -c "CREATE EXTENSION IF NOT EXISTS imgmod" >/dev/null

# The same photo N times with the render on one thread and N times with
# imgmod.render_threads = 2 (the default: a second thread while a core is
# idle), alternating so that both modes see the same machine.  After each
# switch an uncounted upload makes sure the workers have read the setting.
upload_once() {
  local id
  id=$(psql -XqAt -c "SELECT imgmod.upload(pg_read_binary_file('$WORK/photo.jpg'), 'lone.jpg')")
  [ "$(psql -XqAt -c "SELECT imgmod.wait($id, '120 s')")" = ready ] || { echo "image $id did not become ready" >&2; exit 1; }
  echo "$id"
}
psql -XqAt -c "CREATE TABLE lone_runs (image_id bigint PRIMARY KEY, threads int)" >/dev/null
for i in $(seq 1 "$N"); do
  for threads in 1 2; do
    psql -XqAt -c "ALTER SYSTEM SET imgmod.render_threads = $threads" -c "SELECT pg_reload_conf()" >/dev/null
    warm=$(upload_once)
    psql -XqAt -c "DELETE FROM imgmod.events WHERE image_id = $warm" >/dev/null
    id=$(upload_once)
    psql -XqAt -c "INSERT INTO lone_runs VALUES ($id, $threads)" >/dev/null
  done
done

# one table for people, the same rows as TSV for bench/results/lone.json
psql -XqAt -v ON_ERROR_STOP=1 -c "CREATE VIEW lone_summary AS
WITH upload AS (
    -- the upload's own time: images.created_at is the statement's start,
    -- the received event is written at its end
    SELECT i.id, extract(epoch FROM r.created_at - i.created_at) * 1000 AS ms
      FROM imgmod.images i JOIN imgmod.events r ON r.image_id = i.id AND r.status = 'received'),
ready AS (
    SELECT r.image_id AS id, extract(epoch FROM d.created_at - r.created_at) * 1000 AS ms
      FROM imgmod.events r JOIN imgmod.events d ON d.image_id = r.image_id AND d.status = 'ready'
     WHERE r.status = 'received'),
steps AS (
    SELECT 'upload() call' AS step, l.threads, u.ms FROM upload u JOIN lone_runs l ON l.image_id = u.id
    UNION ALL
    SELECT 'commit -> ready', l.threads, r.ms FROM ready r JOIN lone_runs l ON l.image_id = r.id)
SELECT step, threads AS render_threads, count(*) AS runs,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric) AS median_ms,
       round(min(ms)::numeric) AS min_ms
  FROM steps GROUP BY step, threads" >/dev/null
psql -X -v ON_ERROR_STOP=1 <<'SQL'
\pset footer off
SELECT * FROM lone_summary ORDER BY step DESC, render_threads;
-- how many threads the renders really got (a busy core keeps a render on one)
SELECT threads, renders FROM imgmod.render_stats WHERE renders > 0 ORDER BY threads;
SQL
{ printf 'step\trender_threads\truns\tmedian_ms\tmin_ms\n'
  psql -XqAt -F $'\t' -c "SELECT * FROM lone_summary ORDER BY step DESC, render_threads"; } >"$WORK/summary.tsv"
{ printf 'threads\trenders\n'
  psql -XqAt -F $'\t' -c "SELECT threads, renders FROM imgmod.render_stats WHERE renders > 0 ORDER BY threads"; } >"$WORK/threads.tsv"

# Where the render's time goes, in-process, on one thread and on two
# (bench/build/imgmod_stages on this photo's master, normalised by imgmod-cli).
make -s -C tools >/dev/null
make -s -C bench build/imgmod_stages >/dev/null
build/tools/imgmod-cli normalise "$WORK/photo.jpg" "$WORK/master.jpg" >/dev/null
{ printf 'stage\tms\tnote\n'
  bench/build/imgmod_stages "$WORK/master.jpg" 2560,1920,1024,512,256 7; } >"$WORK/stages.tsv"
echo
grep -E '^(total|render:|load)' "$WORK/stages.tsv"

python3 bench/benchinfo.py bench/results/lone.json --bench lone_upload --versions imgmod,PostgreSQL \
  --set command="bench/lone_upload.sh $N" --set photo="$(basename "$PHOTO")" \
  --set megapixels="$(build/tools/imgmod-cli probe "$PHOTO" | sed -E 's/.*width=([0-9]+) height=([0-9]+).*/\1 \2/' | awk '{printf "%.1f", $1 * $2 / 1e6}')" \
  --tsv summary="$WORK/summary.tsv" --tsv threads="$WORK/threads.tsv" --tsv stages="$WORK/stages.tsv"
echo "wrote bench/results/lone.json"
