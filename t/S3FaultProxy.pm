# A fault-injecting TCP proxy in front of the S3 server, for tests: the first
# N connections get an HTTP error answer (e.g. 503 SlowDown) instead of being
# forwarded; later ones are relayed byte for byte, so SigV4 signatures (which
# cover the Host header the client sent) still verify at the real server.
# Each relayed connection gets its own process, as a real server serves
# concurrent (and kept-alive) connections at once.
package S3FaultProxy;

use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use POSIX ();

# Returns (pid, port).  $plan is a list of faults for the first connections:
# an HTTP status code (e.g. [503, 503, 429]) is answered at once; 'stall'
# reads the request and never answers until the client gives up.  The
# counter file records how many connections got a fault.
sub start
{
	my ($upstream_host, $upstream_port, $plan, $counter_file) = @_;
	my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16,
		ReuseAddr => 1, Proto => 'tcp') or die "proxy listen: $!";
	my $port = $listen->sockport;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid)
	{
		close $listen;
		return ($pid, $port);
	}
	my @plan = @$plan;
	my $faults = 0;
	local $SIG{CHLD} = 'IGNORE';    # relays exit on their own; no zombies
	while (my $client = $listen->accept)
	{
		if (@plan && $plan[0] eq 'stall')
		{
			shift @plan;
			$faults++;
			if (open(my $fh, '>', $counter_file)) { print $fh $faults; close $fh; }
			while (sysread($client, my $buf, 65536)) { }
			close $client;
			next;
		}
		if (@plan)
		{
			my $code = shift @plan;
			# Read the request head, answer with the fault, close.
			my $head = '';
			while ($head !~ /\r\n\r\n/)
			{
				my $n = sysread($client, my $buf, 65536);
				last unless $n;
				$head .= $buf;
			}
			my $body = "<?xml version=\"1.0\"?><Error><Code>Injected$code</Code><Message>fault injected by the test proxy</Message></Error>";
			syswrite($client, "HTTP/1.1 $code Injected\r\nContent-Type: application/xml\r\nContent-Length: "
				  . length($body) . "\r\nConnection: close\r\n\r\n$body");
			close $client;
			$faults++;
			if (open(my $fh, '>', $counter_file)) { print $fh $faults; close $fh; }
			next;
		}
		my $relay = fork();
		if (!defined $relay || $relay)
		{
			close $client;
			next;
		}
		close $listen;
		my $up = IO::Socket::INET->new(PeerAddr => $upstream_host, PeerPort => $upstream_port, Proto => 'tcp');
		unless ($up) { close $client; POSIX::_exit(0); }
		my $sel = IO::Select->new($client, $up);
		RELAY: while (1)
		{
			my @ready = $sel->can_read(30);
			last RELAY unless @ready;
			for my $fh (@ready)
			{
				my $n = sysread($fh, my $buf, 65536);
				last RELAY unless $n;
				my $to = $fh == $client ? $up : $client;
				my $off = 0;
				while ($off < $n)
				{
					my $w = syswrite($to, $buf, $n - $off, $off);
					last RELAY unless $w;
					$off += $w;
				}
			}
		}
		close $up;
		close $client;
		POSIX::_exit(0);
	}
	POSIX::_exit(0);
}

1;
