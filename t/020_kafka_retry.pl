# The Kafka retry topic and the outbox under hostile or broken conditions:
# only a well-formed request retries an image, and only the image it names;
# everything else is counted by reason in imgmod.retry_request_stats and
# logged without its bytes; offsets are committed once the re-queue has
# committed.  While Kafka is configured the outbox trimmer never deletes an
# unpublished event, even when no Kafka client can be made (the SASL/TLS
# settings reach librdkafka, and the password never reaches the log).  The
# publisher's SQL cannot be redirected by a database's search_path.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm ppm_to_jpeg start_node upload_bytes require_services write_binary);

require_services(qw(IMGMOD_KAFKA_BROKERS IMGMOD_SERVICES_DIR));
my $brokers = $ENV{IMGMOD_KAFKA_BROKERS};
# A topic of this run only: no message of an earlier run can be read.
my $topic = "imgmod.retry.t020.$$." . time();
my $password_canary = 'IMGMOD-CANARY-KAFKA-PASSWORD';

# Kafka is switched on only once the hostile messages are on the topic.
my $node = start_node('kafka_retry', conf => join("\n",
	"imgmod.max_attempts = 2", "imgmod.retry_base_delay = '50ms'",
	"imgmod.kafka_retry_topic = '$topic'"));
my $jpeg = ppm_to_jpeg(upright_marked_ppm(320, 200), 90);
my $jpeg_path = $node->basedir . '/retry.jpg';
write_binary($jpeg_path, $jpeg);

# An image whose render fails until its staged bytes are repaired: dead.
sub dead_image
{
	my ($name) = @_;
	my $id = $node->safe_psql('postgres',
		"BEGIN; SELECT imgmod.upload(pg_read_binary_file('$jpeg_path'), '$name') AS id \\gset\n"
		  . "UPDATE imgmod.image_versions SET staged = '\\x00'::bytea WHERE image_id = :id; COMMIT; SELECT :id");
	ok($node->poll_query_until('postgres', "SELECT status = 'dead' FROM imgmod.images WHERE id = $id"),
		"$name ends dead");
	$node->safe_psql('postgres',
		"UPDATE imgmod.image_versions SET staged = pg_read_binary_file('$jpeg_path') WHERE image_id = $id");
	return $id;
}

# The victim is image 1: what today's "first digits" parsing would retry
# for {"version":1,...}, "-1", "1abc" and the like.
my $victim = dead_image('victim.jpg');
is($victim, '1', 'the victim is image 1');
my $target = dead_image('target.jpg');
my $bare = dead_image('bare.jpg');

my @hostile = (
	[ "-$victim", 'not_positive' ],
	[ "{\"image_id\": -$victim}", 'not_positive' ],
	[ '{"image_id": 0}', 'not_positive' ],
	[ "{\"image_id\": \"$victim\"}", 'wrong_type' ],
	[ "{\"image_id\": $victim.5}", 'wrong_type' ],
	[ "{\"image_id\": ${victim}e0}", 'wrong_type' ],
	[ "{\"image_id\": [$victim]}", 'wrong_type' ],
	[ "{\"image_id\": {\"id\": $victim}}", 'wrong_type' ],
	[ "{\"image_id\": null}", 'wrong_type' ],
	[ "[$victim]", 'wrong_type' ],
	[ "\"$victim\"", 'wrong_type' ],
	[ "{\"image\": $victim}", 'unknown_field' ],
	[ "{\"version\": $victim}", 'missing_image_id' ],
	[ '{}', 'missing_image_id' ],
	[ '{"image_id": 99999999999999999999}', 'overflow' ],
	[ "{\"image_id\": $target, \"version\": 99999999999}", 'overflow' ],
	[ "{\"image_id\": $victim, \"image_id\": $target}", 'duplicate_field' ],
	[ "{\"image_id\": $victim, \"version\": 7}", 'unknown_version' ],
	[ "${victim}abc", 'malformed' ],
	[ "retry image $victim please", 'malformed' ],
	[ "{\"image_id\": $victim", 'malformed' ],
	[ "\xff\xfe$victim", 'malformed' ],
	[ '{"image_id": 424242}', 'unknown_image' ],
	[ "{\"image_id\": $victim, \"pad\": \"" . ('imgmod-pad-' x 200) . '"}', 'too_large' ],
);
my @valid = (
	[ "{\"version\":1,\"image_id\":$target}", 'requeued' ],
	[ "$bare", 'requeued' ],
);
my $messages = $node->basedir . '/retry-messages.txt';
write_binary($messages, join('', map { "$_->[0]\n" } @hostile, @valid));
system("kcat -P -b $brokers -t '$topic' < '$messages'") == 0 or die 'kcat produce failed';

$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.kafka_brokers = '$brokers'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');

ok($node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM imgmod.images WHERE id IN ($target, $bare) AND status = 'ready'"),
	'the well-formed requests ({"version":1,"image_id":N} and a bare N) retry their images');
# The valid requests were the last two messages of the only partition, so
# every hostile one before them has been handled by now.
is($node->safe_psql('postgres',
		"SELECT i.status || ' ' || string_agg(j.state || '/' || j.attempts, ',') FROM imgmod.images i "
		  . "JOIN imgmod.jobs j ON j.image_id = i.id WHERE i.id = $victim GROUP BY i.status"),
	'dead dead/2', 'the victim was never retried: still dead, its job untouched');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM imgmod.events WHERE image_id = $victim AND status = 'retried'"),
	'0', 'no retried event for the victim');
