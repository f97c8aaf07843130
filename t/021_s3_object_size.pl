# imgmod.fetch() reads an object from S3 only up to the size the database
# recorded for it: a store holding more (or fewer) bytes than imgmod wrote
# is refused with an error that says so, instead of being read whole.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm ppm_to_jpeg start_node upload_bytes service_conf
  require_services s3_put write_binary);

require_services(qw(IMGMOD_S3_ENDPOINT IMGMOD_S3_BUCKET IMGMOD_S3_ACCESS_KEY IMGMOD_S3_SECRET_KEY
  IMGMOD_HIRES_S3_ENDPOINT IMGMOD_HIRES_S3_BUCKET IMGMOD_HIRES_S3_ACCESS_KEY IMGMOD_HIRES_S3_SECRET_KEY));

my $node = start_node('s3_size', conf => service_conf(s3 => 1));
my $jpeg = ppm_to_jpeg(upright_marked_ppm(640, 400), 90);
my $id = upload_bytes($node, $jpeg, 'sized.jpg');
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $id"),
	'the image is ready on S3');

my ($key, $bytes) = split /\|/, $node->safe_psql('postgres',
	"SELECT object_key, bytes FROM imgmod.variants WHERE image_id = $id AND preset = 'small'");
my $good = $node->safe_psql('postgres', "SELECT encode(imgmod.fetch($id, 'small'), 'hex')");
is(length($good) / 2, $bytes, 'the stored object has the recorded size and is served');

# Someone with the store's keys replaces the object behind imgmod's back.
sub replace_object
{
	my ($store, $object_key, $content) = @_;
	my $path = $node->basedir . '/replacement.bin';
	write_binary($path, $content);
	is(s3_put($store, $object_key, $path), '200', 'the object was overwritten directly in S3 (' . length($content) . ' bytes)');
}

sub fetch_error
{
	my ($preset) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', "SELECT length(imgmod.fetch($id, '$preset'))");
	return $err;
}

my $original = pack('H*', $good);
replace_object('main', $key, $original . 'x');
like(fetch_error('small'), qr/is larger than the $bytes bytes imgmod recorded for it/,
	'one byte more than recorded: refused with a clear error');

replace_object('main', $key, $original . ('x' x (4 * 1024 * 1024)));
like(fetch_error('small'), qr/is larger than the $bytes bytes imgmod recorded for it; refusing it/,
	'4 MiB more than recorded: the transfer is cut off at the recorded size and refused');

replace_object('main', $key, substr($original, 0, 100));
like(fetch_error('small'), qr/is smaller than the $bytes bytes imgmod recorded for it \(100 bytes\)/,
	'fewer bytes than recorded: refused too');

my ($hires_key, $hires_bytes) = split /\|/, $node->safe_psql('postgres',
	"SELECT hires_key, hires_bytes FROM imgmod.image_versions WHERE image_id = $id");
my $hires = pack('H*', $node->safe_psql('postgres', "SELECT encode(imgmod.fetch($id, 'original'), 'hex')"));
is(length($hires), $hires_bytes, 'the full-resolution master is served at its recorded size');
replace_object('hires', $hires_key, $hires . ('y' x 70000));
like(fetch_error('original'), qr/is larger than the $hires_bytes bytes imgmod recorded for it/,
	'the hi-res store is bounded by the recorded size too');

replace_object('main', $key, $original);
is($node->safe_psql('postgres', "SELECT encode(imgmod.fetch($id, 'small'), 'hex')"), $good,
	'with the right bytes back the variant is served again');
like($node->safe_psql('postgres', "SELECT failures FROM imgmod.stats WHERE store = 'main' AND verb = 'GET'"),
	qr/^3$/, 'each refused read counts as a failed GET');

$node->stop;
done_testing();
