# Workers, the publisher and every imgmod function run SQL with
# search_path = pg_catalog, pg_temp: functions a database owner plants in
# schema public with signatures that would match imgmod's SQL better than
# pg_catalog's (public.make_interval(secs int), public.nextval(text), ...)
# are never executed by them, so they cannot run with superuser rights.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm gradient_ppm ppm_to_jpeg start_node upload_bytes replace_bytes
  service_conf require_services);

require_services(qw(IMGMOD_S3_ENDPOINT IMGMOD_REDIS_URL IMGMOD_KAFKA_BROKERS));
my $node = start_node('traps', conf => service_conf(s3 => 1, redis => 1, kafka => 1)
	  . "\nimgmod.superseded_retention = 0\nimgmod.outbox_retention = '1s'");

# A database owner (not a superuser) with CREATE on schema public plants the
# traps.  Each records who ran it, then behaves like the real function so
# that nothing visibly breaks.
$node->safe_psql('postgres', q{
	CREATE ROLE mallory LOGIN;
	GRANT CREATE ON SCHEMA public TO mallory;
	SET ROLE mallory;
	CREATE TABLE public.trap_log (who text, trap text, process text, at timestamptz DEFAULT clock_timestamp());
	GRANT INSERT ON public.trap_log TO PUBLIC;
	CREATE FUNCTION public.trap_record(trap text) RETURNS void LANGUAGE sql AS $$
	    INSERT INTO public.trap_log (who, trap, process)
	    SELECT current_user, trap, (SELECT a.backend_type FROM pg_catalog.pg_stat_activity a
	                                 WHERE a.pid = pg_catalog.pg_backend_pid()) $$;
	CREATE FUNCTION public.make_interval(secs integer) RETURNS interval LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.trap_record('make_interval(integer)');
	      RETURN pg_catalog.make_interval(secs => secs::float8); END $$;
	CREATE FUNCTION public.make_interval(secs numeric) RETURNS interval LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.trap_record('make_interval(numeric)');
	      RETURN pg_catalog.make_interval(secs => secs::float8); END $$;
	CREATE FUNCTION public.make_interval(secs bigint) RETURNS interval LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.trap_record('make_interval(bigint)');
	      RETURN pg_catalog.make_interval(secs => secs::float8); END $$;
	CREATE FUNCTION public.nextval(text) RETURNS bigint LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.trap_record('nextval(text)');
	      RETURN pg_catalog.nextval($1::regclass); END $$;
	CREATE FUNCTION public.jsonb_build_array(jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.trap_record('jsonb_build_array(jsonb)');
	      RETURN pg_catalog.jsonb_build_array(VARIADIC ARRAY[$1]); END $$;
	CREATE FUNCTION public.pg_sleep(numeric) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.trap_record('pg_sleep(numeric)');
	      PERFORM pg_catalog.pg_sleep($1::float8); END $$;
	CREATE FUNCTION public.pg_notify(text, jsonb) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.trap_record('pg_notify(text, jsonb)');
	      PERFORM pg_catalog.pg_notify($1, $2::text); END $$;
	CREATE FUNCTION public.left(text, bigint) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.trap_record('left(text, bigint)');
	      RETURN pg_catalog.left($1, $2::int); END $$;
});

# The traps work: with the default search_path, SQL of the kind imgmod's
# workers run resolves to them.
is($node->safe_psql('postgres', q{
	SELECT make_interval(secs => 2) = interval '2 s', make_interval(secs => 1 / 1000.0) IS NOT NULL;
	SELECT string_agg(who || ' ' || trap, ', ' ORDER BY at) FROM public.trap_log;
	TRUNCATE public.trap_log;
}), "t|t\npostgres make_interval(integer), postgres make_interval(numeric)",
	'a superuser session with the default search_path runs the planted functions');

# Restart: the workers and the publisher start (and the publisher trims the
# outbox) with the traps in place.
$node->restart;

my $jpeg = ppm_to_jpeg(upright_marked_ppm(400, 240), 90);
my $id = upload_bytes($node, $jpeg, 'trap1.jpg');
is($node->safe_psql('postgres', "SELECT imgmod.wait($id)"), 'ready', 'uploaded and rendered (wait() as superuser)');
my $v2 = replace_bytes($node, $id, ppm_to_jpeg(gradient_ppm(300, 200), 90), 'trap2.jpg');
is($node->safe_psql('postgres', "SELECT imgmod.wait($id)"), 'ready', "replaced by version $v2 and rendered");
ok($node->poll_query_until('postgres',
		"SELECT status = 'purged' FROM imgmod.image_versions WHERE image_id = $id AND version = 1"),
	'version 1 purged from S3, Redis and the tables');

# A failed render that gave up, retried.
$node->safe_psql('postgres', "UPDATE imgmod.jobs SET state = 'dead', attempts = 5 WHERE image_id = $id AND version = 2");
is($node->safe_psql('postgres', "SELECT imgmod.retry($id)"), '1', 'a dead job re-queued with imgmod.retry()');
ok($node->poll_query_until('postgres',
		"SELECT state = 'done' FROM imgmod.jobs WHERE image_id = $id AND version = 2 AND kind = 'render'"),
	'and rendered again');

# Failures recorded by a worker: the store refuses its credentials for a while.
$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.s3_secret_key = 'wrong'; SELECT pg_reload_conf()");
my $failing = upload_bytes($node, $jpeg, 'trap3.jpg');
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM imgmod.events WHERE image_id = $failing AND status = 'failed'"),
	'a render failed against the store and its failure was recorded');
# What subscribers get is the summary: no endpoint, bucket or server text
# (operators find those on the job).
my $event_errors = $node->safe_psql('postgres',
	"SELECT string_agg(payload->>'error', ' | ') FROM imgmod.events WHERE image_id = $failing AND status = 'failed'");
like($event_errors, qr/storing \S+ in the (main|hires) store failed/, "the failed event says what failed ($event_errors)");
my ($endpoint_host) = $ENV{IMGMOD_S3_ENDPOINT} =~ m{//([^/]+)};
unlike($event_errors, qr/\Q$endpoint_host\E|\Q$ENV{IMGMOD_S3_BUCKET}\E|SignatureDoesNotMatch|HTTP \d{3}|InvalidAccessKeyId/,
	'but names no endpoint, bucket or server answer');
like($node->safe_psql('postgres', "SELECT last_error FROM imgmod.jobs WHERE image_id = $failing AND kind = 'render'"),
	qr/HTTP 403/, 'the job row keeps the server\'s answer for operators');
$node->safe_psql('postgres', "ALTER SYSTEM RESET imgmod.s3_secret_key; SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $failing"),
	'and it completed once the key was right');

is($node->safe_psql('postgres', "SELECT imgmod.delete($id)"), '1', 'deleted (version 2 scheduled; version 1 was purged already)');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM imgmod.image_versions WHERE image_id = $id AND status <> 'purged'"),
	'every version purged');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM imgmod.events WHERE published_at IS NULL"),
	'every event published to Kafka');
# The trimmer runs when the publisher starts and every minute: restart once
# more so that it runs with published events older than the retention.
$node->safe_psql('postgres', 'SELECT pg_catalog.pg_sleep(1.1)');
$node->restart;
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM imgmod.events"),
	'the publisher trimmed the published events');

is($node->safe_psql('postgres',
		"SELECT coalesce(string_agg(DISTINCT who || ' in ' || coalesce(process, '?') || ': ' || trap, ', '), '') FROM public.trap_log"),
	'', 'no planted function ran during upload, render, replace, purge, retry, delete, publishing and trimming');

$node->stop;
done_testing();
