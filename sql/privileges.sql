-- Least privilege: nothing in schema imgmod is usable by PUBLIC; imgmod_app
-- may upload, fetch and wait; imgmod_admin may also delete, retry and read
-- the audit; internal tables are written only through SECURITY DEFINER
-- functions with a pinned search_path.
\getenv abs_srcdir PG_ABS_SRCDIR
\set fx :abs_srcdir '/test/fixtures/'
SET client_min_messages = warning;

-- The group roles exist, cannot log in, and admin includes app.
SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname LIKE 'imgmod\_%' ORDER BY 1;
SELECT pg_has_role('imgmod_admin', 'imgmod_app', 'MEMBER') AS admin_is_app;

-- No object of the schema grants anything to PUBLIC (a NULL ACL means the
-- built-in default, which for a function is EXECUTE to PUBLIC).
SELECT p.oid::regprocedure AS public_function
  FROM pg_proc p
 WHERE p.pronamespace = 'imgmod'::regnamespace
   AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0));
SELECT c.oid::regclass AS public_relation
  FROM pg_class c
 WHERE c.relnamespace = 'imgmod'::regnamespace AND c.relkind IN ('r', 'v', 'S')
   AND (c.relacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0));
SELECT has_schema_privilege('public', 'imgmod', 'USAGE') AS public_schema_usage;

-- Every PL/pgSQL, SQL and SECURITY DEFINER function pins its search_path.
SELECT p.oid::regprocedure AS unpinned_function
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'imgmod'::regnamespace
   AND (p.prosecdef OR l.lanname <> 'c')
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false);
-- The functions that write internal tables run as the owner.
SELECT p.proname, p.prosecdef
  FROM pg_proc p
 WHERE p.pronamespace = 'imgmod'::regnamespace AND p.proname IN ('upload', 'replace', 'delete', 'retry', 'fetch')
 ORDER BY 1;

-- The whole matrix, from the catalog: what each role may execute or read.
CREATE ROLE imgmod_test_nobody LOGIN;
CREATE ROLE imgmod_test_app LOGIN IN ROLE imgmod_app;
CREATE ROLE imgmod_test_admin LOGIN IN ROLE imgmod_admin;
SELECT p.proname,
       has_function_privilege('imgmod_test_nobody', p.oid, 'EXECUTE') AS nobody,
       has_function_privilege('imgmod_test_app', p.oid, 'EXECUTE') AS app,
       has_function_privilege('imgmod_test_admin', p.oid, 'EXECUTE') AS admin
  FROM pg_proc p
 WHERE p.pronamespace = 'imgmod'::regnamespace
 ORDER BY 1;
SELECT c.relname, c.relkind,
       has_table_privilege('imgmod_test_nobody', c.oid, 'SELECT') AS nobody_read,
       has_table_privilege('imgmod_test_app', c.oid, 'SELECT') AS app_read,
       has_table_privilege('imgmod_test_app', c.oid, 'INSERT')
         OR has_table_privilege('imgmod_test_app', c.oid, 'UPDATE')
         OR has_table_privilege('imgmod_test_app', c.oid, 'DELETE') AS app_write,
       has_table_privilege('imgmod_test_admin', c.oid, 'SELECT') AS admin_read,
       has_table_privilege('imgmod_test_admin', c.oid, 'INSERT')
         OR has_table_privilege('imgmod_test_admin', c.oid, 'UPDATE')
         OR has_table_privilege('imgmod_test_admin', c.oid, 'DELETE') AS admin_write
  FROM pg_class c
 WHERE c.relnamespace = 'imgmod'::regnamespace AND c.relkind IN ('r', 'v', 'S')
 ORDER BY 1;

-- And by calling them.  The fixture is read as superuser (pg_read_binary_file
-- is not for applications) and handed over in a table.
CREATE TEMP TABLE fixture AS
  SELECT pg_read_binary_file(:'fx' || 'formats/jpeg_progressive_420.jpg') AS bytes;
GRANT SELECT ON fixture TO imgmod_test_nobody, imgmod_test_app, imgmod_test_admin;

