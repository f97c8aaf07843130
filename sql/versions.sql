-- imgmod.replace(): a new version of an image, served once ready; the
-- superseded version's objects, variant rows and cache keys are purged
-- after imgmod.superseded_retention (here: brought forward by hand).
\getenv abs_srcdir PG_ABS_SRCDIR
\set fx :abs_srcdir '/test/fixtures/'

SHOW imgmod.superseded_retention;

SELECT imgmod.upload(pg_read_binary_file(:'fx' || 'formats/jpeg_gray.jpg'), 'shoe.jpg') AS id \gset
SELECT imgmod.wait(:id, '60 s');

-- Errors name the problem and change nothing.
SELECT imgmod.replace(-1, pg_read_binary_file(:'fx' || 'formats/webp_lossy.webp'));
SELECT imgmod.replace(:id, NULL);
SELECT imgmod.replace(:id, '\x3c7376673e'::bytea, 'shoe.svg');
BEGIN;
SELECT imgmod.replace(:id, pg_read_binary_file(:'fx' || 'formats/webp_lossy.webp'), 'shoe.webp');
ROLLBACK;
SELECT status, current_version, detected_format FROM imgmod.images WHERE id = :id;
SELECT version, status, origin FROM imgmod.image_versions WHERE image_id = :id ORDER BY version;

-- The replacement: version 2; version 1 is served until 2 is ready.
SELECT sum(requests) FILTER (WHERE store = 'main' AND verb = 'DELETE') AS main_deletes_before,
       sum(requests) FILTER (WHERE store = 'hires' AND verb = 'DELETE') AS hires_deletes_before
  FROM imgmod.stats \gset
SELECT imgmod.replace(:id, pg_read_binary_file(:'fx' || 'formats/webp_lossy.webp'), 'shoe.webp', 'image/webp') AS version;
SELECT imgmod.wait(:id, '60 s');
SELECT status, current_version, detected_format, original_name FROM imgmod.images WHERE id = :id;
SELECT version, status, origin, superseded_at IS NOT NULL AS superseded, purged_at IS NOT NULL AS purged
  FROM imgmod.image_versions WHERE image_id = :id ORDER BY version;
SELECT version, count(*) AS variants FROM imgmod.variants WHERE image_id = :id GROUP BY version ORDER BY version;
-- The current variant is version 2's (the etag is the MD5 of the bytes).
SELECT format('"%s"', md5(imgmod.fetch(:id, 'thumb'))) = etag AS current_is_v2
  FROM imgmod.variants WHERE image_id = :id AND version = 2 AND preset = 'thumb';
-- The two masters of the current version: 'original' from the hi-res store,
-- 'master' (the compressed one) from the main store.
SELECT md5(imgmod.fetch(:id, 'original')) = md5(pg_read_binary_file('imgmod/hires-store/' || hires_key)) AS original_is_hires_object,
       md5(imgmod.fetch(:id, 'master')) = md5(pg_read_binary_file('imgmod/store/' || master_key)) AS master_is_main_object,
       length(imgmod.fetch(:id, 'original', 1)) > 0 AS v1_original_still_there
  FROM imgmod.image_versions WHERE image_id = :id AND version = 2;
-- The full-resolution master is the normaliser's output, byte for byte:
-- its recorded digest is what caches and the hi-res store are checked against.
SELECT encode(sha256(imgmod.fetch(:id, 'original', v.version)), 'hex') = v.master_sha256 AS original_matches_digest
  FROM imgmod.image_versions v WHERE v.image_id = :id ORDER BY v.version;
\set VERBOSITY terse
INSERT INTO imgmod.presets (name, width) VALUES ('original', 100);
-- 'source' names the render source's Redis key.
INSERT INTO imgmod.presets (name, width) VALUES ('source', 100);
\set VERBOSITY default
-- Version 1 is still readable during the retention (pages may link to it).
SELECT length(imgmod.fetch(:id, 'thumb', 1)) > 0 AS v1_still_served;
-- Its purge waits for the retention, and the queue says so.
SELECT kind, version, state, next_attempt_at > now() + interval '23 hours' AS due_after_retention,
       why LIKE 'purge due at %imgmod.superseded_retention' AS why_explains
  FROM imgmod.queue WHERE image_id = :id;
SELECT status, stage, version, payload ? 'purge_at' AS has_purge_at
  FROM imgmod.events WHERE image_id = :id AND status IN ('superseded', 'purged') ORDER BY id;

