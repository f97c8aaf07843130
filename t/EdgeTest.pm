# Helpers for the CDN edge TAP tests: a Varnish edge (edge/imgmod.vcl) in
# front of an imgmod-origin, run as the test's own user, and the capacity
# reporter beside it (edge/edge-report.sh).
package EdgeTest;

use strict;
use warnings;
use Exporter 'import';
use File::Path qw(make_path);
use HTTP::Tiny;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT_OK = qw(start_edge stop_edge restart_edge set_purgers edge_get start_edge_reporter stop_edge_reporter);

my @started;
END { eval { $_->kill_kill } for @started; }

# edge/ of the repository (run-tap.sh copies it next to t/).
sub edge_dir
{
	my $dir = ($ENV{TESTDIR} // '.') . '/edge';
	die "$dir/imgmod.vcl is missing: run the TAP suite through scripts/test.sh" unless -f "$dir/imgmod.vcl";
	return $dir;
}

sub write_site
{
	my ($e) = @_;
	open(my $fh, '>', "$e->{dir}/imgmod-site.vcl") or die $!;
	print $fh "vcl 4.1;\n"
	  . "backend imgmod_origin {\n"
	  . "    .host = \"127.0.0.1\";\n    .port = \"$e->{origin_port}\";\n"
	  . "    .connect_timeout = 1s;\n    .first_byte_timeout = 10s;\n    .between_bytes_timeout = 5s;\n}\n"
	  . "acl imgmod_purgers {\n" . join('', map { "    \"$_\";\n" } @{ $e->{purgers} }) . "}\n";
	close $fh;
}

sub launch
{
	my ($e) = @_;
	write_site($e);
	my @cmd = ('varnishd', '-F', '-j', 'none', '-n', "$e->{dir}/work",
		'-a', "127.0.0.1:$e->{port}", '-T', '127.0.0.1:0',
		'-f', edge_dir() . '/imgmod.vcl', '-p', "vcl_path=$e->{dir}:" . edge_dir(),
		'-s', "imgmod=malloc,$e->{storage}", '-s', 'Transient=malloc,16m',
		# small test objects: no minimum TTL, short idle connections
		'-p', 'default_grace=0', '-p', 'shortlived=0');
	$e->{run} = IPC::Run::start(\@cmd, '>>', $e->{log}, '2>&1');
	push @started, $e->{run};
	my $http = HTTP::Tiny->new(timeout => 2);
	for (1 .. 300)
	{
		my $r = $http->get("$e->{url}/");
		return $e if $r->{status} == 404 && ($r->{headers}{server} // '') eq 'Varnish';
		select(undef, undef, undef, 0.05);
	}
	diag(slurp_file($e->{log}));
	die 'varnishd did not start';
}

# A Varnish edge in front of $origin (an OriginTest handle).  %opt:
# storage => '8m' (its capacity), purgers => [addresses allowed to purge],
# port => a fixed port.  Returns {url, port, dir, purge_url, ...}.
sub start_edge
{
	my ($node, $origin, %opt) = @_;
	my $port = $opt{port} // PostgreSQL::Test::Cluster::get_free_port();
	my $dir = $node->basedir . "/edge_$port";
	make_path("$dir/work");
	my $e = {
		port => $port, url => "http://127.0.0.1:$port", purge_url => "http://127.0.0.1:$port/",
		dir => $dir, log => "$dir/varnishd.log", origin_port => $origin->{port},
		storage => $opt{storage} // '64m', purgers => $opt{purgers} // ['127.0.0.1', '::1'] };
	return launch($e);
}

sub stop_edge
{
	my ($e) = @_;
	$e->{run}->signal('TERM');
	$e->{run}->finish;
}

# Stopped and started again on the same port: an empty cache.
sub restart_edge
{
	my ($e) = @_;
	stop_edge($e);
	return launch($e);
}

# Loads a VCL whose purgers ACL is @addresses, and makes it the active one.
sub set_purgers
{
	my ($e, @addresses) = @_;
	$e->{purgers} = [@addresses];
	write_site($e);
	my $name = 'imgmod' . (++$e->{vcl_seq});
	for my $cmd (['vcl.load', $name, edge_dir() . '/imgmod.vcl'], ['vcl.use', $name])
	{
		my ($out, $err) = ('', '');
		IPC::Run::run(['varnishadm', '-n', "$e->{dir}/work", @$cmd], '>', \$out, '2>', \$err)
		  or die "varnishadm @$cmd: $out $err";
	}
}

sub edge_get
{
	my ($e, $path, %headers) = @_;
	my $method = delete $headers{method} // 'GET';
	return HTTP::Tiny->new(timeout => 15)->request($method, "$e->{url}$path", { headers => \%headers });
}

# edge/edge-report.sh beside the edge, reporting every second as $role.
sub start_edge_reporter
{
	my ($node, $e, %opt) = @_;
	my $conninfo = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=' . ($opt{role} // 'origin');
	$e->{reporter} = IPC::Run::start(
		[ 'env', "IMGMOD_EDGE_CONNINFO=$conninfo", "IMGMOD_EDGE_WORKDIR=$e->{dir}/work",
		  "IMGMOD_EDGE_NODE=" . ($opt{node} // "edge-$e->{port}"), 'IMGMOD_EDGE_REPORT_INTERVAL=1',
		  'bash', edge_dir() . '/edge-report.sh' ],
		'>>', "$e->{dir}/reporter.log", '2>&1');
	push @started, $e->{reporter};
	return $e->{reporter};
}

sub stop_edge_reporter
{
	my ($e) = @_;
	$e->{reporter}->signal('TERM');
	$e->{reporter}->finish;
	return $e->{reporter}->full_result(0) >> 8;
}

1;
