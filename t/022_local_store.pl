# The embedded (local directory) store: every directory it creates is made
# durable before an object counts as stored (the parent of each new
# directory is fsynced, up to the first one that already existed), checked
# by tracing the workers' system calls; and an object whose size differs
# from what the database recorded is refused by imgmod.fetch().
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use File::Basename qw(dirname);
use IPC::Run qw(start);
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm ppm_to_jpeg start_node upload_bytes);

my $node = start_node('local_store');
my $jpeg = ppm_to_jpeg(upright_marked_ppm(320, 200), 90);
my $store = $node->data_dir . '/imgmod/store';
ok(!-e $node->data_dir . '/imgmod', 'the store does not exist yet: the first PUT creates its directories');

my @pids = split /\n/, $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'imgmod worker' ORDER BY pid");
ok(@pids > 0, 'workers are running: ' . join(',', @pids));

my $trace = $node->basedir . '/workers.strace';
my ($out, $err) = ('', '');
my $strace = start([ 'strace', '-f', '-y', '-qq', '-o', $trace, '-e', 'trace=mkdir,mkdirat,fsync',
		map { ('-p', $_) } @pids ], '>', \$out, '2>', \$err);
# strace has attached once each worker's first system call is in the trace
# (an idle worker waits in epoll, and -e limits what is written, so attach
# is seen from /proc instead).
my $attached = 0;
for (1 .. 300)
{
	$attached = grep { (`grep -s TracerPid /proc/$_/status` =~ /TracerPid:\s*([1-9]\d*)/) } @pids;
	last if $attached == @pids;
	usleep(20_000);
}
is($attached, scalar(@pids), 'strace is attached to every worker');

my $id = upload_bytes($node, $jpeg, 'durable.jpg');
ok($node->poll_query_until('postgres', "SELECT status = 'ready' FROM imgmod.images WHERE id = $id"),
	'the image is ready in the local store');
$strace->signal('INT');
$strace->finish;

my @calls = split /\n/, slurp_file($trace);
my @made;
my %synced_after;	# directory => index of the last fsync of it
for my $i (0 .. $#calls)
{
	if ($calls[$i] =~ /mkdir(?:at)?\((?:AT_FDCWD(?:<[^>]*>)?, )?"([^"]+)", [^)]*\)\s*=\s*0/)
	{
		push @made, [ $1, $i ];
	}
	elsif ($calls[$i] =~ /fsync\(\d+<([^>]+)>\)\s*=\s*0/)
	{
		$synced_after{$1} = $i;
	}
}
ok(scalar(@made) >= 5, 'the PUTs created the store and its key directories: ' . scalar(@made));
my @unsynced = grep { !defined $synced_after{ dirname($_->[0]) } || $synced_after{ dirname($_->[0]) } < $_->[1] } @made;
is(join(' ', map { $_->[0] } @unsynced), '', 'the parent of every created directory was fsynced after it was made');
ok((grep { $_->[0] eq $store } @made), 'the store root itself was among them');

# --- an object whose size differs from the recorded one ----------------------
my ($key, $bytes) = split /\|/, $node->safe_psql('postgres',
	"SELECT object_key, bytes FROM imgmod.variants WHERE image_id = $id AND preset = 'thumb'");
is($node->safe_psql('postgres', "SELECT length(imgmod.fetch($id, 'thumb'))"), $bytes,
	'the variant is served at its recorded size');
open(my $fh, '>>:raw', "$store/$key") or die "cannot append to $store/$key: $!";
print $fh 'x' x 1000;
close $fh;
my ($rc, $stdout, $stderr) = $node->psql('postgres', "SELECT length(imgmod.fetch($id, 'thumb'))");
like($stderr, qr/is ${\($bytes + 1000)} bytes but imgmod recorded $bytes bytes for it; refusing it/,
	'a local object larger than recorded is refused');

$node->stop;
done_testing();
