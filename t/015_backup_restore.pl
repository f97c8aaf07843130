# pg_dump keeps imgmod's data: a dump restored into a new database (the
# restore creates the extension) has the same images, versions, variants,
# jobs, events, audit rows and the operator's presets; fetch() returns the
# same bytes; the sequences continue where they were.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm gradient_ppm ppm_to_jpeg start_node upload_bytes replace_bytes);

my $node = start_node('backup');
# An operator's own preset and an edited seeded one, both rendered.
$node->safe_psql('postgres', q{
	INSERT INTO imgmod.presets (name, width, height, fit) VALUES ('square', 200, 200, 'pad');
	UPDATE imgmod.presets SET quality = 70 WHERE name = 'small';
});
my @ids = (upload_bytes($node, ppm_to_jpeg(upright_marked_ppm(640, 400), 90), 'one.jpg'),
	upload_bytes($node, ppm_to_jpeg(gradient_ppm(500, 300), 90), 'two.jpg'));
replace_bytes($node, $ids[1], ppm_to_jpeg(gradient_ppm(520, 320), 90), 'two-b.jpg');
for my $id (@ids)
{
	is($node->safe_psql('postgres', "SELECT imgmod.wait($id)"), 'ready', "image $id ready");
}
$node->psql('postgres', "SELECT imgmod.upload('\\x00'::bytea, 'junk.bin')");
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM imgmod.rejections"), 'a refusal is audited');

# What must survive, as text, table by table.
my %query = (
	images => "SELECT id, status, current_version, original_name, detected_format, sha256, width, height, created_at FROM imgmod.images ORDER BY id",
	image_versions => "SELECT image_id, version, status, master_sha256, hires_key, master_key, origin FROM imgmod.image_versions ORDER BY 1, 2",
	variants => "SELECT image_id, version, preset, width, height, bytes, object_key, etag FROM imgmod.variants ORDER BY 1, 2, 3",
	presets => "SELECT name, width, height, fit, quality, allow_upscale FROM imgmod.presets ORDER BY name",
	jobs => "SELECT id, image_id, version, kind, state, attempts FROM imgmod.jobs ORDER BY id",
	events => "SELECT id, image_id, status, payload FROM imgmod.events ORDER BY id",
	rejections => "SELECT id, reason, claimed_name, sha256 FROM imgmod.rejections ORDER BY id",
);
my %before = map { $_ => $node->safe_psql('postgres', $query{$_}) } keys %query;
my %fetched = map { $_ => $node->safe_psql('postgres', "SELECT md5(imgmod.fetch($_, 'square')) || md5(imgmod.fetch($_, 'original'))") } @ids;
my $installation = $node->safe_psql('postgres', 'SELECT id FROM imgmod.installation');

my $dump = $node->basedir . '/imgmod.dump';
$node->command_ok(['pg_dump', '-Fc', '-d', $node->connstr('postgres'), '-f', $dump], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(['pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump],
	'pg_restore into a new database, which creates the extension');

for my $t (sort keys %query)
{
	my $after = $node->safe_psql('restored', $query{$t});
	ok(length($before{$t}) > 0, "$t had rows");
	is($after, $before{$t}, "$t restored row for row");
}
is($node->safe_psql('restored', "SELECT count(*) FROM imgmod.presets WHERE name IN ('large', 'medium', 'small', 'thumb', 'square')"),
	'5', 'seeded presets once each, the edited one with its edit, and the operator\'s own');
for my $id (@ids)
{
	is($node->safe_psql('restored', "SELECT md5(imgmod.fetch($id, 'square')) || md5(imgmod.fetch($id, 'original'))"),
		$fetched{$id}, "fetch() of image $id returns the same bytes after the restore");
}
isnt($node->safe_psql('restored', 'SELECT id FROM imgmod.installation'), $installation,
	'the restored database is a new installation (its Redis keys are its own)');

# The sequences were restored: the next upload, job and event get fresh ids.
my $max = $node->safe_psql('restored', 'SELECT max(id) FROM imgmod.images');
my $path = $node->basedir . '/next.jpg';
ImgmodTest::write_binary($path, ppm_to_jpeg(upright_marked_ppm(64, 64), 90));
my $next = $node->safe_psql('restored', "SELECT imgmod.upload(pg_read_binary_file('$path'), 'next.jpg')");
cmp_ok($next, '>', $max, "the next upload gets a fresh id ($next > $max)");
is($node->safe_psql('restored', "SELECT count(*) FROM imgmod.events WHERE image_id = $next"), '1',
	'its event has a fresh id too (no primary-key clash)');

$node->stop;
done_testing();
