#!/usr/bin/env bash
# A lone upload on an idle machine: the merchant who uploads one product
# photo and waits.  For a 20 MP photo (kleiber from the corpus, or the file
# given), N times one after the other on an otherwise idle cluster:
#   upload   the imgmod.upload() call (validate, normalise, INSERT), server time
#   ready    from the upload's commit to the version's ready event: what the
#            worker does (claim, decode once, compressed master and every
#            preset, store, register), from imgmod.events' own timestamps
# Prints the median and the minimum of each.
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

for i in $(seq 0 "$N"); do
  # run 0 warms the caches and is not counted
  id=$(psql -XqAt -c "SELECT imgmod.upload(pg_read_binary_file('$WORK/photo.jpg'), 'lone.jpg')")
  [ "$(psql -XqAt -c "SELECT imgmod.wait($id, '120 s')")" = ready ] || { echo "image $id did not become ready" >&2; exit 1; }
  [ "$i" = 0 ] && psql -XqAt -c "DELETE FROM imgmod.events WHERE image_id = $id" >/dev/null
done

psql -X -v ON_ERROR_STOP=1 <<'SQL'
\pset footer off
WITH upload AS (
    -- the upload's own time: images.created_at is the statement's start,
    -- the received event is written at its end
    SELECT i.id, extract(epoch FROM r.created_at - i.created_at) * 1000 AS ms
      FROM imgmod.images i JOIN imgmod.events r ON r.image_id = i.id AND r.status = 'received'),
ready AS (
    SELECT r.image_id AS id, extract(epoch FROM d.created_at - r.created_at) * 1000 AS ms
      FROM imgmod.events r JOIN imgmod.events d ON d.image_id = r.image_id AND d.status = 'ready'
     WHERE r.status = 'received')
SELECT 'upload() call' AS step, count(*) AS runs,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric) AS median_ms,
       round(min(ms)::numeric) AS min_ms FROM upload
UNION ALL
SELECT 'commit -> ready', count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric),
       round(min(ms)::numeric) FROM ready;
SQL
