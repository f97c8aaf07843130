-- Every rejection reason raises its own SQLSTATE with a message naming the
-- reason, and is audited in imgmod.rejections even though the upload's
-- transaction rolls back.
\getenv abs_srcdir PG_ABS_SRCDIR
\set fx :abs_srcdir '/test/fixtures/'

CREATE FUNCTION pg_temp.try_upload(data bytea, name text DEFAULT NULL, ctype text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM imgmod.upload(data, name, ctype);
    RETURN 'accepted';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
CREATE FUNCTION pg_temp.file(name text) RETURNS bytea LANGUAGE sql AS
$$ SELECT pg_read_binary_file(current_setting('imgmod_test.fx') || name) $$;
SELECT set_config('imgmod_test.fx', :'fx', false) IS NOT NULL AS fixtures_set;

-- The audit queue has room.
SELECT capacity, dropped FROM imgmod.audit_queue();

-- wrong type or nothing at all: refused by magic number, before any decoder
SELECT pg_temp.try_upload('\x'::bytea, 'empty.jpg');
SELECT pg_temp.try_upload(pg_temp.file('bad/text_named.jpg'), 'text_named.jpg');
SELECT pg_temp.try_upload(pg_temp.file('bad/html_script_named.jpg'), 'html_script_named.jpg');
SELECT pg_temp.try_upload('\x7f454c46020101000000000000000000'::bytea, 'elf_named.jpg');
SELECT pg_temp.try_upload(pg_temp.file('bad/pdf_named.png'), 'pdf_named.png');
SELECT pg_temp.try_upload(pg_temp.file('bad/zip_named.png'), 'zip_named.png');
SELECT pg_temp.try_upload(pg_temp.file('bad/svg_xxe.svg'), 'svg_xxe.svg');
SELECT pg_temp.try_upload(pg_temp.file('bad/svg_xxe_named.png'), 'svg_xxe_named.png');
SELECT pg_temp.try_upload(pg_temp.file('bad/svg_billion_laughs.svg'));
SELECT pg_temp.try_upload(pg_temp.file('bad/svg_local_href.svg'));
SELECT pg_temp.try_upload(pg_temp.file('formats/jxl.jxl'), 'x.jxl');
SELECT pg_temp.try_upload(pg_temp.file('formats/jp2.jp2'), 'x.jp2');
SELECT pg_temp.try_upload('\x0102030405060708090a'::bytea, 'noise.bin');

-- damaged: truncation and corruption are errors, never grey-filled images
SELECT pg_temp.try_upload(pg_temp.file('bad/truncated_half_baseline.jpg'));
SELECT pg_temp.try_upload(pg_temp.file('bad/truncated_half_progressive.jpg'));
SELECT pg_temp.try_upload(pg_temp.file('bad/truncated_after_sos_header.jpg'));
SELECT pg_temp.try_upload(pg_temp.file('bad/missing_eoi.jpg'));
SELECT pg_temp.try_upload(pg_temp.file('bad/jpeg_header_then_garbage.jpg'));
SELECT pg_temp.try_upload(pg_temp.file('bad/jpeg_soi_eoi_only.jpg'));
SELECT pg_temp.try_upload(pg_temp.file('bad/truncated_mid_idat.png'));
SELECT pg_temp.try_upload(pg_temp.file('bad/truncated_after_ihdr.png'));
SELECT pg_temp.try_upload(pg_temp.file('bad/webp_truncated.webp'));

-- header lies: rejected from the header, before any allocation
SELECT pg_temp.try_upload(pg_temp.file('bad/pixel_flood_65000x65000.jpg'));
SELECT pg_temp.try_upload(pg_temp.file('bad/pixel_flood_65000x65000.png'));
SELECT pg_temp.try_upload(pg_temp.file('bad/pixel_flood_65535x65535.gif'));
SELECT pg_temp.try_upload(pg_temp.file('bad/bmp_huge_dims.bmp'));
SELECT pg_temp.try_upload(pg_temp.file('bad/jpeg_zero_height.jpg'));
SELECT pg_temp.try_upload(pg_temp.file('bad/png_zero_width.png'));
SELECT pg_temp.try_upload(pg_temp.file('bad/bomb_20000x20000_1bit.png'));
SELECT pg_temp.try_upload(pg_temp.file('bad/jpeg_scan_bomb_4000scans.jpg'));

-- limits are settings
SET imgmod.max_bytes = '10kB';
SELECT pg_temp.try_upload(pg_temp.file('formats/jpeg_gray.jpg'), 'big.jpg');
RESET imgmod.max_bytes;
SET imgmod.max_megapixels = 0.5;
SELECT pg_temp.try_upload(pg_temp.file('formats/jpeg_gray.jpg'), 'big.jpg');
RESET imgmod.max_megapixels;
SET imgmod.max_side = 1000;
SELECT pg_temp.try_upload(pg_temp.file('formats/jpeg_gray.jpg'), 'wide.jpg');
RESET imgmod.max_side;
SET imgmod.max_frames = 1;
-- a two-frame 1x1 GIF
SELECT pg_temp.try_upload('\x47494638396101000100800000000000ffffff2c00000000010001000002024401002c00000000010001000002024401003b'::bytea, 'anim.gif');
RESET imgmod.max_frames;
SET imgmod.max_metadata = '1kB';
SELECT pg_temp.try_upload(pg_temp.file('exif/rich_metadata_littleendian.jpg'), 'meta.jpg');
RESET imgmod.max_metadata;
SET imgmod.mismatch_policy = reject;
SELECT pg_temp.try_upload(pg_temp.file('formats/jpeg_gray.jpg'), 'photo.png');
SELECT pg_temp.try_upload(pg_temp.file('formats/jpeg_gray.jpg'), 'photo.jpg', 'image/webp');
RESET imgmod.mismatch_policy;

-- The whole message, hint included, for one reason.
\set VERBOSITY verbose
SELECT imgmod.upload(pg_temp.file('bad/truncated_half_baseline.jpg'), 'cut.jpg');
\set VERBOSITY default

-- An explicit rollback does not lose the audit row either.
BEGIN;
SELECT imgmod.upload('\x3c68746d6c3e'::bytea, 'rolled_back.jpg');
ROLLBACK;

-- Nothing was registered.
SELECT count(*) AS images FROM imgmod.images WHERE original_name IN ('empty.jpg', 'cut.jpg', 'rolled_back.jpg');

\set wait_for_audit :abs_srcdir '/sql/include/wait_for_audit.sql'
\i :wait_for_audit
SELECT queued, dropped FROM imgmod.audit_queue();
SELECT outcome, reason, sqlstate, claimed_name, detected_format, bytes,
       sha256 IS NOT NULL AS hashed, role_name, application_name, backend_pid = pg_backend_pid() AS this_backend
  FROM imgmod.rejections ORDER BY id;
SELECT reason, sqlstate, total FROM imgmod.rejection_stats WHERE total > 0 ORDER BY reason;
