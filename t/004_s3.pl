# The S3 backend against a real SigV4-verifying server (Ceph RGW, started by
# scripts/services.sh): two stores with their own credentials, one PUT per
# object and no GET while rendering, clear errors for bad credentials with
# recovery after the fix, and an outage of the server mid-batch.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm ppm_to_jpeg start_node upload_bytes services service_conf
  require_services jpeg_size);

require_services(qw(IMGMOD_S3_ENDPOINT IMGMOD_S3_BUCKET IMGMOD_S3_ACCESS_KEY IMGMOD_S3_SECRET_KEY
  IMGMOD_HIRES_S3_ENDPOINT IMGMOD_HIRES_S3_BUCKET IMGMOD_HIRES_S3_ACCESS_KEY IMGMOD_HIRES_S3_SECRET_KEY));

# Start with a wrong secret for the main store: the first jobs must fail
# with the server's error code, and succeed once the setting is fixed.
my $conf = service_conf(s3 => 1);
$conf =~ s/imgmod.s3_secret_key = '[^']*'/imgmod.s3_secret_key = 'not-the-secret'/;
my $node = start_node('s3', conf => join("\n", $conf,
	"imgmod.max_attempts = 1000", "imgmod.retry_max_delay = '500ms'", "imgmod.s3_timeout = '5s'"));
my $jpeg = ppm_to_jpeg(upright_marked_ppm(640, 400), 90);

my $bad = upload_bytes($node, $jpeg, 'badcreds.jpg');
ok($node->poll_query_until('postgres',
		"SELECT last_error LIKE '%SignatureDoesNotMatch%' FROM imgmod.jobs WHERE image_id = $bad"),
	'wrong secret: the job records the server error code');
my $err = $node->safe_psql('postgres', "SELECT last_error FROM imgmod.jobs WHERE image_id = $bad");
like($err, qr/HTTP 403/, "the error names the HTTP status: $err");
like($err, qr/after 1 attempt\(s\)/, 'a 403 is not retried within the attempt (an operator must act)');
unlike($err, qr/not-the-secret|\Q$ENV{IMGMOD_S3_SECRET_KEY}\E/, 'no secret in the error');
# It keeps being retried (status failed or, during an attempt, processing).
is($node->safe_psql('postgres',
		"SELECT i.status IN ('failed', 'processing') AND j.state IN ('queued', 'running') "
		  . "FROM imgmod.images i JOIN imgmod.jobs j ON j.image_id = i.id WHERE i.id = $bad"),
	't', 'the image is not ready and its job waits for the next attempt: nothing is lost');
unlike(slurp_file($node->logfile), qr/not-the-secret|\Q$ENV{IMGMOD_S3_SECRET_KEY}\E/, 'no secret in the server log');

$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.s3_secret_key = '$ENV{IMGMOD_S3_SECRET_KEY}'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $bad"),
	'after the fix and a reload the same job completes');

# Counters from here on.
$node->restart;
my @ids = map { upload_bytes($node, $jpeg, "s3_$_.jpg") } 1 .. 5;
my $ids = join(',', @ids);
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM imgmod.images WHERE id IN ($ids) AND status <> 'ready'"),
	'five uploads ready against S3');
is($node->safe_psql('postgres',
		"SELECT string_agg(store || ' ' || verb || ' ' || requests, ', ' ORDER BY store, verb) FROM imgmod.stats WHERE requests > 0"),
	'hires PUT 5, main PUT 25', 'one PUT per object (master + 4 presets, 1 hi-res each), no GET while rendering');
is($node->safe_psql('postgres', "SELECT backend FROM imgmod.stats WHERE store = 'hires' AND verb = 'PUT'"), 's3',
	'the hi-res store is S3 too');

my $hex = $node->safe_psql('postgres', "SELECT encode(imgmod.fetch($ids[0], 'small'), 'hex')");
my ($w, $h) = jpeg_size(pack('H*', $hex));
is("${w}x$h", '512x320', 'fetch() reads the variant back from S3');
is($node->safe_psql('postgres', "SELECT requests FROM imgmod.stats WHERE store = 'main' AND verb = 'GET'"), '1',
	'that was the only GET');

# --- the S3 server stops while 50 uploads are in flight ---------------------
services('stop', 's3');
@ids = map { upload_bytes($node, $jpeg, "outage_$_.jpg") } 1 .. 50;
$ids = join(',', @ids);
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM imgmod.jobs WHERE image_id IN ($ids) AND attempts > 0 AND last_error IS NOT NULL"),
	'uploads during the outage fail and wait');
is($node->safe_psql('postgres', "SELECT count(*) FROM imgmod.images WHERE id IN ($ids) AND status = 'ready'"), '0',
	'nothing is ready while the server is down');
services('start', 's3');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM imgmod.images WHERE id IN ($ids) AND status <> 'ready'"),
	'after the server is back every upload becomes ready');
is($node->safe_psql('postgres', "SELECT count(*) FROM imgmod.variants WHERE image_id IN ($ids)"), '200',
	'every variant row is there');
for my $id ($ids[0], $ids[-1])
{
	my $len = $node->safe_psql('postgres', "SELECT length(imgmod.fetch($id, 'thumb'))");
	ok($len > 1000, "image $id: its thumb object is in S3 ($len bytes)");
}

$node->stop;
done_testing();
