# imgmod.edit() and imgmod.revert() end to end, on the embedded store: the
# pixels of each op and of chains (checked at the marked corners of a
# generated picture), lossless chains that give back the original's pixels
# exactly, the focal point moving a cover crop, what an edit reads and
# writes in the stores, concurrent edits, and an edit reaching a browser
# through the origin and the Varnish edge.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Digest::MD5 qw(md5_hex);
use IPC::Run;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(within upright_marked_ppm ppm_to_jpeg start_node upload_bytes decode_ppm pixel);
use OriginTest qw(start_origin stop_origin);
use EdgeTest qw(start_edge stop_edge edge_get);

my $edge_port = PostgreSQL::Test::Cluster::get_free_port();
my $node = start_node('edit', conf => join("\n",
	"imgmod.superseded_retention = '1h'",
	"imgmod.cdn_purge_urls = 'http://127.0.0.1:$edge_port/'"));

sub sql { return $node->safe_psql('postgres', $_[0]); }

# 640 x 480 (a whole number of 16 x 16 MCUs): a grey gradient, a red block
# top-left and a blue block top-right, 120 pixels each.
my ($W, $H, $B) = (640, 480, 120);
my $id = upload_bytes($node, ppm_to_jpeg(upright_marked_ppm($W, $H, $B), 92), 'marked.jpg');
is(sql("SELECT imgmod.wait($id)"), 'ready', 'the marked picture is ready');
is(sql("SELECT master_method FROM imgmod.image_versions WHERE image_id = $id AND version = 1"), 'lossless',
	'its master kept the JPEG coefficients');

sub master { my ($v) = @_; return decode_ppm(sql_bytes("SELECT imgmod.fetch($id, 'original', $v)")); }

sub sql_bytes
{
	my ($query) = @_;
	my $hex = sql("SELECT encode(($query), 'hex')");
	return pack('H*', $hex);
}

sub edit
{
	my ($ops, $base) = @_;
	my $v = sql("SELECT imgmod.edit($id, '$ops'" . (defined $base ? ", $base" : '') . ")");
	is(sql("SELECT imgmod.wait($id)"), 'ready', "edit $ops (version $v) is ready");
	return $v;
}

sub colour_is
{
	my ($img, $x, $y, $want, $what) = @_;
	my @p = pixel($img, $x, $y, 3);
	my %ref = (red => [230, 20, 20], blue => [20, 20, 230], white => [255, 255, 255]);
	my $ok;
	if ($want eq 'grey')
	{
		$ok = abs($p[0] - $p[1]) < 12 && abs($p[1] - $p[2]) < 12;
	}
	else
	{
		$ok = !grep { abs($p[$_] - $ref{$want}[$_]) > 24 } 0 .. 2;
	}
	ok($ok, "$what: $want at ($x, $y)") or diag(sprintf('got %.0f %.0f %.0f', @p));
}

sub same_pixels
{
	my ($a, $b) = @_;
	return $a->{w} == $b->{w} && $a->{h} == $b->{h} && $a->{data} eq $b->{data};
}

my $original = master(1);
is("$original->{w}x$original->{h}", "${W}x$H", 'version 1 is 640 x 480');

# --- each op: geometry and the marked corners
my $m = 60;    # middle of a block
my $v = edit('[{"op":"rotate","degrees":90}]', 1);
my $img = master($v);
is("$img->{w}x$img->{h}", "${H}x$W", 'rotate 90: sides swapped');
colour_is($img, $H - $m, $m, 'red', 'rotate 90 clockwise: the top-left corner goes top-right');
colour_is($img, $H - $m, $W - $m, 'blue', 'rotate 90 clockwise: the top-right corner goes bottom-right');
is(sql("SELECT master_method FROM imgmod.image_versions WHERE image_id = $id AND version = $v"), 'lossless',
	'rotate 90: done on the coefficients');
ok(same_pixels($img, decode_ppm(ImgmodTest::jpegtran(sql_bytes("SELECT imgmod.fetch($id, 'original', 1)"), '-rotate', '90', '-perfect'))),
	'rotate 90: the very pixels of jpegtran -rotate 90 -perfect');