is($node->safe_psql('postgres',
		"SELECT string_agg(image_id::text, ',' ORDER BY image_id) FROM imgmod.events WHERE status = 'retried'"),
	"$target,$bare", 'exactly the two named images were retried');

my $total = scalar(@hostile) + scalar(@valid);
ok($node->poll_query_until('postgres',
		"SELECT sum(total) = $total FROM imgmod.retry_request_stats"),
	"all $total messages are counted");
my %want;
$want{ $_->[1] }++ for @hostile, @valid;
is($node->safe_psql('postgres',
		"SELECT string_agg(outcome || '=' || total, ' ' ORDER BY outcome) FROM imgmod.retry_request_stats WHERE total > 0"),
	join(' ', map { "$_=$want{$_}" } sort keys %want),
	'every message is counted under its own outcome');
my $log = slurp_file($node->logfile);
like($log, qr/ignoring retry request at offset \d+ of "\Q$topic\E" \[0\] \(\d+ bytes\): too_large/,
	'a refused request is logged with its offset, size and reason');
unlike($log, qr/imgmod-pad-|retry image \d+ please|\xff\xfe/, 'the log carries none of the bytes of a refused message');

# Offsets are committed by hand: the group's position reaches the end.
my $kafka_lib = (glob("$ENV{IMGMOD_SERVICES_DIR}/kafka-lib/*"))[0];
sub committed_offset
{
	my $out = `java -Xmx128m -XX:+UseSerialGC -cp '$kafka_lib/*' org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server $brokers --describe --group imgmod-retry 2>/dev/null`;
	my ($offset) = $out =~ /^\S+\s+\Q$topic\E\s+0\s+(\d+)\s/m;
	return $offset // -1;
}
my $committed = -1;
for (1 .. 60)
{
	$committed = committed_offset();
	last if $committed == $total;
}
is($committed, $total, 'the consumer group committed every message it handled');

# --- the outbox while the Kafka client cannot be made -----------------------
# TLS with a CA file that does not exist: librdkafka refuses to create the
# client, which also shows the settings reach it.  A password is set too, to
# check it never appears in the log.
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.kafka_security_protocol = 'ssl'");
$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.kafka_ssl_ca_location = '/nonexistent/imgmod-ca.pem'");
$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.kafka_sasl_username = 'imgmod'");
{
	# The test's own statement must not be what puts the password in the log.
	local $ENV{PGOPTIONS} = '-c log_statement=none';
	$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.kafka_sasl_password = '$password_canary'");
}
$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.outbox_retention = '1s'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->wait_for_log(qr/cannot create a Kafka client/, $log_offset),
	'with an unusable TLS setting the publisher cannot create its Kafka client');
$node->safe_psql('postgres',
	"INSERT INTO imgmod.events (image_id, status, payload, created_at, published_at) VALUES "
	  . "(900001, 'received', '{}', now() - interval '1 hour', NULL), "
	  . "(900002, 'received', '{}', now() - interval '1 hour', now() - interval '1 hour')");
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM imgmod.events WHERE image_id = 900002"),
	'the trimmer runs: an old published event is deleted');
is($node->safe_psql('postgres', "SELECT count(*) FROM imgmod.events WHERE image_id = 900001 AND published_at IS NULL"),
	'1', 'an old unpublished event stays while Kafka is configured, though no client could be made');
# PostgreSQL itself reports every setting a reload changes, with its value
# (README, Security notes); no other line may carry the password.
my @leaks = grep { /\Q$password_canary\E/ && !/parameter "imgmod.kafka_sasl_password" changed to/ }
  split /\n/, slurp_file($node->logfile);
is(join("\n", @leaks), '', 'imgmod never writes the SASL password to the log');
$node->safe_psql('postgres', 'CREATE ROLE imgmod_t020_nobody');
is($node->psql('postgres', "SET ROLE imgmod_t020_nobody; SHOW imgmod.kafka_sasl_password"), 3,
	'the password is superuser-only');

# --- a hostile search_path does not reach the publisher's SQL ---------------
for my $setting (qw(kafka_security_protocol kafka_ssl_ca_location kafka_sasl_username kafka_sasl_password
	outbox_retention))
{
	$node->safe_psql('postgres', "ALTER SYSTEM RESET imgmod.$setting");
}
$node->safe_psql('postgres', q{CREATE SCHEMA evil;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT timestamptz '3000-01-01 00:00+00' $$;
ALTER DATABASE postgres SET search_path = evil, pg_catalog;});
$node->restart;
$node->safe_psql('postgres',
	"INSERT INTO imgmod.events (image_id, status, payload) VALUES (900003, 'received', '{}')");
ok($node->poll_query_until('postgres',
		"SELECT published_at IS NOT NULL FROM imgmod.events WHERE image_id = 900003"),
	'the event is published under a database search_path that puts a fake now() first');
is($node->safe_psql('postgres',
		"SELECT published_at < pg_catalog.now() + interval '1 day' FROM imgmod.events WHERE image_id = 900003"),
	't', 'published_at comes from pg_catalog.now(), not from the schema on the search_path');

$node->stop;
done_testing();
