# New versions against the real servers (Ceph RGW for both stores, Redis):
# imgmod.replace() renders version 2 while version 1 is served; when 2 is
# ready, version 1's Redis keys go at once and its objects in both S3
# stores after imgmod.superseded_retention; a purge that meets a stopped
# S3 server is retried until it completes; a version overtaken by a newer
# one before it was rendered is superseded and purged too; imgmod.delete()
# purges every version at once, even one whose render was under way.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm gradient_ppm ppm_to_jpeg jpeg_size start_node upload_bytes
  replace_bytes services service_conf require_services s3_head_status s3_head write_binary);

require_services(qw(IMGMOD_S3_ENDPOINT IMGMOD_S3_BUCKET IMGMOD_HIRES_S3_ENDPOINT IMGMOD_HIRES_S3_BUCKET
  IMGMOD_REDIS_URL));
my ($rhost, $rport) = $ENV{IMGMOD_REDIS_URL} =~ m{redis://(?:[^@]*@)?([^:/]+):?(\d*)};
$rport ||= 6379;
sub redis_cli { my $out = `redis-cli -h $rhost -p $rport @_`; chomp $out; return $out; }
# An empty KEYS answer only means something if Redis answers at all.
is(redis_cli('PING'), 'PONG', 'Redis answers');

my $node = start_node('versions', conf => join("\n", service_conf(s3 => 1, redis => 1),
	"imgmod.superseded_retention = '1h'", "imgmod.max_attempts = 1000",
	"imgmod.retry_max_delay = '500ms'", "imgmod.s3_timeout = '5s'", "imgmod.s3_retries = 1"));
my $inst = $node->safe_psql('postgres', 'SELECT id FROM imgmod.installation');
my $first = ppm_to_jpeg(upright_marked_ppm(640, 400), 90);
my $second = ppm_to_jpeg(gradient_ppm(900, 300), 90);

sub ready { my ($id) = @_; return $node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $id"); }

sub purged
{
	my ($id, $version) = @_;
	return $node->poll_query_until('postgres',
		"SELECT status = 'purged' FROM imgmod.image_versions WHERE image_id = $id AND version = $version");
}

# Every object of a version, as (store, key) pairs, from its rows.
sub objects_of
{
	my ($id, $version) = @_;
	my $rows = $node->safe_psql('postgres',
		"SELECT 'main|' || object_key FROM imgmod.variants WHERE image_id = $id AND version = $version "
		  . "UNION ALL SELECT 'main|' || master_key FROM imgmod.image_versions WHERE image_id = $id AND version = $version "
		  . "UNION ALL SELECT 'hires|' || hires_key FROM imgmod.image_versions WHERE image_id = $id AND version = $version "
		  . "ORDER BY 1");
	return map { [ split /\|/, $_ ] } split /\n/, $rows;
}

sub statuses { return join(' ', map { s3_head_status(@$_) } @_); }

sub counter
{
	my ($store, $verb) = @_;
	return $node->safe_psql('postgres', "SELECT requests FROM imgmod.stats WHERE store = '$store' AND verb = '$verb'");
}

# --- replace: version 2 becomes current, version 1 superseded ---------------
my $id = upload_bytes($node, $first, 'shoe.jpg');
ok(ready($id), 'version 1 ready');
my @v1 = objects_of($id, 1);
is(scalar(@v1), 6, 'version 1 has 6 objects: 4 variants and the compressed master (main), the full-resolution master (hi-res)');
is(statuses(@v1), join(' ', ('200') x 6), 'all of them are in their S3 bucket');
my ($code, $etag) = s3_head('main', "variants/$id/v1/medium.jpg");
is('"' . $etag . '"', $node->safe_psql('postgres', "SELECT etag FROM imgmod.variants WHERE image_id = $id AND version = 1 AND preset = 'medium'"),
	"the variant row's etag is the one S3 reported for the object");
is(redis_cli("--raw EXISTS imgmod:$inst:$id:v1:medium imgmod:$inst:$id:v1:source"), '2', 'and version 1 is in Redis');

is(replace_bytes($node, $id, $second, 'shoe-new.jpg'), '2', 'replace() returns version 2');
ok(ready($id), 'version 2 ready');
is($node->safe_psql('postgres', "SELECT current_version FROM imgmod.images WHERE id = $id"), '2', 'the current pointer flipped');
my $hex = $node->safe_psql('postgres', "SELECT encode(imgmod.fetch($id, 'small'), 'hex')");
is(join('x', jpeg_size(pack('H*', $hex))), '512x171', 'fetch() serves version 2 (the 900x300 image at 512 wide)');
$hex = $node->safe_psql('postgres', "SELECT encode(imgmod.fetch($id, 'original'), 'hex')");
is(join('x', jpeg_size(pack('H*', $hex))), '900x300', "fetch(id, 'original') reads version 2's full-resolution master");
is(counter('hires', 'GET'), '1', 'from the hi-res store');
is($node->safe_psql('postgres', "SELECT status FROM imgmod.image_versions WHERE image_id = $id AND version = 1"),
	'superseded', 'version 1 is superseded');
is(redis_cli("--raw EXISTS imgmod:$inst:$id:v1:medium imgmod:$inst:$id:v1:source imgmod:$inst:$id:v1:thumb"), '0',
	'its Redis keys were dropped at once');
is(redis_cli("--raw EXISTS imgmod:$inst:$id:v2:medium imgmod:$inst:$id:v2:source"), '2', 'version 2 is in Redis');
is(statuses(@v1), join(' ', ('200') x 6), 'its objects stay during imgmod.superseded_retention');
is(counter('main', 'DELETE') + counter('hires', 'DELETE'), 0, 'nothing deleted yet');

# --- the retention ends: every object of version 1 goes, in both stores -----
$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.superseded_retention = 0");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$node->safe_psql('postgres',
	"UPDATE imgmod.jobs SET next_attempt_at = now() WHERE image_id = $id AND kind = 'purge'; SELECT imgmod.wake_workers()");
ok(purged($id, 1), 'version 1 purged');
is(statuses(@v1), join(' ', ('404') x 6), 'none of its 6 objects is left in either bucket');
my @v2 = objects_of($id, 2);
is(statuses(@v2), join(' ', ('200') x 6), "version 2's 6 objects are untouched");
is(counter('main', 'DELETE') . ' ' . counter('hires', 'DELETE'), '5 1', 'one DELETE per object: 5 main, 1 hi-res');
is($node->safe_psql('postgres', "SELECT count(*) FROM imgmod.variants WHERE image_id = $id AND version = 1"), '0',
	'its variant rows are gone');
is($node->safe_psql('postgres',
		"SELECT payload->'deleted' FROM imgmod.events WHERE image_id = $id AND status = 'purged'"),
	'{"main": 5, "hires": 1, "redis": 0, "variant_rows": 4}', 'the purged event counts what went');
my ($err) = $node->psql('postgres', "SELECT imgmod.fetch($id, 'small', 1)", stderr => \my $stderr);
like($stderr, qr/version 1 of image $id was superseded and its objects deleted/, 'fetch() of version 1 says why it is gone');

# --- a purge that meets a stopped S3 server is retried until done -----------
$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.superseded_retention = '1h'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
is(replace_bytes($node, $id, $first, 'shoe-3.jpg'), '3', 'version 3');
ok(ready($id), 'version 3 ready');
my @v2_after = objects_of($id, 2);
services('stop', 's3');
$node->safe_psql('postgres',
	"UPDATE imgmod.jobs SET next_attempt_at = now() WHERE image_id = $id AND kind = 'purge' AND state = 'queued'; "
	  . "SELECT imgmod.wake_workers()");
ok($node->poll_query_until('postgres',
		"SELECT attempts >= 2 AND last_error LIKE '%DELETE%' FROM imgmod.jobs WHERE image_id = $id AND version = 2 AND kind = 'purge'"),
	'with S3 down the purge fails and is retried');
is($node->safe_psql('postgres', "SELECT status || ' ' || current_version FROM imgmod.images WHERE id = $id"), 'ready 3',
	'a failing purge does not make the image failed');
# (polled: between two attempts the job is briefly 'running')
ok($node->poll_query_until('postgres',
		"SELECT why ~ '^retrying at .* after: imgmod: deleting .* failed' FROM imgmod.queue WHERE image_id = $id AND kind = 'purge'"),
	'the queue says why the purge is not done');
services('start', 's3');
ok(purged($id, 2), 'after S3 returns, version 2 is purged');
is(statuses(@v2_after), join(' ', ('404') x 6), 'none of its objects is left');
is(statuses(objects_of($id, 3)), join(' ', ('200') x 6), "version 3's objects are there");

# --- versions overtaken before they were rendered ----------------------------
$node->safe_psql('postgres', "ALTER SYSTEM SET imgmod.superseded_retention = 0");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
my $other = upload_bytes($node, $first, 'bag.jpg');
ok(ready($other), 'another image ready');
# Two replacements in one transaction: the two workers take versions 2 and 3
# at once, and whichever order they finish in (or version 2 found already
# overtaken), both older versions must end purged and version 3 current.
my ($p2, $p3) = map { $node->basedir . "/bag$_.bin" } 2, 3;
write_binary($p2, $second);
write_binary($p3, $first);
$node->safe_psql('postgres', "BEGIN; SELECT imgmod.replace($other, pg_read_binary_file('$p2'), 'bag2.jpg'); "
	  . "SELECT imgmod.replace($other, pg_read_binary_file('$p3'), 'bag3.jpg'); COMMIT;");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM imgmod.image_versions WHERE image_id = $other AND status = 'purged'"),
	'versions 1 and 2 both end purged');
