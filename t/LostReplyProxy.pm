# A proxy between psql and the server's Unix socket that loses the reply to
# one statement, the way a dropped connection does: everything is relayed
# until the client sends a query containing a marker; from then on the
# server's answer is read and thrown away, and once the server has said
# ReadyForQuery (the statement's transaction is over: committed, in
# autocommit) the client's connection is closed without a byte of it.
package LostReplyProxy;

use strict;
use warnings;
use IO::Socket::UNIX;
use IO::Select;
use Socket qw(SOCK_STREAM);

# Returns (pid, port): connect with host => $dir, port => $port.  The file
# $report gets "lost" once a reply was swallowed.
sub start
{
	my ($dir, $port, $upstream, $marker, $report) = @_;
	my $path = "$dir/.s.PGSQL.$port";
	unlink $path;
	my $listen = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => $path, Listen => 4)
	  or die "proxy listen on $path: $!";
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid)
	{
		close $listen;
		return $pid;
	}
	while (my $client = $listen->accept)
	{
		my $server = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $upstream)
		  or die "proxy connect to $upstream: $!";
		relay($client, $server, $marker, $report);
		close $client;
		close $server;
	}
	exit 0;
}

sub relay
{
	my ($client, $server, $marker, $report) = @_;
	my $sel = IO::Select->new($client, $server);
	my $swallowing = 0;
	my $answer = '';
	while (1)
	{
		for my $fh ($sel->can_read(60))
		{
			my $n = sysread($fh, my $buf, 65536);
			return unless $n;
			if ($fh == $client)
			{
				$swallowing = 1 if index($buf, $marker) >= 0;
				syswrite($server, $buf);
			}
			elsif ($swallowing)
			{
				$answer .= $buf;
				# ReadyForQuery: 'Z', length 5, status byte
				if ($answer =~ /Z\x00\x00\x00\x05[IE]/)
				{
					if (open(my $fh, '>', $report)) { print $fh 'lost'; close $fh; }
					return;
				}
			}
			else
			{
				syswrite($client, $buf);
			}
		}
	}
}

1;
