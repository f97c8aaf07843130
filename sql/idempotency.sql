-- Idempotency keys: a retry of upload() or replace() with the key of a call
-- that committed returns that call's result and registers nothing; the
-- same key with another request is refused; a rolled-back call leaves no
-- key; keys belong to the calling role.
\getenv abs_srcdir PG_ABS_SRCDIR
\set fx :abs_srcdir '/test/fixtures/'
SET client_min_messages = warning;
CREATE TEMP TABLE fixture AS
  SELECT pg_read_binary_file(:'fx' || 'formats/jpeg_progressive_420.jpg') AS a,
         pg_read_binary_file(:'fx' || 'formats/webp_lossy.webp') AS b;

SELECT imgmod.upload(a, 'shoe.jpg', NULL, 'order-17/photo-1') AS first FROM fixture \gset
SELECT imgmod.upload(a, 'shoe.jpg', NULL, 'order-17/photo-1') = :first AS same_id FROM fixture;
-- A retry may differ in its claims, not in its bytes.
SELECT imgmod.upload(a, 'renamed.jpg', 'image/jpeg', 'order-17/photo-1') = :first AS same_id_other_name FROM fixture;
SELECT count(*) AS images, count(*) FILTER (WHERE original_name = 'shoe.jpg') AS named_shoe
  FROM imgmod.images WHERE id >= :first;
SELECT count(*) AS received_events FROM imgmod.events WHERE image_id = :first AND status = 'received';
SELECT operation, image_id = :first AS image, version, char_length(request_sha256) AS sha_len
  FROM imgmod.idempotency_keys WHERE key = 'order-17/photo-1';

-- The same key with other bytes, or for another function, is refused.
\set VERBOSITY default
CREATE FUNCTION pg_temp.refusal(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE p_sql;
    RETURN 'accepted';
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC', '<time>');
END
$$;
SELECT pg_temp.refusal($$SELECT imgmod.upload(b, 'other.webp', NULL, 'order-17/photo-1') FROM fixture$$) AS other_bytes;
SELECT pg_temp.refusal(format('SELECT imgmod.replace(%s, a, %L, NULL, %L) FROM fixture', :first, 'shoe.jpg', 'order-17/photo-1')) AS other_function;

-- Keys have 1 to 200 characters.
SELECT imgmod.upload(a, 'k.jpg', NULL, '') FROM fixture;
SELECT imgmod.upload(a, 'k.jpg', NULL, repeat('ü', 201)) FROM fixture;
SELECT imgmod.upload(a, 'k.jpg', NULL, repeat('ü', 200)) > 0 AS two_hundred_characters_accepted FROM fixture;

-- replace() with a key: the retry returns the version it registered.
SELECT imgmod.replace(:first, b, 'shoe-v2.webp', NULL, 'order-17/photo-1-v2') AS v2 FROM fixture \gset
SELECT imgmod.replace(:first, b, 'shoe-v2.webp', NULL, 'order-17/photo-1-v2') = :v2 AS same_version FROM fixture;
SELECT count(*) AS versions FROM imgmod.image_versions WHERE image_id = :first;

-- A rolled-back call leaves no key: the next call with it registers anew.
BEGIN;
SELECT imgmod.upload(a, 'rolled.jpg', NULL, 'order-18') > 0 AS uploaded FROM fixture;
ROLLBACK;
SELECT count(*) AS keys_after_rollback FROM imgmod.idempotency_keys WHERE key = 'order-18';
-- A refused upload leaves no key either.
SELECT imgmod.upload('\x00010203'::bytea, 'junk.jpg', NULL, 'order-19');
SELECT count(*) AS keys_after_refusal FROM imgmod.idempotency_keys WHERE key = 'order-19';

-- Keys belong to the calling role: another application's 'order-17/photo-1'
-- is its own.
CREATE ROLE imgmod_test_other LOGIN IN ROLE imgmod_app;
GRANT SELECT ON fixture TO imgmod_test_other;
SET ROLE imgmod_test_other;
SELECT imgmod.upload(a, 'theirs.jpg', NULL, 'order-17/photo-1') <> :first AS own_image FROM fixture;
RESET ROLE;
SELECT role_name, key FROM imgmod.idempotency_keys WHERE key = 'order-17/photo-1' ORDER BY 1;

DROP TABLE fixture;
DROP OWNED BY imgmod_test_other;
DROP ROLE imgmod_test_other;
