# Helpers for the imgmod-origin TAP tests: start the daemon against a test
# node as a login role that has only imgmod_cdn, and talk HTTP to it.
package OriginTest;

use strict;
use warnings;
use Exporter 'import';
use HTTP::Tiny;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT_OK = qw(start_origin stop_origin http_get origin_metric wait_health secrets_shown);

# Origins still running when a test ends (it died half-way) are killed, so
# none outlives its test.
my @started;
END { eval { $_->kill_kill } for @started; }

# The binary built by make; run-tap.sh passes its path.
sub origin_binary
{
	my $bin = $ENV{IMGMOD_ORIGIN_BIN} or die 'IMGMOD_ORIGIN_BIN is not set: run the TAP suite through scripts/test.sh';
	die "$bin is not executable: build it with make" unless -x $bin;
	return $bin;
}

# Starts imgmod-origin; returns a handle with {port, url, run, log}.
# %opt: services => 1 (S3 and Redis of the suite's environment instead of
# the embedded store), env => {extra environment}, args => [extra flags].
sub start_origin
{
	my ($node, %opt) = @_;
	$node->safe_psql('postgres', "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'origin') THEN "
		  . "CREATE ROLE origin LOGIN IN ROLE imgmod_cdn; END IF; END \$\$");
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	# The embedded store unless the test asks for the servers: the suite's
	# environment names them for every test.
	my %env = (
		IMGMOD_ORIGIN_CONNINFO => 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=origin',
		$opt{services}
		? (IMGMOD_STORE_DIR => '')
		: (IMGMOD_STORE_DIR => $node->data_dir . '/imgmod/store', IMGMOD_S3_ENDPOINT => '', IMGMOD_REDIS_URL => ''),
		%{ $opt{env} // {} });
	my $log = $node->basedir . "/origin_$port.log";
	my @cmd = (origin_binary(), '--port', $port, '--report-interval', 1, @{ $opt{args} // [] });
	# The settings go in the environment, never on a command line (a
	# conninfo may hold a password): the daemon inherits them.
	local %ENV = (%ENV, %env);
	# room for the slow-client test's sockets
	my $run = IPC::Run::start(['sh', '-c', 'ulimit -n 8192; exec "$@"', 'origin', @cmd], '>', $log, '2>&1');
	push @started, $run;
	# sh execs the origin: the same process
	my $o = { port => $port, url => "http://127.0.0.1:$port", run => $run, log => $log, pid => $run->{KIDS}[0]{PID} };
	my $http = HTTP::Tiny->new(timeout => 5);
	for (1 .. 200)
	{
		my $r = $http->get("$o->{url}/healthz");
		return $o if $r->{status} == 200;
		select(undef, undef, undef, 0.05);
	}
	diag(slurp_file($log));
	die 'imgmod-origin did not become healthy';
}

# SIGTERM; returns its exit code.
sub stop_origin
{
	my ($o) = @_;
	$o->{run}->signal('TERM');
	$o->{run}->finish;
	return $o->{run}->full_result(0) >> 8;
}

sub http_get
{
	my ($o, $path, %headers) = @_;
	my $method = delete $headers{method} // 'GET';
	return HTTP::Tiny->new(timeout => 15)->request($method, "$o->{url}$path", { headers => \%headers });
}

# One value of /metrics, by its full name with labels.
sub origin_metric
{
	my ($o, $name) = @_;
	my $text = http_get($o, '/metrics')->{content};
	return $text =~ /^\Q$name\E (\S+)$/m ? $1 : 0;
}

# Where any of the secrets shows: the origin's command line (what ps
# shows, while it runs) and its log.  Returns "what in where" strings;
# empty when none shows.
sub secrets_shown
{
	my ($o, %secrets) = @_;
	my %places = (log => slurp_file($o->{log}));
	my $cmdline = "/proc/$o->{pid}/cmdline";
	$places{'command line'} = slurp_file($cmdline) if -e $cmdline;
	my @shown;
	for my $what (sort keys %secrets)
	{
		next unless defined $secrets{$what} && $secrets{$what} ne '';
		for my $where (sort keys %places)
		{
			push @shown, "$what in the $where" if index($places{$where}, $secrets{$what}) >= 0;
		}
	}
	return @shown;
}

# Polls /healthz until it answers $status (and $body, when given): the
# store probe behind it is cached for a second.  Returns the last answer.
sub wait_health
{
	my ($o, $status, $body) = @_;
	my $res;
	for (1 .. 300)
	{
		$res = http_get($o, '/healthz');
		last if $res->{status} == $status && (!defined $body || $res->{content} eq $body);
		select(undef, undef, undef, 0.05);
	}
	return $res;
}

1;
