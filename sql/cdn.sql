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

-- The edge: Varnish's counters (varnishstat -j, 6.5+ nests them under
-- "counters"; older versions do not) become tier edge.  Transient storage
-- is not the cache's capacity.
SET ROLE imgmod_test_origin;
SELECT imgmod.cdn_report_varnish('edge-a', '{"version": 1, "timestamp": "2026-12-01T10:00:00", "counters": {
  "MAIN.n_object": {"description": "object structs made", "flag": "g", "format": "i", "value": 12},
  "MAIN.cache_hit": {"flag": "c", "value": 90}, "MAIN.cache_miss": {"flag": "c", "value": 10},
  "MAIN.n_lru_nuked": {"flag": "c", "value": 0},
  "SMA.imgmod.g_bytes": {"value": 3000000}, "SMA.imgmod.g_space": {"value": 1194304},
  "SMA.Transient.g_bytes": {"value": 777}, "SMA.Transient.g_space": {"value": 0}}}');
SELECT imgmod.cdn_report_varnish('edge-b', '{"MAIN.n_object": {"value": 3}, "MAIN.cache_hit": {"value": 1},
  "MAIN.cache_miss": {"value": 2}, "MAIN.n_lru_nuked": {"value": 4},
  "SMF.disk.g_bytes": {"value": 100}, "SMF.disk.g_space": {"value": 900}}', '1 s');
SELECT imgmod.cdn_report_varnish('edge-b', '{"MAIN.n_object": {"value": 3}, "MAIN.cache_hit": {"value": 1},
  "MAIN.cache_miss": {"value": 5}, "MAIN.n_lru_nuked": {"value": 6},
  "SMF.disk.g_bytes": {"value": 990}, "SMF.disk.g_space": {"value": 10}}', '1 s');
-- What is not varnishstat's output is refused, with the reason.
SELECT imgmod.cdn_report_varnish('edge-x', '[1, 2]');
SELECT imgmod.cdn_report_varnish('edge-x', '"MAIN.n_object"');
SELECT imgmod.cdn_report_varnish('edge-x', NULL);
SELECT imgmod.cdn_report_varnish('edge-x', '{"counters": {"MAIN.cache_hit": {"value": 1}}}');
SELECT imgmod.cdn_report_varnish('edge-x', '{"MAIN.n_object": {"value": 1}}');
SELECT imgmod.cdn_report_varnish('edge-x', '{"MAIN.n_object": {"value": 1}, "SMA.Transient.g_bytes": {"value": 1}, "SMA.Transient.g_space": {"value": 1}}');
SELECT imgmod.cdn_report_varnish('edge-x', '{"MAIN.n_object": {"value": -1}, "SMA.s0.g_bytes": {"value": 1}, "SMA.s0.g_space": {"value": 1}}');
SELECT imgmod.cdn_report_varnish('edge-x', '{"MAIN.n_object": {"value": "many"}, "SMA.s0.g_bytes": {"value": 1}, "SMA.s0.g_space": {"value": 1}}');
SELECT imgmod.cdn_report_varnish('edge-x', '{"MAIN.n_object": {"value": 1e30}, "SMA.s0.g_bytes": {"value": 1}, "SMA.s0.g_space": {"value": 1}}');
SELECT imgmod.cdn_report_varnish('../edge', '{"MAIN.n_object": {"value": 1}, "SMA.s0.g_bytes": {"value": 1}, "SMA.s0.g_space": {"value": 1}}');
RESET ROLE;
SELECT node, tier, capacity_bytes, used_bytes, items, hits, misses, evictions, state
  FROM imgmod.cdn_capacity WHERE tier = 'edge' ORDER BY node;
-- The application may not report; the purge state is for operators.
SET ROLE imgmod_test_shop;
SELECT imgmod.cdn_report_varnish('edge-c', '{}');
SELECT count(*) FROM imgmod.cdn_purge_status;
RESET ROLE;
SET ROLE imgmod_test_origin;
SELECT count(*) FROM imgmod.cdn_purge_status;
SELECT count(*) FROM imgmod.cdn_edges;
RESET ROLE;

-- Which surrogate keys a change purges (the origin tags responses with the
-- same): a new current version, a purged version, a deleted image; other
-- events purge nothing.
SELECT s AS status, imgmod.cdn_purge_keys(42, 3, s) AS keys
  FROM unnest(ARRAY['ready', 'purged', 'deleted', 'received', 'rendered', 'failed', 'superseded']) s;
SELECT imgmod.cdn_purge_keys(42, NULL, 'ready') AS ready_without_version;

-- Edges to purge are a list of http(s) URLs without credentials.
\set VERBOSITY default
ALTER SYSTEM SET imgmod.cdn_purge_urls = 'ftp://edge.example/';
ALTER SYSTEM SET imgmod.cdn_purge_urls = 'http://user:secret@edge.example/';
ALTER SYSTEM SET imgmod.cdn_purge_urls = 'http://edge.example/ x';
ALTER SYSTEM SET imgmod.cdn_purge_urls = 'http://a/,http://b/,http://c/,http://d/,http://e/,http://f/,http://g/,http://h/,http://i/,http://j/,http://k/,http://l/,http://m/,http://n/,http://o/,http://p/,http://q/';
ALTER SYSTEM SET imgmod.cdn_purge_urls = ' http://edge-1.example:6081/ , https://edge-2.example/purge ,';
ALTER SYSTEM RESET imgmod.cdn_purge_urls;
SET imgmod.cdn_purge_urls = 'http://edge.example/';
\set VERBOSITY terse

DELETE FROM imgmod.cdn_nodes;
DROP ROLE imgmod_test_origin, imgmod_test_shop;
