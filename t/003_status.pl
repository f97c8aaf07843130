# Subscribers see every status change as JSON on LISTEN imgmod_status, only
# for committed work, in order.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm ppm_to_jpeg start_node upload_bytes write_binary);

my $node = start_node('status');
my $jpeg = ppm_to_jpeg(upright_marked_ppm(400, 240), 90);
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN imgmod_status');

my $path = $node->basedir . '/s.jpg';
write_binary($path, $jpeg);
$node->safe_psql('postgres', "BEGIN; SELECT imgmod.upload(pg_read_binary_file('$path'), 'aborted.jpg'); ROLLBACK;");
my $id = upload_bytes($node, $jpeg, 'listened.jpg');
$node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $id");

# psql prints notifications as they arrive with the next command's result.
my $seen = '';
for (1 .. 100)
{
	$seen .= $listener->query_safe('SELECT 1');
	last if $seen =~ /"status": "ready"/;
}
my @events = $seen =~ /Asynchronous notification "imgmod_status" with payload "(\{.*?\})" received/g;
is(scalar(@events), 7, 'seven notifications: received, stored, 4x rendered, ready (none for the rolled-back upload)');
is(join(',', map { /"status": "(\w+)"/ ? $1 : '?' } @events), 'received,stored,rendered,rendered,rendered,rendered,ready',
	'in order');
like($events[0] // '', qr/"image_id": $id\b/, 'about the committed image');
like($events[1] // '', qr/"variants": \[\{"key": "hires\/$id\/v1\/original.jpg"/, 'stored names the masters');
like($events[2] // '', qr/"variants": \[\{"key": "variants\/$id\/v1\/large.jpg"/, 'rendered names its preset');
like($events[6] // '', qr/"variants": \[\{"key": "variants\/$id\/v1\/large.jpg"/, 'ready lists the variants');
like($events[0] // '', qr/"event_id": \d+/, 'events carry an id for de-duplication');
is(scalar(grep { !/"image_id": $id\b/ } @events), 0, 'nothing about the aborted upload: every notification is about the committed image');
is($node->safe_psql('postgres',
		"SELECT string_agg(payload::text, '|' ORDER BY id) FROM imgmod.events WHERE image_id = $id"),
	join('|', @events), 'the outbox rows carry exactly what was notified');

# Many long preset names make a ready event longer than a NOTIFY may be
# (8000 bytes): the render still completes, the outbox keeps the whole
# event, and listeners get its identity flagged as truncated.
$node->safe_psql('postgres',
	"INSERT INTO imgmod.presets (name, width) SELECT 'p' || n || repeat('x', 60), 8 + n FROM generate_series(1, 60) n");
my $many = upload_bytes($node, $jpeg, 'many-presets.jpg');
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $many"),
	'an image with 64 presets becomes ready');
is($node->safe_psql('postgres', "SELECT count(*) FROM imgmod.variants WHERE image_id = $many"), '64', 'with 64 variants');
my $ready_len = $node->safe_psql('postgres',
	"SELECT octet_length(payload::text) FROM imgmod.events WHERE image_id = $many AND status = 'ready'");
cmp_ok($ready_len, '>', 8000, "the ready event in the outbox is whole ($ready_len bytes)");
$seen = '';
for (1 .. 100)
{
	$seen .= $listener->query_safe('SELECT 1');
	last if $seen =~ /"image_id": $many, "truncated": true/;
}
my @hints = $seen =~ /payload "(\{.*?\})" received/g;
my ($ready_hint) = grep { /"status": "ready"/ && /"image_id": $many\b/ } @hints;
$ready_hint //= '';
ok(length($ready_hint) > 0 && length($ready_hint) < 8000, 'the ready notification arrived, under 8000 bytes');
like($ready_hint, qr/"truncated": true/, 'flagged as truncated: the outbox holds the whole event');
is(scalar(grep { length($_) >= 8000 } @hints), 0, 'no notification reached 8000 bytes');

$listener->quit;
$node->stop;
done_testing();
