-- The claimed file name and content type: capped in length with a clear
-- error, and cut on a character boundary in the audit rows, which must stay
-- valid text.
\getenv abs_srcdir PG_ABS_SRCDIR
\set jpeg_path :abs_srcdir '/test/fixtures/formats/jpeg_gray.jpg'
SELECT set_config('imgmod_test.jpeg', :'jpeg_path', false) IS NOT NULL AS fixture_set;

CREATE FUNCTION pg_temp.try(call text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE result text;
BEGIN
    EXECUTE call INTO result;
    RETURN 'accepted';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
CREATE FUNCTION pg_temp.jpeg() RETURNS bytea LANGUAGE sql AS
$$ SELECT pg_read_binary_file(current_setting('imgmod_test.jpeg')) $$;

-- 1024 bytes of name (512 two-byte characters) and 255 of type are accepted,
-- one byte more is not.
SELECT pg_temp.try(format('SELECT imgmod.upload(pg_temp.jpeg(), %L)', repeat('é', 512))) AS name_1024;
SELECT pg_temp.try(format('SELECT imgmod.upload(pg_temp.jpeg(), %L)', repeat('é', 512) || 'x')) AS name_1025;
SELECT pg_temp.try(format('SELECT imgmod.upload(pg_temp.jpeg(), %L, %L)', 'a.jpg', 'image/jpeg' || repeat(' ', 245))) AS type_255;
SELECT pg_temp.try(format('SELECT imgmod.upload(pg_temp.jpeg(), %L, %L)', 'a.jpg', 'image/jpeg' || repeat(' ', 246))) AS type_256;
SELECT id AS long_named FROM imgmod.images WHERE original_name = repeat('é', 512) \gset
SELECT pg_temp.try(format('SELECT imgmod.replace(%s, pg_temp.jpeg(), %L)', :long_named, repeat('x', 100000))) AS replace_name_100000;
SELECT count(*) AS versions FROM imgmod.image_versions WHERE image_id = :long_named;

-- A refused upload whose claimed name and type are longer than the audit
-- keeps (255 and 127 bytes): cut before the character that does not fit.
SELECT pg_temp.try(format('SELECT imgmod.upload(%L::bytea, %L, %L)', '\x0102030405060708090a',
                          repeat('é', 200), repeat('ü', 100))) AS refused;
\set wait_for_audit :abs_srcdir '/sql/include/wait_for_audit.sql'
\i :wait_for_audit
SELECT reason, octet_length(claimed_name) AS name_bytes, claimed_name = repeat('é', 127) AS name_whole_chars,
       octet_length(claimed_type) AS type_bytes, claimed_type = repeat('ü', 63) AS type_whole_chars,
       octet_length(convert_to(claimed_name || claimed_type, 'UTF8')) AS valid_utf8_bytes
  FROM imgmod.rejections WHERE bytes = 10 AND claimed_type LIKE 'ü%';
