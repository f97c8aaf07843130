# An edit against the real servers (Ceph RGW for both stores, Redis): what
# it reads and writes.  With the base master warm in Redis an edit reads
# nothing from a store; without it, one GET from the hi-res store; a
# master planted in Redis that is not the recorded one is never edited; a
# store that holds other bytes fails the edit instead of editing them; and
# each object is written with one PUT.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Digest::SHA qw(sha256_hex);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm gradient_ppm ppm_to_jpeg start_node upload_bytes service_conf
  require_services write_binary s3_put);

require_services(qw(IMGMOD_REDIS_URL IMGMOD_S3_ENDPOINT IMGMOD_HIRES_S3_ENDPOINT));
my ($rhost, $rport) = $ENV{IMGMOD_REDIS_URL} =~ m{redis://(?:[^@]*@)?([^:/]+):?(\d*)};
$rport ||= 6379;
sub redis_cli { my $out = `redis-cli -h $rhost -p $rport @_`; chomp $out; return $out; }

redis_cli('FLUSHDB');
my $node = start_node('edit_services', workers => 1,
	conf => join("\n", service_conf(s3 => 1, redis => 1), "imgmod.superseded_retention = '1h'"));
sub sql { return $node->safe_psql('postgres', $_[0]); }

my $counts = "SELECT coalesce(sum(requests) FILTER (WHERE store = 'hires' AND verb = 'GET'), 0) || ',' || "
  . "coalesce(sum(requests) FILTER (WHERE store = 'main' AND verb = 'GET'), 0) || ',' || "
  . "coalesce(sum(requests) FILTER (WHERE store = 'hires' AND verb = 'PUT'), 0) || ',' || "
  . "coalesce(sum(requests) FILTER (WHERE store = 'main' AND verb = 'PUT'), 0) FROM imgmod.stats";
my $presets = sql("SELECT count(*) FROM imgmod.presets");

# What one edit cost: (hires GETs, main GETs, hires PUTs, main PUTs).
sub edit_costs
{
	my ($id, $ops) = @_;
	my @before = split /,/, sql($counts);
	my $v = sql("SELECT imgmod.edit($id, '$ops')");
	is(sql("SELECT imgmod.wait($id)"), 'ready', "edit $ops of image $id (version $v) is ready");
	my @after = split /,/, sql($counts);
	return ($v, map { $after[$_] - $before[$_] } 0 .. 3);
}

my $inst = sql('SELECT id FROM imgmod.installation');
my $id = upload_bytes($node, ppm_to_jpeg(upright_marked_ppm(640, 480), 92), 'warm.jpg');
is(sql("SELECT imgmod.wait($id)"), 'ready', 'uploaded to RGW, master warm in Redis');
ok(redis_cli("EXISTS imgmod:$inst:$id:v1:source") eq '1', 'the base master is in Redis');

my ($v, $hget, $mget, $hput, $mput) = edit_costs($id, '[{"op":"rotate","degrees":90}]');
is($hget, 0, 'master in Redis: no GET from the hi-res store');
is($mget, 0, 'and none from the main store');
is($hput, 1, 'one PUT of the new full-resolution master');
is($mput, 1 + $presets, "one PUT per object in the main store (compressed master + $presets presets)");

# Redis emptied: the base master comes from the hi-res store, once.
redis_cli('FLUSHDB');
($v, $hget, $mget) = edit_costs($id, '[{"op":"flip","axis":"vertical"}]');
is($hget, 1, 'master not in Redis: one GET from the hi-res store');
is($mget, 0, 'and none from the main store');

# A master planted in Redis under the source key is not the recorded one:
# it is discarded (counted as poisoned) and the store's is edited.
my $foreign = ppm_to_jpeg(gradient_ppm(320, 200), 90);
my $f = PostgreSQL::Test::Utils::tempdir() . '/foreign.jpg';
write_binary($f, $foreign);
is(redis_cli("-x SET imgmod:$inst:$id:v1:source < $f"), 'OK', 'foreign bytes planted under version 1\'s source key');
my $poisoned = sql("SELECT total FROM imgmod.cache_stats WHERE counter = 'poisoned'");
($v, $hget) = edit_costs($id, '[{"op":"rotate","degrees":180}]');
is(sql("SELECT total FROM imgmod.cache_stats WHERE counter = 'poisoned'"), $poisoned + 1, 'the planted master was counted as poisoned');
is($hget, 1, 'and the hi-res store\'s master was read instead');
is(sql("SELECT width || 'x' || height FROM imgmod.image_versions WHERE image_id = $id AND version = $v"), '480x640',
	'the edit is of the real master (640 x 480, turned a quarter by the chain), not the planted 320 x 200');

# The hi-res store holds other bytes under the base's key: the edit fails
# and says why, rather than edit them.
redis_cli('FLUSHDB');
my ($key, $size) = split /\|/, sql("SELECT hires_key, hires_bytes FROM imgmod.image_versions WHERE image_id = $id AND version = 1");
# the same size as the real master (a JPEG ignores bytes after its end), so
# only the digest can tell them apart
cmp_ok(length($foreign), '<', $size, 'the foreign JPEG is smaller than the master');
write_binary($f, $foreign . ("\0" x ($size - length($foreign))));
is(s3_put('hires', $key, $f), '200', 'other bytes of the same size put under version 1\'s hi-res key');
my $bad = sql("SELECT imgmod.edit($id, '[{\"op\":\"rotate\",\"degrees\":270}]')");
ok($node->poll_query_until('postgres',
		"SELECT last_error LIKE '%is not the one recorded%' FROM imgmod.jobs WHERE image_id = $id AND version = $bad"),
	'the edit job fails: the master read from the hi-res store is not the one recorded');
isnt(sql("SELECT status FROM imgmod.image_versions WHERE image_id = $id AND version = $bad"), 'ready',
	'and the version is not made from them');

done_testing();
