# A render that finds idle cores uses them (imgmod.render_threads), and its
# variants are the same bytes as a render on one thread: each image is
# rendered once with render_threads = 1, then replaced by the same bytes
# with render_threads = 2, and every variant's etag (MD5) must match.
# imgmod.render_stats counts renders by the threads they got.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(gradient_ppm upright_marked_ppm ppm_to_jpeg start_node upload_bytes replace_bytes within);

# one worker: renders one at a time, so the other core is idle
my $node = start_node('render_threads', workers => 1, conf => "imgmod.render_threads = 1");

sub stats
{
	my %by = split /[|\n]/, $node->safe_psql('postgres',
		"SELECT threads, renders FROM imgmod.render_stats ORDER BY threads");
	return \%by;
}

# A render takes a second thread only while a core is idle
# (/proc/loadavg's runnable count below the cores), so the checks that
# need one first wait until nothing else runs here: this script itself
# is the one runnable task, three reads in a row.
sub wait_idle
{
	my $calm = 0;
	return within(60, sub {
		open(my $fh, '<', '/proc/loadavg') or die "no /proc/loadavg: $!";
		my ($running) = (<$fh> =~ m{^\S+ \S+ \S+ (\d+)/});
		close $fh;
		$calm = $running <= 1 ? $calm + 1 : 0;
		return $calm >= 3;
	});
}

sub wait_ready
{
	my ($id) = @_;
	return $node->safe_psql('postgres', "SELECT imgmod.wait($id, '120 s')") eq 'ready';
}

sub etags
{
	my ($id, $version) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(preset || '=' || etag || ' ' || width || 'x' || height, ', ' ORDER BY preset)
		   FROM imgmod.variants WHERE image_id = $id AND version = $version");
}

is(stats()->{8}, 0, 'render_stats has a row for 8 threads');
is(scalar(keys %{ stats() }), 8, 'render_stats has rows for 1 to 8 threads');

# big enough for every step to be split (a 2048 px decode, the 1920 px preset)
my %images = (
	'4:2:0 gradient' => ppm_to_jpeg(gradient_ppm(3000, 2000), 90, '-sample', '2x2'),
	'4:4:4 marked' => ppm_to_jpeg(upright_marked_ppm(2600, 1800), 92, '-sample', '1x1'),
	'grey' => ppm_to_jpeg(upright_marked_ppm(2200, 2400), 90, '-grayscale'),
	'restart markers' => ppm_to_jpeg(gradient_ppm(2800, 1900), 88, '-restart', '2'),
);

my %ids;
for my $name (sort keys %images)
{
	$ids{$name} = upload_bytes($node, $images{$name}, "$name.jpg");
	ok(wait_ready($ids{$name}), "$name: ready on one thread");
}
my $before = stats();
is($before->{1}, scalar(keys %images), 'every render so far was on one thread');
is(join(',', map { $before->{$_} } 2 .. 8), '0,0,0,0,0,0,0', 'none on more');

$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.render_threads = 2; SELECT pg_reload_conf();");

# The worker reads the setting when the reload reaches it; renders with it
# use a second thread when a core is idle at that moment.  Up to 10
# uploads until one is counted with 2 threads.
my $warm = ppm_to_jpeg(gradient_ppm(2500, 1700), 85);
ok(defined wait_idle(), 'the machine has an idle core (nothing else runnable) within 60 s');
my $two = 0;
for my $try (1 .. 10)
{
	my $id = upload_bytes($node, $warm, "warm$try.jpg");
	ok(wait_ready($id), "warm-up $try ready") or last;
	$two = stats()->{2};
	last if $two > 0;
}
cmp_ok($two, '>=', 1, 'with render_threads = 2 on an idle core, a render used 2 threads');

my $at_two = stats()->{2};
for my $name (sort keys %images)
{
	my $id = $ids{$name};
	wait_idle();
	my $v = replace_bytes($node, $id, $images{$name}, "$name.jpg");
	is($v, 2, "$name: replaced by the same bytes");
	ok(wait_ready($id), "$name: version 2 ready");
	is( $node->safe_psql('postgres',
			"SELECT count(DISTINCT master_sha256) FROM imgmod.image_versions WHERE image_id = $id"),
		1, "$name: both versions have the same master");
	my ($one, $many) = (etags($id, 1), etags($id, 2));
	like($one, qr/large=.*medium=.*small=.*thumb=/, "$name: four variants ($one)");
	is($many, $one, "$name: the same variant bytes (MD5) and sizes with render_threads = 2");
}
my $after = stats();
cmp_ok($after->{2} - $at_two, '>=', 1,
	'at least one of the compared renders used 2 threads (' . ($after->{2} - $at_two) . ' of ' . scalar(keys %images) . ')');
is(join(',', map { $after->{$_} } 3 .. 8), '0,0,0,0,0,0', 'never more than render_threads');

# Back to one thread: no render is split any more.
$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.render_threads = 1; SELECT pg_reload_conf();");
my $settled = within(30, sub {
	my $id = upload_bytes($node, $warm, 'settle.jpg');
	wait_ready($id);
	my $s = stats();
	my $again = upload_bytes($node, $warm, 'check.jpg');
	wait_ready($again);
	return stats()->{2} == $s->{2};
});
ok(defined $settled, 'after render_threads = 1 is read, a render is counted on one thread only');

# Privileges: the counters are for operators.
$node->safe_psql('postgres', "CREATE ROLE app LOGIN IN ROLE imgmod_app; CREATE ROLE ops LOGIN IN ROLE imgmod_admin;");
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM imgmod.render_stats', extra_params => [ '-U', 'app' ]);
like($err, qr/permission denied for view render_stats/, 'imgmod_app cannot read render_stats');
is( $node->safe_psql('postgres', 'SELECT count(*) FROM imgmod.render_stats', extra_params => [ '-U', 'ops' ]),
	8, 'imgmod_admin reads render_stats');

$node->stop;
done_testing();
