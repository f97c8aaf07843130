# Workers render every preset of every upload: right dimensions, decodable,
# no metadata marker and no byte of the source's metadata, and every EXIF
# orientation comes out upright.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm ppm_to_jpeg jpegtran inverse_op_for with_metadata
  jpeg_segments jpeg_size decode_ppm pixel start_node upload_bytes canary);

my $node = start_node('render');

# 320x176 and 1200x656 are whole 16x16 MCUs (orientation applied losslessly),
# 322x178 is not (orientation needs a re-encode); 1200x656 is also larger than
# the medium and small presets, so it is downscaled after orienting.
my %uploads;
for my $size ([ 320, 176 ], [ 322, 178 ], [ 1200, 656 ])
{
	my ($w, $h) = @$size;
	my $upright = ppm_to_jpeg(upright_marked_ppm($w, $h), 92, '-sample', '2x2');
	for my $n (1 .. 8)
	{
		my $stored = @{ inverse_op_for($n) } ? jpegtran($upright, @{ inverse_op_for($n) }) : $upright;
		my $file = with_metadata($stored, $n);
		like($file, qr/\Q${\canary()}\E-EXIF/, "fixture ${w}x${h} orientation $n carries EXIF");
		my $id = upload_bytes($node, $file, "orient_${n}_${w}x${h}.jpg");
		$uploads{$id} = { n => $n, w => $w, h => $h };
	}
}

# Presets: large/medium/small are widths 1920/1024/512 (contain), thumb is a
# 256x256 cover; nothing is ever upscaled.
sub expected_size
{
	my ($w, $h, $preset) = @_;
	if ($preset eq 'thumb')
	{
		my $side = $w < $h ? $w : $h;
		$side = 256 if $side > 256;
		return ($side, $side);
	}
	my $box = { large => 1920, medium => 1024, small => 512 }->{$preset};
	return ($w, $h) if $w <= $box;
	return ($box, int($h * $box / $w + 0.5));
}

my $ids = join(',', sort { $a <=> $b } keys %uploads);
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM imgmod.images WHERE id IN ($ids) AND status <> 'ready'"),
	'every upload becomes ready');

is( $node->safe_psql('postgres',
		"SELECT string_agg(DISTINCT master_method, ',') FROM imgmod.image_versions WHERE image_id IN ($ids)"),
	'lossless,reencoded', 'both master paths were taken');

for my $id (sort { $a <=> $b } keys %uploads)
{
	my $u = $uploads{$id};
	my $tag = "image $id (orientation $u->{n}, $u->{w}x$u->{h})";
	for my $preset (qw(large medium small thumb))
	{
		my $hex = $node->safe_psql('postgres', "SELECT encode(imgmod.fetch($id, '$preset'), 'hex')");
		my $jpeg = pack('H*', $hex);
		my ($w, $h) = jpeg_size($jpeg);
		my ($ew, $eh) = expected_size($u->{w}, $u->{h}, $preset);
		is("${w}x$h", "${ew}x$eh", "$tag $preset: dimensions");

		my @markers = map { sprintf('%02X', $_->[0]) } jpeg_segments($jpeg);
		ok(!(grep { $_ eq 'E1' || $_ eq 'ED' || $_ eq 'FE' || $_ eq 'E2' } @markers),
			"$tag $preset: no APP1/APP2/APP13/COM (markers: @markers)");
		unlike($jpeg, qr/IMGMOD-CANARY|Exif\0\0|Photoshop|http:\/\/ns.adobe.com/,
			"$tag $preset: no byte of the source metadata");
		is(substr($jpeg, -2), "\xFF\xD9", "$tag $preset: ends at EOI");

		next if $preset eq 'thumb';
		my $img = decode_ppm($jpeg);
		my @tl = pixel($img, 8, 8);
		my @tr = pixel($img, $img->{w} - 9, 8);
		my @mid = pixel($img, int($img->{w} / 2), int($img->{h} * 3 / 4));
		ok($tl[0] > 170 && $tl[2] < 90, "$tag $preset: top-left is red (@tl)");
		ok($tr[2] > 170 && $tr[0] < 90, "$tag $preset: top-right is blue (@tr)");
		ok(abs($mid[0] - $mid[2]) < 20, "$tag $preset: the rest is grey (@mid)");
	}
}

# Every status change reached the outbox, in order, per image.
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM imgmod.images i WHERE i.id IN ($ids) AND "
		  . "(SELECT string_agg(status, ',' ORDER BY id) FROM imgmod.events e WHERE e.image_id = i.id) "
		  . "<> 'received,stored,rendered,rendered,rendered,rendered,ready'"),
	'0', 'each image has exactly the events received, stored, rendered (one per preset), ready, in order');

# Stored objects exist where the rows say.
my $keys = $node->safe_psql('postgres', "SELECT string_agg(object_key, ' ') FROM imgmod.variants WHERE image_id IN ($ids)");
my $missing = grep { !-f $node->data_dir . "/imgmod/store/$_" } split / /, $keys;
is($missing, 0, 'every variant object is in the embedded store');
my $hires = $node->safe_psql('postgres', "SELECT string_agg(hires_key, ' ') FROM imgmod.image_versions WHERE image_id IN ($ids)");
$missing = grep { !-f $node->data_dir . "/imgmod/hires-store/$_" } split / /, $hires;
is($missing, 0, 'every full-resolution master is in the hi-res store');

$node->stop;
done_testing();