is($node->safe_psql('postgres',
		"SELECT status || ' ' || current_version FROM imgmod.images WHERE id = $other"), 'ready 3', 'version 3 is current');
is($node->safe_psql('postgres',
		"SELECT string_agg(DISTINCT version::text, ',') FROM imgmod.variants WHERE image_id = $other"), '3',
	'only version 3 has variant rows');
is($node->safe_psql('postgres', "SELECT count(*) FROM imgmod.jobs WHERE image_id = $other AND state <> 'done'"), '0',
	'every job done');
is(redis_cli("--raw KEYS 'imgmod:$inst:$other:v[12]:*'"), '', 'no Redis key of versions 1 and 2');

# --- delete(): every version's objects leave both buckets at once -----------
my @v3 = objects_of($id, 3);
is($node->safe_psql('postgres', "SELECT imgmod.delete($id)"), '1', 'delete() schedules the current version');
ok(purged($id, 3), 'version 3 purged right away (no retention for a deletion)');
is(statuses(@v3), join(' ', ('404') x 6), 'none of its 6 objects is left in either bucket');
is(redis_cli("--raw KEYS 'imgmod:$inst:$id:*'"), '', 'no Redis key of the image is left');

# --- delete() while a worker is rendering the image --------------------------
# The worker is frozen mid-render; delete() commits and the other worker runs
# the purge (nothing stored yet); then the frozen worker stores its objects,
# finds the image deleted, and has them purged too.
my $big = ppm_to_jpeg(gradient_ppm(6000, 4000), 85);
my $racing = upload_bytes($node, $big, 'racing.jpg');
# Frozen while decoding, when it holds no transaction and no lock (frozen
# inside one, it would block delete() on the image row).
ok($node->poll_query_until('postgres',
		"SELECT a.query = 'imgmod: rendering' FROM imgmod.jobs j JOIN pg_stat_activity a ON a.pid = j.claimed_by "
		  . "WHERE j.image_id = $racing AND j.kind = 'render'"), 'its render is running');
