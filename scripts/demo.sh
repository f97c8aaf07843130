#!/usr/bin/env bash
# The embedded default, end to end, with no other service: installs what is
# needed, builds and installs imgmod, starts a throwaway PostgreSQL 15
# cluster with imgmod preloaded, uploads sample images (and one hostile
# file), and shows their status, variants and the audit of what was refused;
# then starts the CDN origin and fetches a variant over HTTP (200, then 304).
#
# The cluster keeps running afterwards so you can explore it:
#   eval "$(scripts/cluster.sh env)"; psql -d imgmod_demo
# and is removed with: scripts/cluster.sh destroy
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

bash scripts/install-deps.sh
make -s
make -s install >/dev/null

scripts/cluster.sh start imgmod_demo
eval "$(scripts/cluster.sh env)"
# The server reads the samples, so give it a copy it can open.
SAMPLES=/tmp/imgmod-demo-samples
rm -rf "$SAMPLES" && mkdir -p "$SAMPLES"
cp test/fixtures/formats/jpeg_progressive_420.jpg test/fixtures/formats/heic_x265.heic \
   test/fixtures/formats/webp_lossy_alpha.webp test/fixtures/exif/rich_metadata_littleendian.jpg \
   test/fixtures/bad/truncated_half_baseline.jpg test/fixtures/bad/svg_xxe_named.png "$SAMPLES/"
chmod -R a+rX "$SAMPLES"

psql -X -v ON_ERROR_STOP=1 -d imgmod_demo -v samples="$SAMPLES" <<'SQL'
\pset footer off
CREATE EXTENSION IF NOT EXISTS imgmod;

\echo
\echo '-- What is this file? (nothing stored)'
SELECT jsonb_pretty(imgmod.inspect(pg_read_binary_file(:'samples' || '/rich_metadata_littleendian.jpg'))
       - 'sha256' - 'icc');

\echo '-- Upload four images: one SQL call each, in the caller''s transaction'
SELECT imgmod.upload(pg_read_binary_file(:'samples' || '/jpeg_progressive_420.jpg'), 'IMG_2041.jpg') AS jpeg_id \gset
SELECT imgmod.upload(pg_read_binary_file(:'samples' || '/heic_x265.heic'), 'IMG_2042.HEIC') AS heic_id \gset
SELECT imgmod.upload(pg_read_binary_file(:'samples' || '/webp_lossy_alpha.webp'), 'logo.webp') AS webp_id \gset
SELECT imgmod.upload(pg_read_binary_file(:'samples' || '/rich_metadata_littleendian.jpg'), 'gps-tagged.jpg') AS exif_id \gset

\echo '-- Hostile input is refused with a stable SQLSTATE, and audited even though the transaction rolls back'
\set ON_ERROR_STOP 0
SELECT imgmod.upload(pg_read_binary_file(:'samples' || '/truncated_half_baseline.jpg'), 'cut.jpg');
SELECT imgmod.upload(pg_read_binary_file(:'samples' || '/svg_xxe_named.png'), 'logo.png');
\set ON_ERROR_STOP 1

\echo '-- Wait for the background workers'
SELECT id, imgmod.wait(id) AS status FROM imgmod.images ORDER BY id;

SELECT id, original_name, detected_format, source_width || 'x' || source_height AS source,
       width || 'x' || height AS upright, status, current_version, ready_at - created_at AS took
  FROM imgmod.images ORDER BY id;
SELECT image_id, version, preset, width, height, bytes, object_key FROM imgmod.variants ORDER BY image_id, preset;

\echo '-- What a CDN origin gets: the variant''s JPEG bytes'
SELECT length(imgmod.fetch(:jpeg_id, 'medium')) AS medium_bytes,
       encode(substring(imgmod.fetch(:jpeg_id, 'medium') from 1 for 4), 'hex') AS starts_with;

