# imgmod-origin's tiers against the real servers: the memory LRU, Redis
# (warmed by the workers; bytes used only when they hash to the ETag) and
# the S3 store (one GET, then put in Redis).  Redis down: served from the
# store.  The store down: /healthz 503 naming it, what is in memory still
# served, the rest a prompt 502, never a hang.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Digest::MD5 qw(md5_hex);
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm gradient_ppm ppm_to_jpeg start_node upload_bytes services service_conf
  require_services write_binary);
use OriginTest qw(start_origin stop_origin http_get origin_metric wait_health secrets_shown);

require_services(qw(IMGMOD_S3_ENDPOINT IMGMOD_REDIS_URL));
my ($rhost, $rport) = $ENV{IMGMOD_REDIS_URL} =~ m{redis://(?:[^@]*@)?([^:/]+):?(\d*)};
$rport ||= 6379;
sub redis_cli { my $out = `redis-cli -h $rhost -p $rport @_`; chomp $out; return $out; }
redis_cli('FLUSHDB');

my $node = start_node('origin_services', conf => service_conf(s3 => 1, redis => 1));
my @ids = (upload_bytes($node, ppm_to_jpeg(upright_marked_ppm(800, 500), 90), 'tiers1.jpg'),
	upload_bytes($node, ppm_to_jpeg(gradient_ppm(640, 480), 90), 'tiers2.jpg'));
is($node->safe_psql('postgres', "SELECT imgmod.wait($_)"), 'ready', "image $_ ready") for @ids;
my $inst = $node->safe_psql('postgres', 'SELECT id FROM imgmod.installation');
my $o = start_origin($node, services => 1);
sub md5_of { my ($id, $p) = @_; $node->safe_psql('postgres', "SELECT md5(imgmod.fetch($id, '$p'))") }
sub tier { origin_metric($o, "imgmod_origin_tier_$_[1]_total{tier=\"$_[0]\"}") }
my ($a, $b) = @ids;

# Warmed by the worker: Redis, then memory.
is(md5_hex(http_get($o, "/i/$a/thumb.jpg")->{content}), md5_of($a, 'thumb'), 'thumb served');
is(tier('redis', 'hits'), 1, 'from Redis (the worker had warmed it)');
is(tier('store', 'hits'), 0, 'not from the store');
http_get($o, "/i/$a/thumb.jpg");
is(tier('memory', 'hits'), 1, 'the second request is a memory hit');

# Not in Redis: one GET from the store, then Redis has it for the next origin.
is(redis_cli("DEL imgmod:$inst:$a:v1:small"), '1', 'small removed from Redis');
is(md5_hex(http_get($o, "/i/$a/small.jpg")->{content}), md5_of($a, 'small'), 'small served');
is(tier('store', 'hits'), 1, 'from the store');
is(redis_cli("--raw STRLEN imgmod:$inst:$a:v1:small"),
	$node->safe_psql('postgres', "SELECT bytes FROM imgmod.variants WHERE image_id = $a AND preset = 'small'"),
	'and put back in Redis');

# Poisoned Redis: never served.
my $foreign = ppm_to_jpeg(gradient_ppm(64, 64), 90);
my $f = PostgreSQL::Test::Utils::tempdir() . '/foreign.jpg';
write_binary($f, $foreign);
is(redis_cli("-x SET imgmod:$inst:$a:v1:medium < $f"), 'OK', 'foreign bytes planted under the medium key');
my $r = http_get($o, "/i/$a/medium.jpg");
is(md5_hex($r->{content}), md5_of($a, 'medium'), 'the real medium is served');
isnt(md5_hex($r->{content}), md5_hex($foreign), 'not the planted bytes');
is(tier('store', 'hits'), 2, 'read from the store instead');

# Redis down: served from the store.
services('stop', 'redis');
is(md5_hex(http_get($o, "/i/$a/large.jpg")->{content}), md5_of($a, 'large'), 'with Redis stopped, large is served');
is(tier('store', 'hits'), 3, 'from the store');
services('start', 'redis');

# The store down: /healthz says so, memory hits still served, the rest a prompt 502.
$r = http_get($o, '/healthz');
is($r->{status}, 200, '/healthz: 200 with PostgreSQL and S3 up');
cmp_ok(origin_metric($o, 'imgmod_origin_store_probes_total{result="ok"}'), '>=', 1, 'S3 probed (HEAD of the bucket)');
services('stop', 'rgw');
$r = wait_health($o, 503);
is($r->{status}, 503, 'with S3 stopped, /healthz 503');
is($r->{content}, "store unreachable\n", 'naming the store, no endpoint or bucket');
is(http_get($o, "/i/$a/thumb.jpg")->{status}, 200, 'with S3 stopped, a memory hit is served');
redis_cli("DEL imgmod:$inst:$b:v1:thumb");
my $t0 = time;
$r = http_get($o, "/i/$b/thumb.jpg");
my $took = time - $t0;
is($r->{status}, 502, 'a variant in no cache: 502');
cmp_ok($took, '<', 15, sprintf('answered in %.1f s, within the store timeout', $took));
unlike($r->{content}, qr/\d+\.\d+\.\d+\.\d+|imgmod-main|http:/, 'the body names no endpoint or bucket');
services('start', 's3');
my $ok = 0;
for (1 .. 300)
{
	last if ($ok = http_get($o, "/i/$b/thumb.jpg")->{status} == 200);
	select(undef, undef, undef, 0.1);
}
ok($ok, 'served again once the store is back');
$r = wait_health($o, 200);
is($r->{status}, 200, 'S3 back: /healthz 200');
is($r->{content}, "ok\n", '/healthz: ok');

# --- secrets: never on the command line (ps), never in the log
my ($redis_password) = $ENV{IMGMOD_REDIS_URL} =~ m{redis://[^:@/]*:([^@]+)@};
my %secrets = ('the S3 access key' => $ENV{IMGMOD_S3_ACCESS_KEY}, 'the S3 secret key' => $ENV{IMGMOD_S3_SECRET_KEY},
	'the hires S3 secret key' => $ENV{IMGMOD_HIRES_S3_SECRET_KEY}, 'the Redis password' => $redis_password);
like(slurp_file("/proc/$o->{pid}/cmdline"), qr{^\Q$ENV{IMGMOD_ORIGIN_BIN}\E\0--port\0}, 'the command line of the origin is read');
is(join(', ', secrets_shown($o, %secrets)), '', 'no S3 key or Redis password in its command line or log');
is(stop_origin($o), 0, 'stopped');
like(slurp_file($o->{log}), qr/the store is unreachable: S3 HEAD/, 'its log tells of the store outage');
is(join(', ', secrets_shown($o, %secrets)), '', 'after the outages, still no secret in its log');

# A Redis URL with a password (this Redis has none, so AUTH fails and Redis
# is skipped): it shows neither in ps nor in the log.
my $redis_pw = 'redis-pw-' . int(rand(1e9));
$o = start_origin($node, services => 1, env => { IMGMOD_REDIS_URL => "redis://:$redis_pw\@$rhost:$rport/0" });
is(md5_hex(http_get($o, "/i/$b/small.jpg")->{content}), md5_of($b, 'small'), 'with Redis refusing the password, served');
is(join(', ', secrets_shown($o, %secrets, 'a Redis password' => $redis_pw)), '',
	'no S3 key or Redis password in its command line or log');
is(stop_origin($o), 0, 'stopped');
is(join(', ', secrets_shown($o, %secrets, 'a Redis password' => $redis_pw)), '', 'nor in its log once stopped');
$node->stop;
done_testing();