-- Bring the purge forward: every object of version 1 goes from both stores.
SELECT object_key AS v1_thumb_key FROM imgmod.variants WHERE image_id = :id AND version = 1 AND preset = 'thumb' \gset
SELECT hires_key AS v1_hires_key FROM imgmod.image_versions WHERE image_id = :id AND version = 1 \gset
SELECT (pg_stat_file('imgmod/store/' || :'v1_thumb_key', true)).size > 0 AS v1_thumb_on_disk,
       (pg_stat_file('imgmod/hires-store/' || :'v1_hires_key', true)).size > 0 AS v1_hires_on_disk;
UPDATE imgmod.jobs SET next_attempt_at = now() WHERE image_id = :id AND kind = 'purge';
SELECT imgmod.wake_workers() > 0 AS woken;
CREATE FUNCTION pg_temp.wait_purged(p_id bigint, p_version int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE deadline timestamptz := clock_timestamp() + interval '60 s'; s text;
BEGIN
    LOOP
        SELECT status INTO s FROM imgmod.image_versions WHERE image_id = p_id AND version = p_version;
        EXIT WHEN s = 'purged' OR clock_timestamp() > deadline;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN s;
END $$;
SELECT pg_temp.wait_purged(:id, 1);
SELECT version, status, purged_at IS NOT NULL AS purged FROM imgmod.image_versions WHERE image_id = :id ORDER BY version;
SELECT version, count(*) AS variants FROM imgmod.variants WHERE image_id = :id GROUP BY version ORDER BY version;
SELECT pg_stat_file('imgmod/store/' || :'v1_thumb_key', true) IS NULL AS v1_thumb_gone,
       pg_stat_file('imgmod/hires-store/' || :'v1_hires_key', true) IS NULL AS v1_hires_gone;
SELECT sum(requests) FILTER (WHERE store = 'main' AND verb = 'DELETE') - :main_deletes_before AS main_deletes,
       sum(requests) FILTER (WHERE store = 'hires' AND verb = 'DELETE') - :hires_deletes_before AS hires_deletes
  FROM imgmod.stats;
SELECT status, stage, version, payload->'deleted' AS deleted
  FROM imgmod.events WHERE image_id = :id AND status = 'purged';
SELECT kind, version, state FROM imgmod.jobs WHERE image_id = :id ORDER BY id;
SELECT imgmod.fetch(:id, 'thumb', 1);
SELECT imgmod.fetch(:id, 'original', 1);
SELECT length(imgmod.fetch(:id, 'thumb')) > 0 AS v2_served;

-- imgmod.delete(): nothing is served any more; every version's objects,
-- variant rows and cache keys are purged at once (no retention).
SELECT imgmod.delete(-1);
BEGIN;
SELECT imgmod.delete(:id);
ROLLBACK;
SELECT status, current_version FROM imgmod.images WHERE id = :id;
SELECT object_key AS v2_thumb_key FROM imgmod.variants WHERE image_id = :id AND version = 2 AND preset = 'thumb' \gset
SELECT imgmod.delete(:id) AS versions_to_purge;
SELECT imgmod.wait(:id);
SELECT status, current_version FROM imgmod.images WHERE id = :id;
SELECT pg_temp.wait_purged(:id, 2);
SELECT version, status FROM imgmod.image_versions WHERE image_id = :id ORDER BY version;
SELECT count(*) AS variant_rows FROM imgmod.variants WHERE image_id = :id;
SELECT pg_stat_file('imgmod/store/' || :'v2_thumb_key', true) IS NULL AS v2_thumb_gone;
SELECT status, stage, version FROM imgmod.events WHERE image_id = :id AND status IN ('deleted', 'purged') ORDER BY id;
SELECT imgmod.fetch(:id, 'thumb');
SELECT imgmod.fetch(:id, 'original');
SELECT imgmod.replace(:id, pg_read_binary_file(:'fx' || 'formats/webp_lossy.webp'));
SELECT imgmod.delete(:id) AS again;

-- Deleted before its render ran: the render is cancelled, nothing is stored.
BEGIN;
SELECT imgmod.upload(pg_read_binary_file(:'fx' || 'formats/jpeg_gray.jpg'), 'gone.jpg') AS gone \gset
SELECT imgmod.delete(:gone) AS versions_to_purge;
COMMIT;
SELECT pg_temp.wait_purged(:gone, 1);
SELECT kind, state, last_error FROM imgmod.jobs WHERE image_id = :gone ORDER BY id;
SELECT hires_key IS NULL AS never_stored, status FROM imgmod.image_versions WHERE image_id = :gone;
SELECT status, stage FROM imgmod.events WHERE image_id = :gone ORDER BY id;
SELECT * FROM imgmod.status_counts WHERE status = 'deleted';
