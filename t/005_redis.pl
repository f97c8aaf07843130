# Redis as a cache, never the only copy: sources and variants are written
# under version-bearing keys with a TTL; with Redis stopped everything still
# completes and the skips are counted; after Redis returns, imgmod
# reconnects by itself.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm ppm_to_jpeg start_node upload_bytes services service_conf
  require_services);

require_services(qw(IMGMOD_REDIS_URL));
my ($rhost, $rport) = $ENV{IMGMOD_REDIS_URL} =~ m{redis://(?:[^@]*@)?([^:/]+):?(\d*)};
$rport ||= 6379;
sub redis_cli { my $out = `redis-cli -h $rhost -p $rport @_`; chomp $out; return $out; }

# The server is the test suite's own: start from an empty database so no key
# from an earlier run can satisfy a check.
redis_cli('FLUSHDB');
my $node = start_node('redis', conf => service_conf(redis => 1) . "\nimgmod.redis_timeout = '200ms'");
my $jpeg = ppm_to_jpeg(upright_marked_ppm(640, 400), 90);

my $inst = $node->safe_psql('postgres', 'SELECT id FROM imgmod.installation');
like($inst, qr/^[0-9a-f-]{36}$/, 'the installation has an id for the key namespace');
my $id = upload_bytes($node, $jpeg, 'cached.jpg');
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $id"), 'ready');
my $variant = redis_cli("--raw STRLEN imgmod:$inst:$id:v1:medium");
my $bytes = $node->safe_psql('postgres', "SELECT bytes FROM imgmod.variants WHERE image_id = $id AND preset = 'medium'");
is($variant, $bytes, 'the medium variant is in Redis under a versioned key, byte count equal to the stored object');
ok(redis_cli("--raw STRLEN imgmod:$inst:$id:v1:source") > 1000, 'the normalised source is in Redis for re-renders');
my $ttl = redis_cli("--raw TTL imgmod:$inst:$id:v1:medium");
ok($ttl > 0 && $ttl <= 86400, "keys expire (TTL $ttl s)");
is($node->safe_psql('postgres', "SELECT total FROM imgmod.cache_stats WHERE counter = 'written'"), '5',
	'source + 4 variants written');

# A re-render reads its source from Redis, not from object storage.
$node->safe_psql('postgres',
	"UPDATE imgmod.jobs SET state = 'dead' WHERE image_id = $id; SELECT imgmod.retry($id)");
ok($node->poll_query_until('postgres',
		"SELECT state = 'done' FROM imgmod.jobs WHERE image_id = $id"), 're-render done');
is($node->safe_psql('postgres', "SELECT total FROM imgmod.cache_stats WHERE counter = 'hit'"), '1',
	'the re-render found its source in Redis');
is($node->safe_psql('postgres', "SELECT coalesce(sum(requests), 0) FROM imgmod.stats WHERE verb = 'GET'"), '0',
	'and read nothing from object storage');
is($node->safe_psql('postgres',
		"SELECT string_agg(store || ' ' || requests, ', ' ORDER BY store) FROM imgmod.stats WHERE verb = 'PUT'"),
	'hires 1, main 9', 'the masters were not written again: 4 variant PUTs for the re-render, each master once');
is($node->safe_psql('postgres', "SELECT total FROM imgmod.cache_stats WHERE counter = 'written'"), '9',
	'and only the variants went back to Redis, not the source it came from');

# --- Redis stopped: the pipeline completes without it ------------------------
services('stop', 'redis');
my @ids = map { upload_bytes($node, $jpeg, "noredis_$_.jpg") } 1 .. 3;
my $ids = join(',', @ids);
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM imgmod.images WHERE id IN ($ids) AND status <> 'ready'"),
	'with Redis down every upload still becomes ready');
ok($node->safe_psql('postgres', "SELECT total FROM imgmod.cache_stats WHERE counter = 'skipped_write'") >= 15,
	'the skipped cache writes are counted');

services('start', 'redis');
my $after = upload_bytes($node, $jpeg, 'redis_back.jpg');
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $after"), 'ready');
# The reconnect backs off (at most 5 s): later uploads find Redis again.
my $found = 0;
for my $try (1 .. 40)
{
	my $n = upload_bytes($node, $jpeg, "redis_back_$try.jpg");
	$node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $n");
	if (redis_cli("--raw EXISTS imgmod:$inst:$n:v1:medium") eq '1') { $found = 1; last; }
	select(undef, undef, undef, 0.25);
}
ok($found, 'after Redis returns, imgmod reconnects and caches again');

$node->stop;
done_testing();