my $flip = edit('[{"op":"flip","axis":"horizontal"}]', 1);
$img = master($flip);
colour_is($img, $m, $m, 'blue', 'flip horizontal: blue top-left');
colour_is($img, $W - $m, $m, 'red', 'flip horizontal: red top-right');
$v = edit('[{"op":"flip","axis":"vertical"}]', 1);
$img = master($v);
colour_is($img, $m, $H - $m, 'red', 'flip vertical: red bottom-left');
colour_is($img, $W - $m, $H - $m, 'blue', 'flip vertical: blue bottom-right');

$v = edit('[{"op":"crop","x":0,"y":0,"width":320,"height":240}]', 1);
$img = master($v);
is("$img->{w}x$img->{h}", '320x240', 'crop: 320 x 240');
colour_is($img, $m, $m, 'red', 'crop: the red block stays');
colour_is($img, 300, $m, 'grey', 'crop: no blue block');
is(sql("SELECT master_method FROM imgmod.image_versions WHERE image_id = $id AND version = $v"), 'lossless',
	'an MCU-aligned crop is lossless');
$v = edit('[{"op":"crop","x":0.5,"y":0,"width":0.5,"height":0.5,"unit":"ratio"}]', 1);
$img = master($v);
is("$img->{w}x$img->{h}", '320x240', 'ratio crop: half of each side');
colour_is($img, 320 - $m, $m, 'blue', 'ratio crop of the right half: the blue block');
$v = edit('[{"op":"crop","x":5,"y":3,"width":301,"height":200}]', 1);
$img = master($v);
is("$img->{w}x$img->{h}", '301x200', 'an unaligned crop: 301 x 200');
colour_is($img, $m - 5, $m - 3, 'red', 'unaligned crop: red block moved by the offset');
is(sql("SELECT master_method FROM imgmod.image_versions WHERE image_id = $id AND version = $v"), 'reencoded',
	'an unaligned crop is decoded and encoded once');

$v = edit('[{"op":"pad","aspect":"1:1","background":"#ffffff"}]', 1);
$img = master($v);
is("$img->{w}x$img->{h}", '640x640', 'pad 1:1: a square');
colour_is($img, 320, 40, 'white', 'pad: white band at the top');
colour_is($img, 320, 600, 'white', 'pad: white band at the bottom');
colour_is($img, $m, 80 + $m, 'red', 'pad: the picture centred (red block 80 pixels down)');

# --- chains
$v = edit('[{"op":"rotate","degrees":180},{"op":"flip","axis":"vertical"}]', 1);
ok(same_pixels(master($v), master($flip)), 'rotate 180 then flip vertical: exactly the pixels of flip horizontal');
$v = edit('[{"op":"rotate","degrees":90},{"op":"crop","x":0.5,"y":0,"width":0.5,"height":0.5,"unit":"ratio"},{"op":"pad","aspect":"1:1"}]', 1);
$img = master($v);
is("$img->{w}x$img->{h}", '320x320', 'rotate 90, crop the top-right quarter (240 x 320), pad to 1:1: 320 x 320');
colour_is($img, 160, 160, 'grey', 'chain: the middle is the picture');
colour_is($img, 20, 160, 'white', 'chain: padded at the left');
colour_is($img, 300, 160, 'white', 'chain: padded at the right');
colour_is($img, 40 + 240 - $m, $m, 'red', 'chain: the red block, rotated to the top-right of the quarter');

# --- no generation loss
my $prev = 1;
for my $n (1 .. 4) { $prev = edit('[{"op":"rotate","degrees":90}]', $prev); }
ok(same_pixels(master($prev), $original), 'four rotate-90 edits in a row give back the original pixels exactly');
is(sql("SELECT string_agg(DISTINCT master_method, ',') FROM imgmod.image_versions WHERE image_id = $id AND version > $prev - 4"),
	'lossless', 'every one of them lossless');
my %op = (r90 => '{"op":"rotate","degrees":90}', r180 => '{"op":"rotate","degrees":180}',
	r270 => '{"op":"rotate","degrees":270}', fh => '{"op":"flip","axis":"horizontal"}',
	fv => '{"op":"flip","axis":"vertical"}');
