# Idempotent uploads under concurrency and a lost reply: two sessions
# sending the same key at once get one image (the second waits for the
# first to commit, or goes ahead when it rolls back); a client whose
# connection dropped after its upload committed retries with the key and
# gets the same image, not a second one.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm ppm_to_jpeg start_node write_binary);
use LostReplyProxy;

my $node = start_node('idempotency');
my $path = $node->basedir . '/photo.jpg';
write_binary($path, ppm_to_jpeg(upright_marked_ppm(480, 320), 90));
sub upload_sql { my ($key, $name) = @_; return "SELECT imgmod.upload(pg_read_binary_file('$path'), '$name', NULL, '$key')"; }
sub images_named { $node->safe_psql('postgres', "SELECT count(*) FROM imgmod.images WHERE original_name = '$_[0]'") }

# A second session's upload with the key, started in the background; it
# blocks while the first holds the key.
sub start_second
{
	my ($key, $name) = @_;
	my %h = (out => '', err => '');
	$h{run} = IPC::Run::start(['psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', upload_sql($key, $name)],
		'>', \$h{out}, '2>', \$h{err});
	return \%h;
}
sub waiting_on_the_key
{
	return $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%imgmod.upload%'");
}

# --- the first commits: the second returns its image
my $first = $node->background_psql('postgres');
$first->query_safe('BEGIN');
my $id = $first->query_safe(upload_sql('concurrent-1', 'c1.jpg'));
like($id, qr/^\d+$/, "the first session uploaded image $id and holds its transaction open");
my $second = start_second('concurrent-1', 'c1.jpg');
ok(waiting_on_the_key(), 'the second session waits on the key');
$first->query_safe('COMMIT');
$second->{run}->finish;
chomp(my $got = $second->{out});
is($got, $id, 'after the first committed, the second returns the same image id');
is(images_named('c1.jpg'), '1', 'one image');

# --- the first rolls back: the second goes ahead and makes the image
$first->query_safe('BEGIN');
my $gone = $first->query_safe(upload_sql('concurrent-2', 'c2.jpg'));
$second = start_second('concurrent-2', 'c2.jpg');
ok(waiting_on_the_key(), 'the second session waits on the key again');
$first->query_safe('ROLLBACK');
$second->{run}->finish;
chomp($got = $second->{out});
like($got, qr/^\d+$/, "after the first rolled back, the second uploaded ($got)");
isnt($got, $gone, 'as a new image, not the rolled-back one');
is(images_named('c2.jpg'), '1', 'one image');
is($node->safe_psql('postgres', "SELECT image_id FROM imgmod.idempotency_keys WHERE key = 'concurrent-2'"), $got,
	'the key now names the second session\'s image');
$first->quit;

# --- the reply is lost after the commit
my $proxy_port = PostgreSQL::Test::Cluster::get_free_port();
my $report = $node->basedir . '/lost';
my $proxy = LostReplyProxy::start($node->host, $proxy_port, $node->host . '/.s.PGSQL.' . $node->port,
	'lost-reply-key', $report);
my ($out, $err) = ('', '');
my $ok = IPC::Run::run(['psql', '-XAtq', '-h', $node->host, '-p', $proxy_port, '-d', 'postgres',
		'-c', upload_sql('lost-reply-key', 'lost.jpg')], '>', \$out, '2>', \$err);
ok(!$ok, 'the client saw its upload fail');
like($err, qr/server closed the connection unexpectedly|connection to server was lost|no connection to the server/,
	'with a lost connection, not an answer');
is($out, '', 'and no image id');
ok(-e $report, 'the proxy swallowed the reply after the server said the statement was done');
is(images_named('lost.jpg'), '1', 'yet the upload had committed');
my $retry = $node->safe_psql('postgres', upload_sql('lost-reply-key', 'lost.jpg'));
is($retry, $node->safe_psql('postgres', "SELECT id FROM imgmod.images WHERE original_name = 'lost.jpg'"),
	'the retry with the same key returns that image');
is(images_named('lost.jpg'), '1', 'and makes no second one');
kill 'TERM', $proxy;
waitpid($proxy, 0);

# Keys are trimmed after imgmod.idempotency_retention by the publisher.
$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.idempotency_retention = '60s'; SELECT pg_reload_conf()");
$node->safe_psql('postgres', "UPDATE imgmod.idempotency_keys SET created_at = now() - interval '2 min' WHERE key = 'concurrent-1'");
$node->restart;    # the publisher trims when it starts, then every minute at most
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM imgmod.idempotency_keys WHERE key = 'concurrent-1'"),
	'an expired key is trimmed');
is($node->safe_psql('postgres', "SELECT count(*) FROM imgmod.idempotency_keys WHERE key IN ('concurrent-2', 'lost-reply-key')"),
	'2', 'keys within the retention stay');

$node->stop;
done_testing();
