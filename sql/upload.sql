-- imgmod.upload(): a valid image is registered in the caller's transaction;
-- a rolled-back upload leaves nothing behind.
CREATE EXTENSION imgmod;
\getenv abs_srcdir PG_ABS_SRCDIR
\set fx :abs_srcdir '/test/fixtures/'

-- Every SQL object carries a comment.
SELECT c.relname AS uncommented_relation
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'imgmod' AND c.relkind IN ('r', 'v') AND obj_description(c.oid, 'pg_class') IS NULL;
SELECT p.proname AS uncommented_function
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'imgmod' AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT c.relname, a.attname AS uncommented_column
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'imgmod' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
   AND col_description(c.oid, a.attnum) IS NULL;

-- Rolled back: no image, version, job or event remains, and no NOTIFY arrives.
LISTEN imgmod_status;
BEGIN;
SELECT imgmod.upload(pg_read_binary_file(:'fx' || 'formats/jpeg_progressive_420.jpg'), 'rollback.jpg') > 0 AS uploaded;
SELECT count(*) AS images_inside FROM imgmod.images;
ROLLBACK;
SELECT (SELECT count(*) FROM imgmod.images) AS images,
       (SELECT count(*) FROM imgmod.image_versions) AS versions,
       (SELECT count(*) FROM imgmod.jobs) AS jobs,
       (SELECT count(*) FROM imgmod.events) AS events;
UNLISTEN imgmod_status;

-- Committed: one image, version 1 staged, one queued job, one 'received' event.
SELECT imgmod.upload(pg_read_binary_file(:'fx' || 'formats/jpeg_progressive_420.jpg'),
                     'IMG_2041.JPG', 'image/jpeg') AS id \gset
SELECT status IN ('received', 'processing', 'ready') AS registered, original_name, claimed_type,
       detected_format, type_mismatch, source_width, source_height, source_bytes,
       sha256 = encode(sha256(pg_read_binary_file(:'fx' || 'formats/jpeg_progressive_420.jpg')), 'hex') AS sha256_matches,
       width, height
  FROM imgmod.images WHERE id = :id;
SELECT version, width, height, master_method FROM imgmod.image_versions WHERE image_id = :id;
SELECT status, stage, payload->>'status' AS payload_status, (payload->>'image_id')::bigint = :id AS payload_image
  FROM imgmod.events WHERE image_id = :id AND status = 'received';

-- The workers render it after commit.
SELECT imgmod.wait(:id, '60 s');
SELECT status, current_version, last_error FROM imgmod.images WHERE id = :id;
SELECT preset, version, width, height, bytes > 0 AS has_bytes, object_key, etag ~ '^"[0-9a-f]{32}"$' AS etag_ok
  FROM imgmod.variants WHERE image_id = :id ORDER BY preset;
SELECT staged IS NULL AS staged_cleared, hires_key, master_key, status FROM imgmod.image_versions WHERE image_id = :id;
SELECT state, attempts FROM imgmod.jobs WHERE image_id = :id;
SELECT status, payload->'variants'->0->>'preset' AS first_variant FROM imgmod.events WHERE image_id = :id AND status = 'ready';

-- fetch() returns the variant's JPEG bytes, identical to what the row describes.
SELECT substring(imgmod.fetch(:id, 'medium') from 1 for 3) = '\xffd8ff'::bytea AS is_jpeg,
       length(imgmod.fetch(:id, 'medium')) = (SELECT bytes FROM imgmod.variants WHERE image_id = :id AND preset = 'medium') AS length_matches,
       '"' || md5(imgmod.fetch(:id, 'medium', 1)) || '"' = (SELECT etag FROM imgmod.variants WHERE image_id = :id AND preset = 'medium') AS etag_matches;
SELECT position('\xffe1'::bytea in imgmod.fetch(:id, 'large')) AS app1_marker_at,
       position('\xfffe'::bytea in imgmod.fetch(:id, 'large')) AS com_marker_at;

-- Errors name the problem and what to do.
SELECT imgmod.fetch(:id, 'poster');
SELECT imgmod.fetch(:id, 'medium', 7);
SELECT imgmod.fetch(-1, 'medium');
SELECT imgmod.wait(-1);
SELECT imgmod.upload(NULL);
BEGIN;
SELECT imgmod.upload(pg_read_binary_file(:'fx' || 'formats/jpeg_gray.jpg')) AS id2 \gset
SELECT imgmod.wait(:id2);
ROLLBACK;

-- A claimed type that disagrees with the bytes: accepted with a warning and recorded.
SELECT imgmod.upload(pg_read_binary_file(:'fx' || 'formats/jpeg_gray.jpg'), 'photo.png') AS mid \gset
SELECT type_mismatch, detected_format, original_name FROM imgmod.images WHERE id = :mid;
SELECT imgmod.wait(:mid, '60 s');

-- retry() on a ready image has nothing to re-queue.
SELECT imgmod.retry(:id);
SELECT * FROM imgmod.status_counts ORDER BY status;
