-- Failed render jobs are retried with backoff, go dead after
-- imgmod.max_attempts, and imgmod.retry() brings them back.
\getenv abs_srcdir PG_ABS_SRCDIR
\set fx :abs_srcdir '/test/fixtures/'

SHOW imgmod.max_attempts;

-- Register an image, then damage its staged master before a worker can
-- take it (the job is created in the same transaction, so it cannot).
BEGIN;
SELECT imgmod.upload(pg_read_binary_file(:'fx' || 'formats/jpeg_gray.jpg'), 'damaged.jpg') AS id \gset
UPDATE imgmod.image_versions SET staged = '\x0001020304'::bytea WHERE image_id = :id;
COMMIT;

CREATE FUNCTION pg_temp.wait_for(p_id bigint, p_status text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE deadline timestamptz := clock_timestamp() + interval '60 s'; s text;
BEGIN
    LOOP
        SELECT status INTO s FROM imgmod.images WHERE id = p_id;
        EXIT WHEN s = p_status OR clock_timestamp() > deadline;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN s;
END $$;
SELECT pg_temp.wait_for(:id, 'dead');
SELECT state, attempts, last_error FROM imgmod.jobs WHERE image_id = :id;
SELECT status, attempt, error FROM imgmod.events WHERE image_id = :id ORDER BY id;
SELECT job_id > 0 AS listed, state, why FROM imgmod.queue WHERE image_id = :id;

-- Repair the staged bytes and retry: it completes.
UPDATE imgmod.image_versions SET staged = pg_read_binary_file(:'fx' || 'formats/jpeg_gray.jpg') WHERE image_id = :id;
SELECT imgmod.retry(:id);
SELECT imgmod.wait(:id, '60 s');
SELECT status, current_version, last_error FROM imgmod.images WHERE id = :id;
SELECT state, attempts FROM imgmod.jobs WHERE image_id = :id;
SELECT preset, width, height FROM imgmod.variants WHERE image_id = :id ORDER BY preset;
SELECT count(*) AS unfinished FROM imgmod.queue WHERE image_id = :id;
SELECT imgmod.retry(-5);

-- A preset whose output cannot be allocated: 10000 wide, height free,
-- upscaling allowed, on a 2x20000 image asks for 10000x100000000.  The
-- render refuses it from the plan, before decoding, naming the preset and
-- the size; the job fails (no variant of that version is stored) and, the
-- refusal being the same every time, ends dead after imgmod.max_attempts.
-- The thin image is a new version of the image above (a new image would
-- shift the ids the later files print); version 1 stays the one served.
INSERT INTO imgmod.presets (name, width, height, allow_upscale) VALUES ('wide', 10000, NULL, true);
SELECT imgmod.replace(:id, pg_read_binary_file(:'fx' || 'formats/png_2x20000.png'), 'thin.png') AS thin_version \gset
CREATE FUNCTION pg_temp.wait_for_job(p_id bigint, p_version int, p_state text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE deadline timestamptz := clock_timestamp() + interval '60 s'; s text;
BEGIN
    LOOP
        SELECT state INTO s FROM imgmod.jobs WHERE image_id = p_id AND version = p_version AND kind = 'render';
        EXIT WHEN s = p_state OR clock_timestamp() > deadline;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN s;
END $$;
SELECT pg_temp.wait_for_job(:id, :thin_version, 'dead');
SELECT attempts, regexp_replace(last_error, 'image \d+', 'image N') AS last_error
  FROM imgmod.jobs WHERE image_id = :id AND version = :thin_version;
SELECT count(*) AS thin_variants FROM imgmod.variants WHERE image_id = :id AND version = :thin_version;
SELECT current_version FROM imgmod.images WHERE id = :id;
DELETE FROM imgmod.presets WHERE name = 'wide';
