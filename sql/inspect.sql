-- imgmod.inspect(): what a file is and what upload() would say, stored nowhere.
\getenv abs_srcdir PG_ABS_SRCDIR
\set fx :abs_srcdir '/test/fixtures/'
SELECT count(*) AS images_before FROM imgmod.images \gset

SELECT jsonb_pretty(imgmod.inspect(pg_read_binary_file(:'fx' || 'exif/rich_metadata_littleendian.jpg')) - 'sha256');
SELECT jsonb_pretty(imgmod.inspect(pg_read_binary_file(:'fx' || 'formats/jpeg_progressive_420.jpg')) - 'sha256');
SELECT jsonb_pretty(imgmod.inspect(pg_read_binary_file(:'fx' || 'bad/truncated_half_baseline.jpg')) - 'sha256');
SELECT jsonb_pretty(imgmod.inspect(pg_read_binary_file(:'fx' || 'bad/svg_xxe_named.png')) - 'sha256');
SELECT imgmod.inspect('\x'::bytea) ->> 'verdict' AS verdict, imgmod.inspect('\x'::bytea) ->> 'reason' AS reason;

-- Short summaries of the other formats and of hostile files.
SELECT f AS file, j->>'format' AS format, j->>'width' AS width, j->>'height' AS height,
       j->>'orientation' AS orientation, j->>'verdict' AS verdict, j->>'reason' AS reason,
       j->'normalised'->>'method' AS method
  FROM unnest(ARRAY['formats/jpeg_gray.jpg', 'formats/jpeg_cmyk_ycck_adobe.jpg', 'formats/jpeg_arithmetic_420.jpg',
                    'exif/icc_adobergb.jpg', 'formats/webp_lossy.webp', 'formats/heic_x265.heic', 'formats/avif_aom.avif',
                    'bad/exif_orientation_9.jpg', 'bad/exif_absurd_dims.jpg', 'bad/exif_malformed_ifd.jpg',
                    'bad/exif_ifd_count_overflow.jpg', 'bad/polyglot_jpeg_zip.jpg', 'bad/polyglot_gif_js.gif',
                    'bad/jpeg_scan_bomb_4000scans.jpg', 'bad/pixel_flood_65000x65000.png']) AS f,
       LATERAL imgmod.inspect(pg_read_binary_file(:'fx' || f)) AS j
 ORDER BY f;

-- inspect() stores nothing and audits nothing.
SELECT count(*) = :images_before AS nothing_stored FROM imgmod.images;