# ten edits whose net effect is nothing
$prev = 1;
$prev = edit("[$op{$_}]", $prev) for qw(r90 r180 fv fh r180 r270 r270 fv r270 fh);
ok(same_pixels(master($prev), $original), 'ten mixed lossless edits in a row give back the original pixels exactly');

# lossy edits (unaligned crops, pads) do not compound: each edit is replayed
# with those before it on the oldest master, so ten edits in a row give the
# very master one edit of the whole chain gives
my @lossy = ('{"op":"crop","x":3,"y":5,"width":600,"height":440}', '{"op":"pad","aspect":"1:1"}',
	'{"op":"rotate","degrees":90}', '{"op":"crop","x":7,"y":1,"width":500,"height":590}',
	'{"op":"flip","axis":"vertical"}', '{"op":"pad","aspect":"4:3","background":"#000000"}',
	'{"op":"crop","x":0.05,"y":0.02,"width":0.9,"height":0.9,"unit":"ratio"}', '{"op":"rotate","degrees":270}',
	'{"op":"crop","x":11,"y":9,"width":400,"height":300}', '{"op":"flip","axis":"horizontal"}');
$prev = 1;
$prev = edit("[$_]", $prev) for @lossy;
my $once = edit('[' . join(',', @lossy) . ']', 1);
is(sql("SELECT master_method FROM imgmod.image_versions WHERE image_id = $id AND version = $prev"), 'reencoded',
	'ten lossy edits: re-encoded');
is(md5_hex(sql_bytes("SELECT imgmod.fetch($id, 'original', $prev)")), md5_hex(sql_bytes("SELECT imgmod.fetch($id, 'original', $once)")),
	'ten lossy edits in a row: byte for byte the master of one edit with the whole chain (one generation, no loss added)');

# --- the focal point moves the cover crop (thumb: 256 x 256 cover)
my $plain_thumb = decode_ppm(sql_bytes("SELECT imgmod.fetch($id, 'thumb', 1)"));
colour_is($plain_thumb, 128, 128, 'grey', 'without a focal point the thumb is the centre');
$v = edit('[{"op":"focus","x":0.95,"y":0.1,"unit":"ratio"}]', 1);
is(sql("SELECT round(focus_x::numeric, 2) || ',' || round(focus_y::numeric, 2) FROM imgmod.image_versions WHERE image_id = $id AND version = $v"),
	'0.95,0.10', 'the focal point is recorded');
is(sql("SELECT master_sha256 FROM imgmod.image_versions WHERE image_id = $id AND version = $v"),
	sql("SELECT master_sha256 FROM imgmod.image_versions WHERE image_id = $id AND version = 1"),
	'a focal point alone leaves the master as it was');
my $focus_thumb = decode_ppm(sql_bytes("SELECT imgmod.fetch($id, 'thumb', $v)"));
colour_is($focus_thumb, 256 - 30, 30, 'blue', 'with the focal point top-right the thumb shows the blue block');
colour_is($focus_thumb, 10, 30, 'grey', 'and not the red one');
$v = edit('[{"op":"flip","axis":"horizontal"}]', $v);
is(sql("SELECT round(focus_x::numeric, 2) FROM imgmod.image_versions WHERE image_id = $id AND version = $v"),
	'0.05', 'a later flip carries the focal point along');
colour_is(decode_ppm(sql_bytes("SELECT imgmod.fetch($id, 'thumb', $v)")), 30, 30, 'blue',
	'and the thumb follows it (blue now top-left)');

# --- revert: the old master byte for byte, its pixels
$v = sql("SELECT imgmod.revert($id, 1)");
is(sql("SELECT imgmod.wait($id)"), 'ready', 'revert to version 1 is ready');
is(md5_hex(sql_bytes("SELECT imgmod.fetch($id, 'original', $v)")), md5_hex(sql_bytes("SELECT imgmod.fetch($id, 'original', 1)")),
	'revert: the master is version 1\'s byte for byte');
is(sql("SELECT origin || ' of ' || base_version FROM imgmod.history($id) WHERE version = $v"), 'revert of 1', 'history says so');

