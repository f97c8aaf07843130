-- imgmod.edit(), imgmod.revert() and imgmod.history(): new versions made
-- from an existing one.  Every mistake is refused in the call, naming the
-- op and the reason, and leaves nothing behind; the worker does the pixels.
\getenv abs_srcdir PG_ABS_SRCDIR
\set fx :abs_srcdir '/test/fixtures/'
\set VERBOSITY terse

SELECT imgmod.upload(pg_read_binary_file(:'fx' || 'formats/jpeg_progressive_420.jpg'), 'flower.jpg') AS id \gset
SELECT imgmod.wait(:id, '60 s');
SELECT width, height FROM imgmod.image_versions WHERE image_id = :id AND version = 1 \gset base_

-- Refused: the shape of ops.
SELECT imgmod.edit(:id, NULL);
SELECT imgmod.edit(:id, '{"op": "rotate", "degrees": 90}');
SELECT imgmod.edit(:id, '[]');
SELECT imgmod.edit(:id, '"rotate"');
SELECT imgmod.edit(:id, '[1]');
SELECT imgmod.edit(:id, '[{"degrees": 90}]');
SELECT imgmod.edit(:id, '[{"op": "spin"}]');
SELECT imgmod.edit(:id, '[{"op": 7}]');
SELECT imgmod.edit(:id, '[{"op": "rotate", "degrees": 90}, {"op": "rotate", "degrees": 45}]');
SELECT imgmod.edit(:id, '[{"op": "rotate", "degrees": "90"}]');
SELECT imgmod.edit(:id, '[{"op": "rotate", "degrees": 90, "about": "centre"}]');
SELECT imgmod.edit(:id, '[{"op": "rotate", "degrees": 1e400}]');
SELECT imgmod.edit(:id, '[{"op": "flip", "axis": "diagonal"}]');
SELECT imgmod.edit(:id, '[{"op": "flip"}]');
SELECT imgmod.edit(:id, '[{"op": "crop", "x": 0, "y": 0, "width": 10}]');
SELECT imgmod.edit(:id, '[{"op": "crop", "x": 0, "y": 0, "width": 10, "height": 10, "unit": "cm"}]');
SELECT imgmod.edit(:id, '[{"op": "pad", "aspect": "square"}]');
SELECT imgmod.edit(:id, '[{"op": "pad", "aspect": "0:1"}]');
SELECT imgmod.edit(:id, '[{"op": "pad", "aspect": "1:1", "background": "red"}]');
SELECT imgmod.edit(:id, '[{"op": "focus", "x": 0.5}]');
SELECT imgmod.edit(:id, (SELECT jsonb_agg('{"op": "flip", "axis": "vertical"}'::jsonb) FROM generate_series(1, 17)));

-- Refused: against the base version's size and the limits.
SELECT imgmod.edit(:id, format('[{"op": "crop", "x": %s, "y": 0, "width": 10, "height": 10}]', :base_width)::jsonb);
SELECT imgmod.edit(:id, '[{"op": "crop", "x": 0, "y": 0, "width": 0, "height": 10}]');
SELECT imgmod.edit(:id, '[{"op": "crop", "x": -1, "y": 0, "width": 10, "height": 10}]');
SELECT imgmod.edit(:id, '[{"op": "crop", "x": 0.5, "y": 0.5, "width": 0.6, "height": 0.1, "unit": "ratio"}]');
SELECT imgmod.edit(:id, '[{"op": "rotate", "degrees": 90}, {"op": "crop", "x": 0, "y": 0, "width": 10, "height": 10}, {"op": "crop", "x": 5, "y": 5, "width": 10, "height": 10}]');
SELECT imgmod.edit(:id, '[{"op": "focus", "x": 2, "y": 0.5, "unit": "ratio"}]');
SET imgmod.max_side = 600;
SELECT imgmod.edit(:id, '[{"op": "pad", "aspect": "10:1"}]');
RESET imgmod.max_side;
-- Refused: the image and the base version.
SELECT imgmod.edit(-1, '[{"op": "rotate", "degrees": 90}]');
SELECT imgmod.edit(:id, '[{"op": "rotate", "degrees": 90}]', 7);
SELECT imgmod.edit(:id, '[{"op": "rotate", "degrees": 90}]', 0);
SELECT imgmod.revert(:id, 9);
-- Nothing was written by any of them, nor by a rolled-back edit.
BEGIN;
SELECT imgmod.edit(:id, '[{"op": "rotate", "degrees": 90}]');
ROLLBACK;
SELECT count(*) AS versions, (SELECT count(*) FROM imgmod.jobs WHERE image_id = :id) AS jobs
  FROM imgmod.image_versions WHERE image_id = :id;

-- Accepted: a rotate, then a crop in ratios of the rotated picture, then
-- an undo of both.
SELECT imgmod.edit(:id, '[{"op": "rotate", "degrees": 90}]') AS v2;
SELECT imgmod.wait(:id, '60 s');
SELECT version, width = :base_height AND height = :base_width AS sides_swapped, master_method
  FROM imgmod.image_versions WHERE image_id = :id AND version = 2;
SELECT imgmod.edit(:id, '[{"op": "crop", "x": 0, "y": 0, "width": 0.5, "height": 0.5, "unit": "ratio"}, {"op": "focus", "x": 0.25, "y": 0.75, "unit": "ratio"}]') AS v3;
SELECT imgmod.wait(:id, '60 s');
SELECT width * 2 BETWEEN :base_height - 1 AND :base_height + 1 AS half_width, focus_x, focus_y
  FROM imgmod.image_versions WHERE image_id = :id AND version = 3;
SELECT imgmod.revert(:id, 1) AS v4;
SELECT imgmod.wait(:id, '60 s');
SELECT v4.master_sha256 = v1.master_sha256 AS same_master, v4.width = v1.width AS same_width
  FROM imgmod.image_versions v4, imgmod.image_versions v1
 WHERE v4.image_id = :id AND v4.version = 4 AND v1.image_id = :id AND v1.version = 1;
SELECT version, status, current, origin, base_version, ops, master_method IS NOT NULL AS has_method
  FROM imgmod.history(:id);
-- A deleted image cannot be edited or reverted.
SELECT imgmod.delete(:id);
SELECT imgmod.edit(:id, '[{"op": "rotate", "degrees": 90}]');
SELECT imgmod.revert(:id, 1);

-- Who may: the application edits, reverts and reads the history; nobody else.
CREATE ROLE imgmod_test_editor LOGIN IN ROLE imgmod_app;
CREATE ROLE imgmod_test_stranger LOGIN;
GRANT USAGE ON SCHEMA imgmod TO imgmod_test_stranger;
SELECT r.rolname, p.proname, has_function_privilege(r.rolname, p.oid, 'EXECUTE') AS may
  FROM pg_proc p, pg_roles r
 WHERE p.pronamespace = 'imgmod'::regnamespace AND p.proname IN ('edit', 'revert', 'history')
   AND r.rolname IN ('imgmod_test_editor', 'imgmod_test_stranger', 'imgmod_cdn')
 ORDER BY 1, 2;
SET ROLE imgmod_test_stranger;
SELECT imgmod.edit(1, '[{"op": "rotate", "degrees": 90}]');
SELECT * FROM imgmod.history(1);
RESET ROLE;
REVOKE USAGE ON SCHEMA imgmod FROM imgmod_test_stranger;
DROP ROLE imgmod_test_editor, imgmod_test_stranger;
