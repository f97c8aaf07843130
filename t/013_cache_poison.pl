# Nothing read back from a cache is trusted.  Bytes under imgmod's Redis keys
# that are not what PostgreSQL recorded for that object (written by someone
# else, or left from before a restore reissued the image ids) are discarded,
# counted as poisoned and deleted; the pipeline uses its own copy.  The
# full-resolution original is handed out only if it is the normaliser's
# output.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Digest::MD5 qw(md5_hex);
use Digest::SHA qw(sha256_hex);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm gradient_ppm ppm_to_jpeg start_node upload_bytes service_conf
  require_services write_binary);

require_services(qw(IMGMOD_REDIS_URL));
my ($rhost, $rport) = $ENV{IMGMOD_REDIS_URL} =~ m{redis://(?:[^@]*@)?([^:/]+):?(\d*)};
$rport ||= 6379;
sub redis_cli { my $out = `redis-cli -h $rhost -p $rport @_`; chomp $out; return $out; }

# Put binary bytes under a key, the way any client of the same Redis could.
sub redis_set_bytes
{
	my ($key, $bytes) = @_;
	my $f = PostgreSQL::Test::Utils::tempdir() . '/value.bin';
	write_binary($f, $bytes);
	is(redis_cli("-x SET $key < $f"), 'OK', "planted " . length($bytes) . " foreign bytes under $key");
}

redis_cli('FLUSHDB');
my $node = start_node('poison', workers => 1, conf => service_conf(redis => 1));
sub poisoned { $node->safe_psql('postgres', "SELECT total FROM imgmod.cache_stats WHERE counter = 'poisoned'") }
my $inst = $node->safe_psql('postgres', 'SELECT id FROM imgmod.installation');
my $next = $node->safe_psql('postgres',
	'SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM imgmod.images_id_seq');
is(poisoned(), '0', 'nothing poisoned yet');

# A valid JPEG of other content and size: had it been used, the variants
# and the original would show its 1000x100 geometry.
my $foreign = ppm_to_jpeg(gradient_ppm(1000, 100), 90);
redis_set_bytes("imgmod:$inst:$next:v1:source", $foreign);
redis_set_bytes("imgmod:$inst:$next:v1:medium", $foreign);

my $jpeg = ppm_to_jpeg(upright_marked_ppm(640, 400), 90);
my $id = upload_bytes($node, $jpeg, 'real.jpg');
is($id, $next, "the upload got the id whose keys were planted ($id)");
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $id"), 'ready');
is(poisoned(), '1', 'the planted source was read, found not to match the master digest, and counted');
is($node->safe_psql('postgres', "SELECT total FROM imgmod.cache_stats WHERE counter = 'hit'"), '0',
	'and it did not count as a hit');
is($node->safe_psql('postgres',
		"SELECT string_agg(preset || ' ' || width || 'x' || height, ', ' ORDER BY preset) FROM imgmod.variants WHERE image_id = $id"),
	'large 640x400, medium 640x400, small 512x320, thumb 256x256', 'the variants were rendered from the real image');
my $master_sha = $node->safe_psql('postgres', "SELECT master_sha256 FROM imgmod.image_versions WHERE image_id = $id");
my $original = $node->safe_psql('postgres', "SELECT encode(imgmod.fetch($id, 'original'), 'hex')");
is(sha256_hex(pack('H*', $original)), $master_sha, 'the hi-res original is the normalised master');
isnt(sha256_hex(pack('H*', $original)), sha256_hex($foreign), 'not the planted bytes');
is(sha256_hex(`redis-cli -h $rhost -p $rport --raw GET imgmod:$inst:$id:v1:source | head -c -1`), $master_sha,
	'the source key now holds the real master (the worker wrote it after discarding the planted one)');

# fetch() reads a variant from Redis only if it hashes to its ETag.
my ($etag) = $node->safe_psql('postgres', "SELECT etag FROM imgmod.variants WHERE image_id = $id AND preset = 'medium'")
  =~ /"([0-9a-f]{32})"/;
ok($etag, "the variant's ETag is an MD5 ($etag)");
my $hits = $node->safe_psql('postgres', "SELECT total FROM imgmod.cache_stats WHERE counter = 'hit'");
is(md5_hex(pack('H*', $node->safe_psql('postgres', "SELECT encode(imgmod.fetch($id, 'medium'), 'hex')"))), $etag,
	'fetch() returns the variant');
is($node->safe_psql('postgres', "SELECT total FROM imgmod.cache_stats WHERE counter = 'hit'"), $hits + 1,
	'from Redis (a verified hit)');
redis_set_bytes("imgmod:$inst:$id:v1:medium", $foreign);
is(md5_hex(pack('H*', $node->safe_psql('postgres', "SELECT encode(imgmod.fetch($id, 'medium'), 'hex')"))), $etag,
	'with foreign bytes under the key, fetch() still returns the real variant (from the store)');
is(poisoned(), '2', 'the foreign variant was counted as poisoned');
is(redis_cli("EXISTS imgmod:$inst:$id:v1:medium"), '0', 'and its key deleted');
like(slurp_file($node->logfile), qr/discarded \d+ bytes read from Redis key "imgmod:$inst:$id:v1:medium"/,
	'the log names the key (never the bytes)');

# The hi-res store is checked too: an object swapped under the original's
# key is refused, not handed out, even with the recorded size (one byte of
# the real master changed in the middle).
my $hires_key = $node->safe_psql('postgres', "SELECT hires_key FROM imgmod.image_versions WHERE image_id = $id");
my $swapped = pack('H*', $original);
substr($swapped, length($swapped) / 2, 1) = chr(ord(substr($swapped, length($swapped) / 2, 1)) ^ 0x55);
write_binary($node->data_dir . "/imgmod/hires-store/$hires_key", $swapped);
my ($rc, $out, $err) = $node->psql('postgres', "SELECT length(imgmod.fetch($id, 'original'))");
isnt($rc, 0, 'fetch of a swapped original fails');
like($err, qr/the full-resolution master of image $id in the hi-res store is not the one imgmod stored/,
	'with a message that says why');

$node->stop;
done_testing();
