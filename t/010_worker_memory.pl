# A worker's memory does not grow with the jobs it runs: every job's buffers
# (the staged source alone is megabytes) are freed when the job ends.  Two
# measures, after a first batch and again after three more batches of the
# same work: the worker's PostgreSQL memory contexts (logged with
# pg_log_backend_memory_contexts()), and the resident size of the whole
# process from /proc, which also counts what libjpeg, libcurl, hiredis and
# the image core allocate with malloc.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(gradient_ppm ppm_to_jpeg start_node upload_bytes);

# One worker, so it also runs the audit flush (worker slot 0) between jobs.
my $node = start_node('memory', workers => 1);
my $jpeg = ppm_to_jpeg(gradient_ppm(3000, 2000), 92);
ok(length($jpeg) > 100_000, 'the test image is big enough for a leak to show (' . length($jpeg) . ' bytes)');

sub batch
{
	my @ids = map { upload_bytes($node, $jpeg, "mem$_.jpg") } 1 .. 8;
	my $ids = join(',', @ids);
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM imgmod.images WHERE id IN ($ids) AND status <> 'ready'")
	  or die 'batch not ready';
}

# Total bytes in the worker's memory contexts, from the server log.
sub worker_context_bytes
{
	my $pid = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'imgmod worker'");
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($pid)");
	my $total;
	for (1 .. 200)
	{
		my $log = slurp_file($node->logfile, $offset);
		if ($log =~ /\[$pid\] LOG:  Grand total: (\d+) bytes/) { $total = $1; last; }
		$node->safe_psql('postgres', 'SELECT pg_sleep(0.05)');
	}
	die "no memory context report from worker $pid" unless defined $total;
	return $total;
}

# Resident set of the worker process, in bytes.
sub worker_rss_bytes
{
	my $pid = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'imgmod worker'");
	my $status = slurp_file("/proc/$pid/status");
	$status =~ /^VmRSS:\s+(\d+) kB/m or die "no VmRSS for worker $pid";
	return $1 * 1024;
}

# The first batch warms the allocator (arenas, libjpeg's pools); the
# resident size is compared from the second batch on.
batch();
my $after_first = worker_context_bytes();
batch();
my $rss_first = worker_rss_bytes();
batch() for 1 .. 2;
my $after_more = worker_context_bytes();
my $rss_more = worker_rss_bytes();
my $growth = $after_more - $after_first;
note("worker memory contexts: $after_first bytes after 8 jobs, $after_more after 32");
ok($growth < 1_000_000,
	"24 more jobs leave the worker's memory contexts where they were (grew $growth bytes; a leaked source per job would be "
	  . 24 * length($jpeg) . ")");
# malloc keeps freed memory for reuse, so the resident size moves by a few
# MB between batches without any leak; a megabyte lost per job (a decoded
# strip buffer, a variant, a curl or hiredis reply) would add 16 MB, one
# 3000x2000 raster 288 MB.
my $rss_growth = $rss_more - $rss_first;
note("worker resident size: $rss_first bytes after 16 jobs, $rss_more after 32");
ok($rss_growth < 16 * 1024 * 1024,
	"16 more jobs leave the worker's resident size where it was (grew $rss_growth bytes, under 1 MB per job)");

$node->stop;
done_testing();
