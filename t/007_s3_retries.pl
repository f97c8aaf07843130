# In-request retries of the S3 backend: 503 and 429 answers (injected by a
# proxy in front of the real S3 server) are retried with backoff within the
# same attempt and counted (that a 4xx is not retried is in 004_s3.pl).
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm ppm_to_jpeg start_node upload_bytes service_conf require_services);
use S3FaultProxy;

require_services(qw(IMGMOD_S3_ENDPOINT IMGMOD_S3_BUCKET));
my ($host, $port) = $ENV{IMGMOD_S3_ENDPOINT} =~ m{^https?://([^:/]+):(\d+)} or die 'endpoint';
my $counter = PostgreSQL::Test::Utils::tempdir() . '/faults';
my ($proxy_pid, $proxy_port) = S3FaultProxy::start($host, $port, [503, 429, 503], $counter);

my $conf = service_conf(s3 => 1);
$conf =~ s{imgmod.s3_endpoint = '[^']*'}{imgmod.s3_endpoint = 'http://127.0.0.1:$proxy_port'};
my $node = start_node('s3retries', workers => 1,
	conf => join("\n", $conf, 'imgmod.s3_retries = 3', 'imgmod.max_attempts = 1'));
my $jpeg = ppm_to_jpeg(upright_marked_ppm(320, 200), 90);

my $id = upload_bytes($node, $jpeg, 'retried.jpg');
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $id"),
	'the upload is ready in its first (and only allowed) attempt despite three injected faults');
is(slurp_file($counter), '3', 'the proxy answered three requests with 503/429');
is($node->safe_psql('postgres', "SELECT retries FROM imgmod.stats WHERE store = 'main' AND verb = 'PUT'"), '3',
	'the retries are counted');
is($node->safe_psql('postgres', "SELECT failures FROM imgmod.stats WHERE store = 'main' AND verb = 'PUT'"), '0',
	'and no request failed in the end');
is($node->safe_psql('postgres', "SELECT attempts FROM imgmod.jobs WHERE image_id = $id"), '1',
	'the job needed one attempt');
my $hex = $node->safe_psql('postgres', "SELECT encode(substring(imgmod.fetch($id, 'small') from 1 for 3), 'hex')");
is($hex, 'ffd8ff', 'the object is really in S3 (read back through the proxy)');

kill 'TERM', $proxy_pid;
waitpid($proxy_pid, 0);
$node->stop;
done_testing();
