# A running job belongs to one worker process, named by its PID and its
# start time: a PID reused by another worker does not keep an orphaned job
# "running" for ever.  And a job whose failure cannot even be recorded (the
# recording transaction errors) is released, not left running under a
# worker that is alive and will never finish it.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm ppm_to_jpeg start_node upload_bytes);

my $node = start_node('ownership', workers => 1, conf => "imgmod.max_attempts = 3");
my $jpeg = ppm_to_jpeg(upright_marked_ppm(320, 200), 90);

# --- a PID that now belongs to another process of the same kind
my $id = upload_bytes($node, $jpeg, 'reused.jpg');
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $id"), 'uploaded and ready');
my $worker = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'imgmod worker'");
ok($worker > 0, "the worker runs as PID $worker");
# As if a worker that died yesterday had held this job, and the live worker
# had been given the same PID since.
$node->safe_psql('postgres',
	"UPDATE imgmod.jobs SET state = 'running', claimed_by = $worker, claimed_by_start = now() - interval '1 day', "
	  . "claimed_at = now() - interval '1 day' WHERE image_id = $id AND kind = 'render'");
like($node->safe_psql('postgres', "SELECT why FROM imgmod.queue WHERE image_id = $id"),
	qr/its worker is gone/, 'the queue view already calls it orphaned: the PID is alive but it is another process');
ok($node->poll_query_until('postgres',
		"SELECT state = 'done' AND attempts = 2 FROM imgmod.jobs WHERE image_id = $id AND kind = 'render'"),
	'the job is reclaimed and done in a second attempt');
like($node->safe_psql('postgres', "SELECT payload->>'error' FROM imgmod.events WHERE image_id = $id AND status = 'retried'"),
	qr/^worker $worker exited during attempt 1$/, 'a retried event says what happened');

# --- the failure of an attempt cannot be recorded
# Renders fail (the store directory cannot be created), and the outbox
# refuses failure events, so recording the failure fails too.
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.refuse_failure_events() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	    IF NEW.status IN ('failed', 'dead') THEN
	        RAISE EXCEPTION 'the outbox refuses failure events (test)';
	    END IF;
	    RETURN NEW;
	END $$;
	CREATE TRIGGER refuse_failure_events BEFORE INSERT ON imgmod.events
	    FOR EACH ROW EXECUTE FUNCTION public.refuse_failure_events();
	ALTER SYSTEM SET imgmod.storage_dir = '/dev/null/imgmod-store';
	SELECT pg_reload_conf();
});
ok($node->poll_query_until('postgres', "SELECT current_setting('imgmod.storage_dir') = '/dev/null/imgmod-store'"),
	'the store is unwritable');
my $bad = upload_bytes($node, $jpeg, 'unrecorded.jpg');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM imgmod.jobs WHERE image_id = $bad AND last_error LIKE '%recording this failure failed%'"),
	'a render failed and recording its failure was refused');
ok($node->poll_query_until('postgres',
		"SELECT state = 'dead' FROM imgmod.jobs WHERE image_id = $bad AND kind = 'render'"),
	'the job is not left running: it is released after every attempt, and dead after imgmod.max_attempts');
is($node->safe_psql('postgres', "SELECT attempts FROM imgmod.jobs WHERE image_id = $bad AND kind = 'render'"),
	'3', 'after exactly imgmod.max_attempts attempts');
like($node->safe_psql('postgres', "SELECT last_error FROM imgmod.jobs WHERE image_id = $bad AND kind = 'render'"),
	qr/storing .* failed.*: could not create directory.*\(and recording this failure failed: the outbox refuses failure events \(test\)\)/,
	'its error keeps both the render failure and why it could not be recorded');
like($node->safe_psql('postgres', "SELECT why FROM imgmod.queue WHERE image_id = $bad"),
	qr/^gave up after 3 attempts/, 'the queue view says it gave up');

# Repaired: the job completes on a retry.
$node->safe_psql('postgres', q{
	DROP TRIGGER refuse_failure_events ON imgmod.events;
	ALTER SYSTEM RESET imgmod.storage_dir;
	SELECT pg_reload_conf();
});
ok($node->poll_query_until('postgres', "SELECT current_setting('imgmod.storage_dir') = 'imgmod/store'"), 'store repaired');
is($node->safe_psql('postgres', "SELECT imgmod.retry($bad)"), '1', 'retried');
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $bad"),
	'and the image becomes ready');

$node->stop;
done_testing();
