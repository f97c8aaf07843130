-- The CDN's side in SQL: nodes report their caches through cdn_report()
-- (imgmod_cdn), imgmod.cdn_capacity tells a DBA how full each is,
-- imgmod.storage_usage how much there is to hold, and url()/srcset() give
-- applications the CDN's URLs.
\getenv abs_srcdir PG_ABS_SRCDIR
\set fx :abs_srcdir '/test/fixtures/'
SET client_min_messages = warning;
\set VERBOSITY terse

-- The origin's role: reads what it serves, reports its cache, nothing else.
CREATE ROLE imgmod_test_origin LOGIN IN ROLE imgmod_cdn;
SELECT c.relname,
       has_table_privilege('imgmod_test_origin', c.oid, 'SELECT') AS reads,
       has_table_privilege('imgmod_test_origin', c.oid, 'INSERT')
         OR has_table_privilege('imgmod_test_origin', c.oid, 'UPDATE') AS writes
  FROM pg_class c
 WHERE c.relnamespace = 'imgmod'::regnamespace AND c.relkind IN ('r', 'v')
   AND has_table_privilege('imgmod_test_origin', c.oid, 'SELECT')
 ORDER BY 1;
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'imgmod'::regnamespace AND has_function_privilege('imgmod_test_origin', p.oid, 'EXECUTE')
 ORDER BY 1;

SET ROLE imgmod_test_origin;
SELECT imgmod.cdn_report('origin-a', 'origin-memory', 1000, 100, 3, 10, 5, 0);
SELECT imgmod.cdn_report('origin-b', 'origin-memory', 1000, 950, 30, 10, 90, 0);
SELECT imgmod.cdn_report('origin-c', 'origin-memory', 1000, 990, 40, 1, 99, 7);
SELECT imgmod.cdn_report('origin-d', 'origin-memory', 1000, 10, 1, 0, 1, 0, '1 s');
SELECT imgmod.cdn_report('origin-a', 'origin-memory', 1000, -1, 3, 10, 5, 0);
SELECT imgmod.cdn_report('bad node/..', 'origin-memory', 1000, 1, 1, 1, 1, 0);
SELECT imgmod.cdn_report('origin-a', 'browser', 1000, 1, 1, 1, 1, 0);
SELECT * FROM imgmod.cdn_capacity;
SELECT imgmod.upload('\xffd8ff'::bytea);
RESET ROLE;

-- The second report of origin-c evicted more: full.  origin-d's reports
-- stopped three intervals ago: stale.
SET ROLE imgmod_test_origin;
SELECT imgmod.cdn_report('origin-c', 'origin-memory', 1000, 990, 40, 1, 120, 9);
RESET ROLE;
UPDATE imgmod.cdn_nodes SET reported_at = now() - interval '4 s' WHERE node = 'origin-d';
SELECT node, tier, capacity_bytes, used_bytes, used_ratio, items, hit_ratio, evictions, state
  FROM imgmod.cdn_capacity ORDER BY node;
-- A node that restarted counts evictions from zero again: not full.
SELECT imgmod.cdn_report('origin-c', 'origin-memory', 1000, 10, 1, 0, 0, 0);
SELECT node, state FROM imgmod.cdn_capacity WHERE node = 'origin-c';
-- The threshold is a setting.
SET imgmod.cdn_capacity_warn = 0.99;
SELECT node, state FROM imgmod.cdn_capacity WHERE node = 'origin-b';
RESET imgmod.cdn_capacity_warn;

-- What there is to hold, per store and preset.
SELECT imgmod.upload(pg_read_binary_file(:'fx' || 'formats/jpeg_progressive_420.jpg'), 'cdn.jpg') AS id \gset
SELECT imgmod.wait(:id);
SELECT store, kind, preset, objects > 0 AS has_objects, bytes > 0 AS has_bytes FROM imgmod.storage_usage
 WHERE preset IS NULL OR preset IN ('large', 'medium', 'small', 'thumb') ORDER BY 1, 2, 3;
SELECT (SELECT sum(bytes) FROM imgmod.storage_usage WHERE kind = 'variant')
     = (SELECT sum(bytes) FROM imgmod.variants) AS variant_bytes_match;

-- URLs for applications.
SELECT imgmod.url(:id, 'thumb');
SET imgmod.cdn_base_url = 'https://img.example.com/';
SELECT replace(imgmod.url(:id, 'thumb'), :'id', '<id>') AS versioned;
SELECT replace(imgmod.url(:id, 'thumb', false), :'id', '<id>') AS current;
SELECT replace(imgmod.srcset(:id), :'id', '<id>') AS srcset;
SELECT imgmod.url(:id, 'nonesuch');
SELECT imgmod.url(-1, 'thumb');
CREATE ROLE imgmod_test_shop LOGIN IN ROLE imgmod_app;
SET ROLE imgmod_test_shop;
SELECT imgmod.url(:id, 'small') LIKE 'https://img.example.com/i/%/v1/small.jpg' AS app_gets_url;
SELECT imgmod.cdn_report('x', 'edge', 1, 1, 1, 1, 1, 1);
SELECT count(*) FROM imgmod.cdn_capacity;
RESET ROLE;
SELECT imgmod.delete(:id);
SELECT imgmod.url(:id, 'thumb');
RESET imgmod.cdn_base_url;

DELETE FROM imgmod.cdn_nodes;
DROP ROLE imgmod_test_origin, imgmod_test_shop;