\echo '-- A new version: the logo replaced by the photo; version 1 is served until 2 is ready'
SELECT imgmod.replace(:webp_id, pg_read_binary_file(:'samples' || '/jpeg_progressive_420.jpg'), 'logo-v2.jpg') AS new_version;
SELECT imgmod.wait(:webp_id);
SELECT version, status, origin, superseded_at IS NOT NULL AS superseded FROM imgmod.image_versions
 WHERE image_id = :webp_id ORDER BY version;
\echo '-- Version 1''s objects stay for imgmod.superseded_retention, then a purge job deletes them:'
SELECT kind, version, why FROM imgmod.queue WHERE image_id = :webp_id;
\echo '-- Deleting an image purges every version at once'
SELECT imgmod.delete(:exif_id) AS versions_purged;
SELECT imgmod.wait(:exif_id);

\echo '-- Status events (also sent on LISTEN imgmod_status)'
SELECT image_id, status, stage, payload->>'at' AS at FROM imgmod.events ORDER BY id;

\echo '-- The audit of refused input'
DO $$ BEGIN
  -- the audit rows are written by a worker, after the rollback
  WHILE (SELECT queued FROM imgmod.audit_queue()) > 0 LOOP PERFORM pg_sleep(0.01); END LOOP;
END $$;
SELECT reason, sqlstate, claimed_name, detected_format, bytes, role_name FROM imgmod.rejections ORDER BY id;
SELECT * FROM imgmod.queue;
SQL

echo
echo "-- The CDN serves the variants over HTTP (scripts/cdn.sh): a Varnish edge in front of imgmod-origin"
export PGDATABASE=imgmod_demo
bash scripts/cdn.sh stop >/dev/null 2>&1 || true
bash scripts/cdn.sh start
eval "$(bash scripts/cdn.sh env)"
ID=$(psql -XqAt -c "SELECT min(image_id) FROM imgmod.variants v JOIN imgmod.images i ON i.id = v.image_id AND i.current_version = v.version")
ETAG=$(psql -XqAt -c "SELECT etag FROM imgmod.variants v JOIN imgmod.images i ON i.id = v.image_id AND i.current_version = v.version WHERE v.image_id = $ID AND v.preset = 'medium'")
echo "\$ curl -sS -D - -o /dev/null $IMGMOD_CDN_URL/i/$ID/medium.jpg"
curl -sS -D - -o /dev/null "$IMGMOD_CDN_URL/i/$ID/medium.jpg"
echo "\$ curl -sS -D - -o /dev/null $IMGMOD_CDN_URL/i/$ID/medium.jpg   # again: X-Cache: HIT at an edge"
curl -sS -D - -o /dev/null "$IMGMOD_CDN_URL/i/$ID/medium.jpg"
echo "\$ curl -sS -D - -o /dev/null -H 'If-None-Match: $ETAG' $IMGMOD_CDN_URL/i/$ID/medium.jpg"
curl -sS -D - -o /dev/null -H "If-None-Match: $ETAG" "$IMGMOD_CDN_URL/i/$ID/medium.jpg"
# the edge's reporter writes every 5 s
for _ in $(seq 100); do
  [ "$(psql -XqAt -c "SELECT count(*) FROM imgmod.cdn_capacity WHERE tier = 'edge' AND hits > 0")" != 0 ] && break
  sleep 0.1
done
psql -X -c "SELECT node, tier, used_bytes, items, hits, misses, state FROM imgmod.cdn_capacity"
psql -X -c "SELECT purge_url, sent, acknowledged, pending FROM imgmod.cdn_purge_status"

echo
echo "The demo cluster is still running: eval \"\$(scripts/cluster.sh env)\"; psql -d imgmod_demo"
echo "The CDN too: $IMGMOD_CDN_URL, the origin on $IMGMOD_ORIGIN_URL (scripts/cdn.sh stop)."
echo "Remove the cluster with: scripts/cluster.sh destroy"