# --- what an edit costs the stores: one GET of the base master, one PUT per object
my $counts = "SELECT coalesce(sum(requests) FILTER (WHERE store = 'hires' AND verb = 'GET'), 0) || ',' || "
  . "coalesce(sum(requests) FILTER (WHERE store = 'main' AND verb = 'GET'), 0) || ',' || "
  . "coalesce(sum(requests) FILTER (WHERE verb = 'PUT'), 0) FROM imgmod.stats";
my @before = split /,/, sql($counts);
my $objects = 2 + sql("SELECT count(*) FROM imgmod.presets");
$v = edit('[{"op":"rotate","degrees":270}]', 1);
my @after = split /,/, sql($counts);
is($after[0] - $before[0], 1, 'an edit reads its base master with one GET from the hi-res store');
is($after[1] - $before[1], 0, 'and nothing from the main store (no variant, no compressed master)');
is($after[2] - $before[2], $objects, "and writes each of its $objects objects with one PUT");

# --- two edits at once: each its own version, the newer one current
my @runs;
for my $deg (90, 180)
{
	my ($out, $err) = ('', '');
	my $sql = "BEGIN; SELECT imgmod.edit($id, '[{\"op\":\"rotate\",\"degrees\":$deg}]'); SELECT pg_sleep(0.2); COMMIT;";
	push @runs, [ IPC::Run::start(['psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', $sql],
		'>', \$out, '2>', \$err), \$out, \$err ];
}
my @versions;
for my $r (@runs)
{
	$r->[0]->finish;
	my ($got) = ${ $r->[1] } =~ /^(\d+)$/m;
	push @versions, $got if defined $got;
	diag("psql: ${ $r->[1] } ${ $r->[2] }") unless defined $got;
}
is(scalar(@versions), 2, 'two concurrent edits both committed');
isnt($versions[0], $versions[1], 'each made its own version');
is(sql("SELECT imgmod.wait($id)"), 'ready', 'both rendered');
my $newest = $versions[0] > $versions[1] ? $versions[0] : $versions[1];
is(sql("SELECT current_version FROM imgmod.images WHERE id = $id"), $newest, 'the newer version is current');
is(sql("SELECT status FROM imgmod.image_versions WHERE image_id = $id AND version = " . ($newest == $versions[0] ? $versions[1] : $versions[0])),
	'superseded', 'the older one superseded');

# --- through the CDN: the origin and the Varnish edge
my $o = start_origin($node);
my $e = start_edge($node, $o, port => $edge_port);
ok(defined within(10, sub { sql("SELECT pending = 0 AND repeated = acknowledged FROM imgmod.cdn_purge_status") eq 't' }),
	'the edge is up to date');
my $cur = sql("SELECT current_version FROM imgmod.images WHERE id = $id");
my $before_edit = edge_get($e, "/i/$id/medium.jpg");
my $old_versioned = edge_get($e, "/i/$id/v$cur/medium.jpg");
is($before_edit->{headers}{etag}, sql("SELECT etag FROM imgmod.variants WHERE image_id = $id AND version = $cur AND preset = 'medium'"),
	'the edge serves the current version');
$v = sql("SELECT imgmod.edit($id, '[{\"op\":\"flip\",\"axis\":\"vertical\"}]')");
is(sql("SELECT imgmod.wait($id)"), 'ready', 'an edit through the CDN is ready');
my $want = sql("SELECT etag FROM imgmod.variants WHERE image_id = $id AND version = $v AND preset = 'medium'");
ok(defined within(1.0, sub { (edge_get($e, "/i/$id/medium.jpg")->{headers}{etag} // '') eq $want }),
	'within 1 s the unversioned URL serves the edited bytes through the edge');
is(md5_hex(edge_get($e, "/i/$id/medium.jpg")->{content}), sql("SELECT md5(imgmod.fetch($id, 'medium', $v))"),
	'the edited bytes');
my $still = edge_get($e, "/i/$id/v$cur/medium.jpg");
is(md5_hex($still->{content}), md5_hex($old_versioned->{content}), 'the previous version\'s immutable URL still serves the old bytes');
stop_edge($e);
is(stop_origin($o), 0, 'origin stops');


done_testing();