-- A role with nothing: refused at the schema, and refused by every object
-- even when it can see into the schema.
SET ROLE imgmod_test_nobody;
SELECT imgmod.upload(bytes, 'nobody.jpg') FROM fixture;
SELECT count(*) FROM imgmod.images;
RESET ROLE;
GRANT USAGE ON SCHEMA imgmod TO imgmod_test_nobody;
SET ROLE imgmod_test_nobody;
SELECT imgmod.upload(bytes, 'nobody.jpg') FROM fixture;
SELECT imgmod.inspect(bytes) FROM fixture;
SELECT imgmod.fetch(1, 'thumb');
SELECT imgmod.wait(1);
SELECT imgmod.delete(1);
SELECT imgmod.retry(1);
SELECT imgmod.wake_workers();
SELECT count(*) FROM imgmod.images;
SELECT count(*) FROM imgmod.variants;
SELECT count(*) FROM imgmod.rejections;
SELECT * FROM imgmod.queue;
INSERT INTO imgmod.jobs (image_id, version, kind) VALUES (1, 1, 'purge');
SELECT imgmod._emit(1, 1, 'ready', 'render', NULL, NULL);
SELECT nextval('imgmod.images_id_seq');
RESET ROLE;

-- The application: uploads, waits, fetches; may not delete, retry, read
-- the audit, queue jobs or forge events.
SET ROLE imgmod_test_app;
SELECT imgmod.upload(bytes, 'app.jpg') AS app_image FROM fixture \gset
SELECT (imgmod.inspect(bytes))->>'verdict' AS verdict FROM fixture;
RESET ROLE;
SET ROLE imgmod_test_app;
SELECT imgmod.wait(:app_image);
SELECT length(imgmod.fetch(:app_image, 'thumb')) > 0 AS fetched;
SELECT status, width, height FROM imgmod.images WHERE id = :app_image;
SELECT preset FROM imgmod.variants WHERE image_id = :app_image ORDER BY 1;
SELECT count(*) > 0 AS sees_events FROM imgmod.events WHERE image_id = :app_image;
SELECT imgmod.delete(:app_image);
SELECT imgmod.retry(:app_image);
SELECT count(*) FROM imgmod.rejections;
SELECT count(*) FROM imgmod.jobs;
SELECT * FROM imgmod.cache_stats;
SELECT * FROM imgmod.render_stats;
SELECT * FROM imgmod.render_counters();
INSERT INTO imgmod.jobs (image_id, version, kind) VALUES (:app_image, 1, 'purge');
INSERT INTO imgmod.events (image_id, status, payload) VALUES (:app_image, 'ready', '{}');
UPDATE imgmod.images SET status = 'dead' WHERE id = :app_image;
SELECT imgmod._emit(:app_image, 1, 'ready', 'render', NULL, NULL);
INSERT INTO imgmod.presets (name, width) VALUES ('app_preset', 100);
RESET ROLE;

-- A refusal by the application is audited under the application's role,
-- not the owner the function runs as.
SET ROLE imgmod_test_app;
SELECT imgmod.upload('\x00010203'::bytea, 'junk.jpg');
RESET ROLE;
SELECT imgmod.wake_workers() >= 0 AS woken;
DO $$
BEGIN
    FOR i IN 1 .. 500 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM imgmod.rejections WHERE claimed_name = 'junk.jpg');
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;
SELECT role_name, reason FROM imgmod.rejections WHERE claimed_name = 'junk.jpg';

-- Operators: delete, retry, the audit, the queue, the statistics, presets.
SET ROLE imgmod_test_admin;
SELECT imgmod.retry(:app_image);
SELECT count(*) >= 1 AS reads_rejections FROM imgmod.rejections;
SELECT count(*) >= 0 AS reads_queue FROM imgmod.queue;
SELECT count(*) > 0 AS reads_stats FROM imgmod.stats;
SELECT count(*) > 0 AS reads_cache_stats FROM imgmod.cache_stats;
SELECT count(*) = 8 AND sum(renders) >= 1 AS reads_render_stats FROM imgmod.render_stats;
SELECT count(*) > 0 AS reads_rejection_stats FROM imgmod.rejection_stats;
SELECT capacity > 0 AS reads_audit_queue FROM imgmod.audit_queue();
INSERT INTO imgmod.presets (name, width) VALUES ('admin_preset', 100);
DELETE FROM imgmod.presets WHERE name = 'admin_preset';
INSERT INTO imgmod.jobs (image_id, version, kind) VALUES (:app_image, 1, 'purge');
SELECT imgmod.delete(:app_image);
RESET ROLE;
SELECT status FROM imgmod.images WHERE id = :app_image;

DROP TABLE fixture;
REVOKE USAGE ON SCHEMA imgmod FROM imgmod_test_nobody;
DROP ROLE imgmod_test_nobody, imgmod_test_app, imgmod_test_admin;
