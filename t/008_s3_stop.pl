# A worker blocked in an S3 transfer stops promptly when the server shuts
# down (the transfer is aborted, not waited out), and the interrupted job is
# taken up again after the restart.
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
my ($proxy_pid, $proxy_port) = S3FaultProxy::start($host, $port, ['stall'], $counter);

my $conf = service_conf(s3 => 1);
$conf =~ s{imgmod.s3_endpoint = '[^']*'}{imgmod.s3_endpoint = 'http://127.0.0.1:$proxy_port'};
# A transfer timeout far beyond pg_ctl's own wait: only an aborted transfer
# lets the shutdown below succeed.
my $node = start_node('s3stop', workers => 1, conf => join("\n", $conf, "imgmod.s3_timeout = '10min'"));
my $jpeg = ppm_to_jpeg(upright_marked_ppm(320, 200), 90);
my $id = upload_bytes($node, $jpeg, 'stalled.jpg');

ok($node->poll_query_until('postgres', "SELECT pg_read_file('$counter', 0, 1) = '1'", 't'),
	'the worker is blocked in a PUT the server never answers');
is($node->safe_psql('postgres', "SELECT state FROM imgmod.jobs WHERE image_id = $id"), 'running', 'its job is running');
my $started = time;
my $stopped = eval {
	local $ENV{PGCTLTIMEOUT} = 60;
	$node->stop('fast');
	1;
};
my $took = time - $started;
ok($stopped, 'pg_ctl stop -m fast succeeded although the transfer was still open') or diag($@);
ok(!-e $node->data_dir . '/postmaster.pid', 'the postmaster is gone (no postmaster.pid)');
cmp_ok($took, '<', 30, "it took ${took} s: the transfer was aborted, not waited out (its timeout is 10 min)");

$node->start;
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $id"),
	'after the restart the interrupted job is taken up again and completes');
is($node->safe_psql('postgres', "SELECT attempts FROM imgmod.jobs WHERE image_id = $id"), '2',
	'in a second attempt');

kill 'TERM', $proxy_pid;
waitpid($proxy_pid, 0);
$node->stop;
done_testing();
