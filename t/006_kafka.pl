# Status events reach Kafka (Apache Kafka in KRaft mode, started by
# scripts/services.sh) through the outbox: every event is delivered, keyed
# by image, even when the broker was down while uploads ran; a retry
# request on the retry topic re-queues an image's failed work.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm ppm_to_jpeg start_node upload_bytes services service_conf
  require_services);

require_services(qw(IMGMOD_KAFKA_BROKERS));
my $brokers = $ENV{IMGMOD_KAFKA_BROKERS};
my $node = start_node('kafka', conf => service_conf(kafka => 1)
	  . "\nimgmod.kafka_status_topic = 'imgmod.status'\nimgmod.max_attempts = 2\nimgmod.retry_base_delay = '50ms'");
my $jpeg = ppm_to_jpeg(upright_marked_ppm(400, 240), 90);

# Every message on the status topic as "key payload".  The topic may hold
# messages of earlier runs (event ids start again at 1 in a new cluster), so
# checks compare whole payloads, which carry their own timestamp.
sub consumed
{
	my $out = `kcat -C -b $brokers -t imgmod.status -o beginning -e -q -f '%k %s\\n' 2>/dev/null`;
	my %seen = map { $_ => 1 } split /\n/, $out;
	return \%seen;
}

# Outbox rows of these images that no consumer could see (key = image id).
sub missing_on_topic
{
	my ($ids) = @_;
	my $seen = consumed();
	my @rows = split /\n/, $node->safe_psql('postgres',
		"SELECT image_id || ' ' || payload::text FROM imgmod.events WHERE image_id IN ($ids) ORDER BY id");
	return grep { !$seen->{$_} } @rows;
}

sub all_published
{
	my ($ids) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM imgmod.events WHERE image_id IN ($ids) AND published_at IS NULL");
}

my @ids = map { upload_bytes($node, $jpeg, "k$_.jpg") } 1 .. 3;
my $ids = join(',', @ids);
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM imgmod.images WHERE id IN ($ids) AND status <> 'ready'");
ok(all_published($ids), 'every event is acknowledged by the broker');
my @missing = missing_on_topic($ids);
is(scalar(@missing), 0, 'a consumer sees every event, keyed by its image id, payload as in the outbox')
  or diag "missing: @missing";

# --- the broker stops while uploads run ---------------------------------------
services('stop', 'kafka');
@ids = map { upload_bytes($node, $jpeg, "down$_.jpg") } 1 .. 5;
$ids = join(',', @ids);
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM imgmod.images WHERE id IN ($ids) AND status <> 'ready'"),
	'rendering does not wait for Kafka');
is($node->safe_psql('postgres',
		"SELECT count(*) > 0 FROM imgmod.events WHERE image_id IN ($ids) AND published_at IS NULL"),
	't', 'events wait in the outbox while the broker is down');
services('start', 'kafka');
ok(all_published($ids), 'after the broker returns every waiting event is acknowledged');
@missing = missing_on_topic($ids);
is(scalar(@missing), 0, 'none was lost: every event is on the topic') or diag "missing: @missing";

# --- a retry request from Kafka -------------------------------------------------
my $id;
{
	my $path = $node->basedir . '/k.jpg';
	ImgmodTest::write_binary($path, $jpeg);
	$id = $node->safe_psql('postgres',
		"BEGIN; SELECT imgmod.upload(pg_read_binary_file('$path'), 'poisoned.jpg') AS id \\gset\n"
		  . "UPDATE imgmod.image_versions SET staged = '\\x00'::bytea WHERE image_id = :id; COMMIT; SELECT :id");
}
ok($node->poll_query_until('postgres', "SELECT status = 'dead' FROM imgmod.images WHERE id = $id"),
	'a damaged source ends dead');
my $path = $node->basedir . '/k.jpg';
$node->safe_psql('postgres',
	"UPDATE imgmod.image_versions SET staged = pg_read_binary_file('$path') WHERE image_id = $id");
system("echo '{\"image_id\": $id}' | kcat -P -b $brokers -t imgmod.retry") == 0 or die 'kcat produce failed';
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $id"),
	'a retry request on the retry topic brings it back');
like($node->safe_psql('postgres', "SELECT string_agg(status, ',' ORDER BY id) FROM imgmod.events WHERE image_id = $id"),
	qr/dead,retried.*ready/, 'the events tell the story: dead, retried, ready');

$node->stop;
done_testing();