my $pid = $node->safe_psql('postgres', "SELECT claimed_by FROM imgmod.jobs WHERE image_id = $racing AND kind = 'render'");
kill 'STOP', $pid;
is($node->safe_psql('postgres', "SELECT backend_xid IS NULL AND backend_xmin IS NULL FROM pg_stat_activity WHERE pid = $pid"),
	't', 'the frozen worker holds no transaction');
$node->safe_psql('postgres', "SELECT imgmod.delete($racing)");
ok($node->poll_query_until('postgres',
		"SELECT last_error = 'waiting for the render of this version to finish' AND state = 'queued' AND attempts = 0 "
		  . "FROM imgmod.jobs WHERE image_id = $racing AND kind = 'purge'"),
	'the purge waits for the frozen render (and spends no attempt doing so)');
kill 'CONT', $pid;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM imgmod.jobs WHERE image_id = $racing AND state <> 'done'"),
	'the render finished, then the purges ran');
is($node->safe_psql('postgres', "SELECT status FROM imgmod.image_versions WHERE image_id = $racing"), 'purged',
	'the version ends purged');
is($node->safe_psql('postgres', "SELECT count(*) FROM imgmod.events WHERE image_id = $racing AND status = 'ready'"), '0',
	'no ready event for the deleted image (the render really was overtaken)');
my @racing = (['hires', "hires/$racing/v1/original.jpg"], ['main', "masters/$racing/v1/master.jpg"],
	map { ['main', "variants/$racing/v1/$_.jpg"] } qw(large medium small thumb));
is(statuses(@racing), join(' ', ('404') x 6), 'none of the objects the late render stored is left');
is(redis_cli("--raw KEYS 'imgmod:$inst:$racing:*'"), '', 'nor any Redis key it wrote');
is($node->safe_psql('postgres', "SELECT status FROM imgmod.images WHERE id = $racing"), 'deleted', 'the image stays deleted');

$node->stop;
done_testing();

