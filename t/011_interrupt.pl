# A statement timeout or pg_cancel_backend() stops imgmod.upload() and
# imgmod.inspect() of a 100 MP image within a second: the image core asks
# PostgreSQL's interrupt flags between rows, returns "interrupted", and the
# extension then lets CHECK_FOR_INTERRUPTS() raise the pending error.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use ImgmodTest qw(read_binary start_node);

# How long after the cancel or timeout the statement may still run.
my $bound = 1.0;

my $node = start_node('interrupt');

# 10000 x 9999 (99.99 MP), progressive, with grain so that the entropy
# coding has real work, an Adobe RGB profile and EXIF orientation 6: the
# height is not a whole number of MCUs, so nothing can be done losslessly
# and the upload decodes every scan, converts the colours, rotates and
# re-encodes; seconds of work on any machine.
my ($w, $h) = (10000, 9999);
my $ppm = $node->basedir . '/big.ppm';
my $jpg = $node->basedir . '/big.jpg';
{
	open(my $fh, '>:raw', $ppm) or die "cannot write $ppm: $!";
	print $fh "P6\n$w $h\n255\n";
	# 61 rows of a gradient plus grain, each reused with a shift
	srand(11);
	my @gradient = map { (20 + 200 * $_ / $w, 128, 220 - 200 * $_ / $w) } 0 .. $w - 1;
	my @rows = map { pack('C*', map { $_ + int(rand(25)) } @gradient) } 0 .. 60;
	for my $y (0 .. $h - 1)
	{
		my $shift = 3 * (($y * 37) % $w);
		my $row = $rows[ $y % 61 ];
		print $fh substr($row, $shift) . substr($row, 0, $shift);
	}
	close $fh or die "cannot write $ppm: $!";
}
system('cjpeg', '-quality', '90', '-progressive', '-outfile', "$jpg.plain", $ppm) == 0 or die 'cjpeg failed';
unlink $ppm;
{
	# the ICC_PROFILE segments of the committed Adobe RGB fixture
	my $donor = read_binary("$FindBin::Bin/../test/fixtures/exif/icc_adobergb.jpg");
	my $icc = '';
	for (my $pos = 2; $pos + 4 <= length($donor);)
	{
		my (undef, $marker, $len) = unpack('CCn', substr($donor, $pos, 4));
		last if $marker == 0xDA;
		$icc .= substr($donor, $pos, 2 + $len)
		  if $marker == 0xE2 && substr($donor, $pos + 4, 12) eq "ICC_PROFILE\0";
		$pos += 2 + $len;
	}
	die 'no ICC profile in icc_adobergb.jpg' if $icc eq '';
	my $plain = read_binary("$jpg.plain");
	my $tiff = "MM\0*" . pack('N', 8) . pack('n', 1) . pack('nnN', 0x0112, 3, 1) . pack('nn', 6, 0) . pack('N', 0);
	my $app1 = "Exif\0\0" . $tiff;
	open(my $fh, '>:raw', $jpg) or die "cannot write $jpg: $!";
	print $fh substr($plain, 0, 2) . "\xFF\xE1" . pack('n', length($app1) + 2) . $app1 . $icc . substr($plain, 2);
	close $fh or die "cannot write $jpg: $!";
	unlink "$jpg.plain";
}
# Read once, so each statement below starts decoding at once.
$node->safe_psql('postgres', "CREATE TABLE big AS SELECT pg_read_binary_file('$jpg') AS data");

my %call = (
	upload => "SELECT imgmod.upload(data, 'big.jpg') FROM big",
	inspect => "SELECT imgmod.inspect(data)->>'verdict' FROM big",
);

# Without interruption: what the work costs.  The bounds below only mean
# something if it takes clearly longer than timeout + bound.
my $started = time;
my $verdict = $node->safe_psql('postgres',
	"SELECT j->>'verdict', j->'normalised'->>'method' FROM (SELECT imgmod.inspect(data) AS j FROM big) AS s");
my $uninterrupted = time - $started;
is($verdict, 'accept|reencoded',
	'the 100 MP image is accepted when nothing interrupts it, by the decode, convert, rotate and encode path');
cmp_ok($uninterrupted, '>', 0.3 + $bound + 0.5,
	sprintf('uninterrupted inspect() takes %.2f s, longer than the timeout plus the bound', $uninterrupted));

# (a) statement_timeout
for my $name (qw(upload inspect))
{
	my ($stdout, $stderr);
	$started = time;
	$node->psql('postgres', "SET statement_timeout = '300ms'; $call{$name}",
		stdout => \$stdout, stderr => \$stderr);
	my $elapsed = time - $started;
	like($stderr, qr/canceling statement due to statement timeout/,
		"$name(): statement_timeout cancels it");
	cmp_ok($elapsed - 0.3, '<', $bound,
		sprintf("$name(): ends %.2f s after the 300 ms timeout", $elapsed - 0.3));
}

# (b) pg_cancel_backend from another session
for my $name (qw(upload inspect))
{
	my $app = "imgmod_cancel_$name";
	my ($stdout, $stderr) = ('', '');
	my $psql = IPC::Run::start(
		[ 'psql', '-X', '-q', '-d', $node->connstr('postgres') . " application_name=$app", '-c', $call{$name} ],
		'<', \undef, '>', \$stdout, '2>', \$stderr);
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = '$app' AND state = 'active'"),
		"$name(): the statement is running");
	my $cancelled = time;
	is($node->safe_psql('postgres',
			"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = '$app'"),
		't', "$name(): cancel sent");
	$psql->finish;
	my $elapsed = time - $cancelled;
	like($stderr, qr/canceling statement due to user request/, "$name(): the cancel error is raised");
	cmp_ok($elapsed, '<', $bound, sprintf("$name(): ends %.2f s after pg_cancel_backend()", $elapsed));
}

# An interruption is not a rejection: nothing counted or audited, no image.
is($node->safe_psql('postgres', 'SELECT coalesce(sum(total), 0) FROM imgmod.rejection_counters()'),
	'0', 'no rejection counted for the interrupted uploads');
is($node->safe_psql('postgres', 'SELECT count(*) FROM imgmod.images'), '0', 'no image registered');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server still answers');

$node->stop;
done_testing();
