# Nothing is lost: a worker killed with SIGKILL in the middle of a job and a
# server stopped with -m immediate in the middle of a batch both end with
# every committed upload ready, every object stored in S3, every variant row
# and every event written exactly once and delivered to Kafka.  A rolled-back
# upload leaves no row, object, cache key or message.  All against the real
# servers of scripts/services.sh.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(gradient_ppm upright_marked_ppm ppm_to_jpeg start_node upload_bytes service_conf
  require_services);

require_services(qw(IMGMOD_S3_ENDPOINT IMGMOD_REDIS_URL IMGMOD_KAFKA_BROKERS));
my $node = start_node('faults', workers => 1, conf => service_conf(s3 => 1, redis => 1, kafka => 1));
my ($rhost, $rport) = $ENV{IMGMOD_REDIS_URL} =~ m{redis://(?:[^@]*@)?([^:/]+):?(\d*)};
my $brokers = $ENV{IMGMOD_KAFKA_BROKERS};
# The suite's own Redis: no key of an earlier run may satisfy a check.
system("redis-cli -h $rhost -p $rport FLUSHDB >/dev/null") == 0 or die 'redis-cli FLUSHDB failed';

# ~24 MP sources keep the single worker busy for a few hundred ms per job.
my $big = ppm_to_jpeg(gradient_ppm(6000, 4000), 85);
my $small = ppm_to_jpeg(upright_marked_ppm(640, 400), 90);

# While the postmaster restarts every backend after the SIGKILL, a psql
# started at that moment can lose its connection half-way (a broken pipe):
# such an attempt counts as "not yet", like a refused one, and is retried.
$SIG{PIPE} = 'IGNORE';
sub all_ready
{
	my ($ids) = @_;
	for (1 .. 1800)
	{
		my $done = eval {
			$node->safe_psql('postgres',
				"SELECT count(*) = 0 FROM imgmod.images WHERE id IN ($ids) AND status <> 'ready'") eq 't';
		};
		return 1 if $done;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

sub check_complete
{
	my ($ids, $what) = @_;
	my $n = scalar(split /,/, $ids);
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM imgmod.variants WHERE image_id IN ($ids)"),
		4 * $n, "$what: 4 variant rows per image");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM imgmod.images i WHERE id IN ($ids) AND "
			  . "(SELECT count(*) FROM imgmod.events e WHERE e.image_id = i.id AND e.status = 'ready') <> 1"),
		'0', "$what: exactly one ready event per image");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM imgmod.jobs WHERE image_id IN ($ids) AND state <> 'done'"),
		'0', "$what: every job done");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM imgmod.variants v WHERE image_id IN ($ids) "
			  . "AND md5(imgmod.fetch(v.image_id, v.preset, v.version)) <> trim(both '\"' from v.etag)"),
		'0', "$what: every variant object is in S3 with the bytes its row describes");
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM imgmod.events WHERE image_id IN ($ids) AND published_at IS NULL"),
		"$what: every event acknowledged by Kafka");
}

# --- a worker killed with SIGKILL mid-render -------------------------------
my @ids = map { upload_bytes($node, $big, "big$_.jpg") } 1 .. 6;
my $ids = join(',', @ids);
my ($victim_pid, $victim_job);
# Freeze the worker (SIGSTOP) while it holds a job, confirm it still holds
# it, then SIGKILL it: the kill always lands in the middle of a render.
for (1 .. 500)
{
	my $row = $node->safe_psql('postgres',
		"SELECT claimed_by || ' ' || id FROM imgmod.jobs WHERE state = 'running' AND image_id IN ($ids) LIMIT 1");
	if ($row ne '')
	{
		my ($pid, $job) = split / /, $row;
		kill 'STOP', $pid;
		if ($node->safe_psql('postgres', "SELECT state || ' ' || claimed_by FROM imgmod.jobs WHERE id = $job") eq "running $pid")
		{
			($victim_pid, $victim_job) = ($pid, $job);
			last;
		}
		kill 'CONT', $pid;
	}
	select(undef, undef, undef, 0.01);
}
ok(defined $victim_pid, 'caught the worker in the middle of a job');
kill 'KILL', $victim_pid;
note "killed worker $victim_pid while it ran job $victim_job";

ok(all_ready($ids), 'after the crash every image becomes ready');
is($node->safe_psql('postgres', "SELECT attempts >= 2 FROM imgmod.jobs WHERE id = $victim_job"),
	't', 'the interrupted job ran again');
like($node->safe_psql('postgres',
		"SELECT string_agg(error, ';') FROM imgmod.events e JOIN imgmod.jobs j ON j.image_id = e.image_id "
		  . "WHERE j.id = $victim_job AND e.status = 'retried'"),
	qr/worker $victim_pid exited during attempt 1/, 'the orphaned attempt is recorded as retried');
check_complete($ids, 'after SIGKILL');

# --- the whole server stopped with -m immediate mid-batch -------------------
@ids = ((map { upload_bytes($node, $big, "batch$_.jpg") } 1 .. 3),
		(map { upload_bytes($node, $small, "batchs$_.jpg") } 1 .. 5));
$ids = join(',', @ids);
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM imgmod.jobs WHERE state = 'running' AND image_id IN ($ids)");
$node->stop('immediate');
$node->start;
ok(all_ready($ids), 'after an immediate shutdown and restart every image becomes ready');
check_complete($ids, 'after -m immediate');

# --- a rolled-back upload leaves no row, object, cache key or message -------
my $puts_before = $node->safe_psql('postgres', "SELECT sum(requests) FROM imgmod.stats WHERE verb = 'PUT'");
my $path = $node->basedir . '/rollback.jpg';
ImgmodTest::write_binary($path, $small);
my $rolled_back = $node->safe_psql('postgres',
	"BEGIN; SELECT imgmod.upload(pg_read_binary_file('$path'), 'rb.jpg'); ROLLBACK;");
like($rolled_back, qr/^\d+$/, "the rolled-back upload had id $rolled_back");
my $id_after = upload_bytes($node, $small, 'after_rollback.jpg');
ok(all_ready($id_after), 'the next upload is ready');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM imgmod.events WHERE image_id = $id_after AND published_at IS NULL"),
	'and its events are delivered');
is($node->safe_psql('postgres', "SELECT count(*) FROM imgmod.images WHERE id = $rolled_back"), '0',
	'no image row for the rolled-back upload');
is($node->safe_psql('postgres', "SELECT sum(requests) FROM imgmod.stats WHERE verb = 'PUT'") - $puts_before, 6,
	'only the committed upload wrote objects (5 main + 1 hi-res PUT)');
is(scalar(grep { /\S/ } split /\n/, `redis-cli -h $rhost -p $rport --raw KEYS 'imgmod:*:$rolled_back:*'`), 0,
	'no cache key for the rolled-back upload');
is($node->safe_psql('postgres', "SELECT count(*) FROM imgmod.events WHERE image_id = $rolled_back"), '0',
	'no outbox row, hence no Kafka message, for the rolled-back upload');
my $topic = `kcat -C -b $brokers -t imgmod.status -o beginning -e -q -f '%k %s\\n' 2>/dev/null`;
my $first = $node->safe_psql('postgres',
	"SELECT image_id || ' ' || payload::text FROM imgmod.events WHERE image_id = $id_after ORDER BY id LIMIT 1");
ok(index($topic, $first) >= 0, 'while the committed upload is on the topic');

$node->stop;
done_testing();
