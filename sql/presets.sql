-- imgmod.presets: the catalogue's sizes, editable, checked.
\getenv abs_srcdir PG_ABS_SRCDIR
\set fx :abs_srcdir '/test/fixtures/'

SELECT name, width, height, fit, quality, allow_upscale FROM imgmod.presets ORDER BY name;

-- Constraints say what is wrong.
\set VERBOSITY terse
INSERT INTO imgmod.presets (name, width) VALUES ('Big Banner', 1200);
INSERT INTO imgmod.presets (name) VALUES ('nosize');
INSERT INTO imgmod.presets (name, width, fit) VALUES ('stretch', 100, 'fill');
INSERT INTO imgmod.presets (name, width, quality) VALUES ('q0', 100, 0);
\set VERBOSITY default

-- A new preset is rendered for the next upload: cover crops to the box,
-- pad fills it, contain by height keeps the aspect, upscale only when asked.
INSERT INTO imgmod.presets (name, width, height, fit) VALUES ('square', 300, 300, 'cover');
INSERT INTO imgmod.presets (name, width, height, fit) VALUES ('banner', 800, 200, 'pad');
INSERT INTO imgmod.presets (name, height) VALUES ('tall', 100);
INSERT INTO imgmod.presets (name, width, allow_upscale) VALUES ('huge', 2400, true);
INSERT INTO imgmod.presets (name, width) VALUES ('nohuge', 2400);
SELECT imgmod.upload(pg_read_binary_file(:'fx' || 'formats/jpeg_progressive_420.jpg'), 'presets.jpg') AS id \gset
SELECT imgmod.wait(:id, '60 s');
SELECT preset, width, height FROM imgmod.variants WHERE image_id = :id ORDER BY preset;
DELETE FROM imgmod.presets WHERE name IN ('square', 'banner', 'tall', 'huge', 'nohuge');
