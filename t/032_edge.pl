# The CDN edge: Varnish (edge/imgmod.vcl) in front of imgmod-origin, kept
# exact by the edge purger.  What the edge caches and refuses; that a
# replace, a purged version and a delete reach it through surrogate-key
# purges; that purges an edge refused or could not receive stay pending
# (through a PostgreSQL restart) and are delivered when it is back; that the
# edge serves its copies while the origin is down; and that a small edge
# shows up full in imgmod.cdn_capacity.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Digest::MD5 qw(md5_hex);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(within upright_marked_ppm ppm_to_jpeg start_node upload_bytes replace_bytes);
use OriginTest qw(start_origin stop_origin http_get);
use EdgeTest qw(start_edge stop_edge restart_edge set_purgers edge_get start_edge_reporter stop_edge_reporter);

# The edge's port is fixed before the server starts: it is in the server's
# configuration.
my $edge_port = PostgreSQL::Test::Cluster::get_free_port();
my $node = start_node('edge', conf => join("\n",
	"imgmod.superseded_retention = '6s'",
	"imgmod.cdn_purge_urls = 'http://127.0.0.1:$edge_port/'",
	"imgmod.cdn_purge_max_backoff = '400ms'"));

sub sql { return $node->safe_psql('postgres', $_[0]); }

# A picture of seeded 3-pixel noise: every seed gives other bytes, and it
# compresses badly enough to fill a small cache.
sub noise_ppm
{
	my ($w, $h, $seed) = @_;
	srand($seed);
	my $out = "P6\n$w $h\n255\n";
	for (my $y = 0; $y < $h; $y += 3)
	{
		my $row = join('', map { my $px = pack('C3', int(rand(256)), int(rand(256)), int(rand(256))); $px x 3 } 1 .. int(($w + 2) / 3));
		$row = substr($row, 0, 3 * $w);
		$out .= $row for $y .. ($y + 2 < $h ? $y + 2 : $h - 1);
	}
	return $out;
}

sub jpeg { my ($w, $h, $seed) = @_; return ppm_to_jpeg(noise_ppm($w, $h, $seed), 90); }


sub etag_of { my ($id, $preset, $version) = @_;
	return sql("SELECT etag FROM imgmod.variants WHERE image_id = $id AND preset = '$preset' AND version = "
		  . ($version // "(SELECT current_version FROM imgmod.images WHERE id = $id)")); }

sub purge_status { return sql("SELECT pending || '|' || sent || '|' || acknowledged || '|' || retried || '|' || coalesce(last_error, '') || '|' || repeated FROM imgmod.cdn_purge_status"); }

# Every change so far purged at the edge, the repeats included: what is
# cached from now on stays until the next change.
sub settled
{
	return within(10, sub {
		my ($pending, $sent, $acked, $retried, $error, $repeated) = split /\|/, purge_status();
		return $pending == 0 && $repeated == $acked;
	});
}

my $id = upload_bytes($node, ppm_to_jpeg(upright_marked_ppm(900, 600), 90), 'edge.jpg');
is(sql("SELECT imgmod.wait($id)"), 'ready', 'an image is ready');
my $o = start_origin($node);
my $e = start_edge($node, $o, port => $edge_port);
ok(defined settled(), 'the first version\'s purge reached the edge');

# --- what the edge caches
my $r1 = edge_get($e, "/i/$id/small.jpg");
is($r1->{status}, 200, 'first request through the edge: 200');
is($r1->{headers}{'x-cache'}, 'MISS', 'and a MISS');
is(md5_hex($r1->{content}), sql("SELECT md5(imgmod.fetch($id, 'small'))"), 'the bytes imgmod.fetch() returns');
my $r2 = edge_get($e, "/i/$id/small.jpg");
is($r2->{headers}{'x-cache'}, 'HIT', 'second request: a HIT');
is($r2->{content}, $r1->{content}, 'with identical bytes');
is($r2->{headers}{etag}, $r1->{headers}{etag}, 'and the same ETag');
is($r2->{headers}{etag}, etag_of($id, 'small'), 'the ETag of imgmod.variants');
like($r2->{headers}{age} // '', qr/^\d+$/, 'an Age header');
is($r2->{headers}{'cache-control'}, 'public, max-age=60, s-maxage=31536000', "the origin's Cache-Control");
ok(!defined $r2->{headers}{xkey} && !defined $r2->{headers}{'surrogate-key'}, 'surrogate keys stay inside the edge');
my $r304 = edge_get($e, "/i/$id/small.jpg", 'If-None-Match' => $r1->{headers}{etag});
is($r304->{status}, 304, 'If-None-Match through the edge: 304');
is($r304->{content} // '', '', 'with no body');
is($r304->{headers}{etag}, $r1->{headers}{etag}, 'and the validator');
my $head = edge_get($e, "/i/$id/small.jpg", method => 'HEAD');
is($head->{status}, 200, 'HEAD: 200');
is($head->{headers}{'content-length'}, length($r1->{content}), 'HEAD: Content-Length of the variant');
is($head->{content} // '', '', 'HEAD: no body');
my $q = edge_get($e, "/i/$id/small.jpg?utm_source=x&v=2", Cookie => 'session=abc');
is($q->{headers}{'x-cache'}, 'HIT', 'query string and cookie do not split the cache');
is(md5_hex($q->{content}), md5_hex($r1->{content}), 'and serve the same bytes');
# HTTP::Tiny sets Host itself: this one is written by hand
my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $e->{port}, Timeout => 5) or die $!;
print $sock "GET /i/$id/small.jpg HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n";
my $raw = do { local $/; <$sock> };
like($raw, qr/^HTTP\/1\.1 200 .*\r\nX-Cache: HIT\r\n/s, 'another Host header does not split the cache either');

# --- what the edge refuses
for my $path ('/', '/healthz', '/metrics', '/index.html', '/x/i/1/small.jpg', '/I/1/small.jpg')
{
	my $r = edge_get($e, $path);
	is($r->{status}, 404, "$path: refused at the edge (404)");
	is($r->{headers}{'content-type'}, 'text/plain; charset=utf-8', "$path: a plain-text answer");
}
for my $m ('POST', 'PUT', 'DELETE', 'OPTIONS', 'BAN')
{
	my $r = edge_get($e, "/i/$id/small.jpg", method => $m);
	is($r->{status}, 405, "$m: 405");
	is($r->{headers}{allow}, 'GET, HEAD', "$m: Allow: GET, HEAD");
}
my $noheader = edge_get($e, '/', method => 'PURGE');
is($noheader->{status}, 400, 'PURGE without an xkey-purge header: 400');
is(edge_get($e, "/i/$id/small.jpg")->{headers}{'x-cache'}, 'HIT', 'the cached variant is still there');

# --- a replace reaches the edge
ok(defined settled(), 'nothing is being purged');
my $v1_small = edge_get($e, "/i/$id/v1/small.jpg");
is($v1_small->{status}, 200, 'the v1 URL through the edge');
is(edge_get($e, "/i/$id/v1/small.jpg")->{headers}{'x-cache'}, 'HIT', 'and cached');
edge_get($e, "/i/$id/thumb.jpg");
edge_get($e, "/i/$id/v2/small.jpg");    # a 404 the edge may keep for a while
my $v2 = replace_bytes($node, $id, jpeg(800, 500, 7), 'edge2.jpg');
is($v2, 2, 'replaced: version 2');
is(sql("SELECT imgmod.wait($id)"), 'ready', 'version 2 is ready');
my $new_etag = etag_of($id, 'small');
isnt($new_etag, $r1->{headers}{etag}, 'version 2 has another ETag');
my $first_new;
my $took = within(1.0, sub {
	my $r = edge_get($e, "/i/$id/small.jpg");
	return 0 unless ($r->{headers}{etag} // '') eq $new_etag;
	$first_new = $r;
	return 1;
});
ok(defined $took, 'within 1 s of imgmod.wait() the unversioned URL serves version 2 through the edge')
  or diag(purge_status());
is($first_new->{headers}{'x-cache'}, 'MISS', 'first the new version is a MISS');
is(md5_hex($first_new->{content}), sql("SELECT md5(imgmod.fetch($id, 'small'))"), 'with the bytes of version 2');
my $again = edge_get($e, "/i/$id/small.jpg");
is($again->{headers}{'x-cache'}, 'HIT', 'then a HIT');
is($again->{headers}{etag}, $new_etag, 'of version 2');
is(edge_get($e, "/i/$id/thumb.jpg")->{headers}{etag}, etag_of($id, 'thumb'), 'every preset follows (thumb)');
my $v2url = edge_get($e, "/i/$id/v2/small.jpg");
is($v2url->{status}, 200, 'a 404 the edge cached for the v2 URL before it existed is gone');
my $old = edge_get($e, "/i/$id/v1/small.jpg");
is($old->{status}, 200, 'the v1 URL still serves');
is($old->{content}, $v1_small->{content}, 'the old bytes');
is($old->{headers}{'x-cache'}, 'HIT', 'from the edge (not purged)');

# --- the superseded version is purged: its URLs answer 404
ok(within(60, sub { sql("SELECT status FROM imgmod.image_versions WHERE image_id = $id AND version = 1") eq 'purged' }),
	'version 1 is purged after the retention');
ok(defined within(5, sub { edge_get($e, "/i/$id/v1/small.jpg")->{status} == 404 }),
	'then the v1 URL answers 404 through the edge');
is(edge_get($e, "/i/$id/small.jpg")->{headers}{etag}, $new_etag, 'while the current URL still serves version 2');

# --- delete: every URL 404 through the edge
my $gone = upload_bytes($node, jpeg(640, 480, 3), 'gone.jpg');
is(sql("SELECT imgmod.wait($gone)"), 'ready', 'an image to delete is ready');
my @gone_paths = map { ("/i/$gone/$_.jpg", "/i/$gone/v1/$_.jpg") } qw(thumb small medium large);
is(edge_get($e, $_)->{status}, 200, "$_ cached at the edge") for @gone_paths;
sql("SELECT imgmod.delete($gone)");
ok(defined within(5, sub { !grep { edge_get($e, $_)->{status} != 404 } @gone_paths }),
	'after delete() every URL of the image answers 404 through the edge');

# --- purges refused by the edge stay pending, then are delivered
my @ids = map { upload_bytes($node, jpeg(600, 400, 20 + $_), "batch$_.jpg") } 1 .. 5;
is(sql("SELECT imgmod.wait($_)"), 'ready', "image $_ ready") for @ids;
# (their first versions' purges reach the edge before they are cached)
ok(defined settled(), 'the new images\' purges are delivered');
my %before = map { $_ => edge_get($e, "/i/$_/small.jpg")->{content} } @ids;
is(edge_get($e, "/i/$_/small.jpg")->{headers}{'x-cache'}, 'HIT', "image $_ cached at the edge") for @ids;
set_purgers($e, '192.0.2.1');
my $refused = edge_get($e, '/', method => 'PURGE', 'xkey-purge' => "imgmod-image-$ids[0]");
is($refused->{status}, 403, 'a purge from an address outside the ACL: 403');
is(edge_get($e, "/i/$ids[0]/small.jpg")->{headers}{'x-cache'}, 'HIT', 'and nothing was purged');
replace_bytes($node, $_, jpeg(600, 400, 40 + $_), "batch$_-2.jpg") for @ids;
is(sql("SELECT imgmod.wait($_)"), 'ready', "image $_ replaced and ready") for @ids;
ok(defined within(20, sub {
	my ($pending, $sent, $acked, $retried, $error) = split /\|/, purge_status();
	return $pending >= 5 && $retried >= 1 && $error =~ /^edge answered 403/;
}), 'the refused purges stay pending, are retried, and the refusal is shown') or diag(purge_status());
like(sql("SELECT to_char(oldest_pending_age, 'HH24:MI:SS') FROM imgmod.cdn_purge_status"), qr/^\d\d:\d\d:\d\d$/,
	'with the age of the oldest');
is(edge_get($e, "/i/$ids[0]/small.jpg")->{content}, $before{$ids[0]}, 'meanwhile the edge still has the old bytes');

# a PostgreSQL restart with purges pending
$node->restart;
my ($pending_after) = split /\|/, purge_status();
cmp_ok($pending_after, '>=', 5, 'after a PostgreSQL restart the purges are still pending');

set_purgers($e, '127.0.0.1', '::1');
ok(defined within(20, sub { (split /\|/, purge_status())[0] == 0 }), 'once the edge accepts purges, none is pending')
  or diag(purge_status());
for my $img (@ids)
{
	my $r = edge_get($e, "/i/$img/small.jpg");
	is($r->{headers}{etag}, etag_of($img, 'small'), "image $img: the new version through the edge");
	isnt($r->{content}, $before{$img}, "image $img: no stale bytes");
}
my ($p, $sent, $acked, $retried, $error) = split /\|/, purge_status();
cmp_ok($acked, '<', $sent, 'sent counts the refused attempts too');
is($error, '', 'and the error is cleared');

# --- an edge that is down while an image changes gets the purge when it is back
my $down = $ids[0];
stop_edge($e);
replace_bytes($node, $down, jpeg(600, 400, 77), 'down.jpg');
is(sql("SELECT imgmod.wait($down)"), 'ready', 'replaced while the edge is down');
ok(defined within(20, sub { my @s = split /\|/, purge_status(); $s[0] >= 1 && $s[4] =~ /^edge unreachable/ }),
	'the purge is pending: edge unreachable') or diag(purge_status());
restart_edge($e);
ok(defined within(20, sub { (split /\|/, purge_status())[0] == 0 }), 'delivered once the edge is back');
is(edge_get($e, "/i/$down/small.jpg")->{headers}{etag}, etag_of($down, 'small'), 'and the edge serves the new version');

# --- origin stopped: the edge keeps serving what it holds
edge_get($e, "/i/$id/medium.jpg") for 1 .. 2;
is(stop_origin($o), 0, 'the origin stops');
my $cached = edge_get($e, "/i/$id/medium.jpg");
is($cached->{status}, 200, 'origin down: a cached variant is still served');
is($cached->{headers}{'x-cache'}, 'HIT', 'from the edge');
my $uncached = edge_get($e, "/i/$id/large.jpg");
is($uncached->{status}, 503, 'origin down: an uncached variant is 503');
is($uncached->{headers}{'retry-after'}, '5', 'with Retry-After');
unlike($uncached->{content}, qr/127\.0\.0\.1|backend|varnish/i, 'and no internal detail');
$o = start_origin($node);
stop_edge($e);

# --- request coalescing: concurrent misses of one URL make one origin fetch.
# A stand-in origin that takes a second per answer and counts requests.
{
	my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 32, ReuseAddr => 1)
	  or die "listen: $!";
	my $count_file = $node->basedir . '/slow_origin_requests';
	PostgreSQL::Test::Utils::append_to_file($count_file, '');
	my $server = fork();
	die "fork: $!" unless defined $server;
	if ($server == 0)
	{
		while (my $c = $listen->accept)
		{
			while (defined(my $line = <$c>))
			{
				next unless $line =~ /^GET /;
				1 while defined($line = <$c>) && $line ne "\r\n";
				open(my $fh, '>>', $count_file) or die $!;
				print $fh "x";
				close $fh;
				sleep 1;    # a slow origin, so the other requests arrive while it answers
				print $c "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 4\r\n"
				  . "Cache-Control: public, max-age=60, s-maxage=31536000\r\nxkey: imgmod-image-1\r\n\r\nslow";
			}
			close $c;
		}
		POSIX::_exit(0);    # not exit: the END blocks would stop the parent's servers
	}
	my $slow = start_edge($node, { port => $listen->sockport });
	my @clients;
	for (1 .. 10)
	{
		my $pid = fork();
		die "fork: $!" unless defined $pid;
		if ($pid == 0)
		{
			my $r = edge_get($slow, '/i/1/coalesced.jpg');
			POSIX::_exit($r->{status} == 200 && $r->{content} eq 'slow' ? 0 : 1);
		}
		push @clients, $pid;
	}
	my $served = 0;
	for my $pid (@clients) { waitpid($pid, 0); $served++ if $? == 0; }
	is($served, 10, '10 concurrent requests for one uncached URL are all answered');
	is(length(PostgreSQL::Test::Utils::slurp_file($count_file)), 1, 'with one fetch from the origin (request coalescing)');
	stop_edge($slow);
	kill 'TERM', $server;
	waitpid($server, 0);
}

# --- grace: an object past its TTL is still served while the origin is down.
# A stand-in origin answers once with a one-second s-maxage and is then
# stopped; once the edge reports the object older than its TTL (Age >= 2),
# every request must still get it, stale, and the failed background fetch
# must not drop it.
{
	my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 8, ReuseAddr => 1)
	  or die "listen: $!";
	my $port = $listen->sockport;
	my $server = fork();
	die "fork: $!" unless defined $server;
	if ($server == 0)
	{
		my $c = $listen->accept or POSIX::_exit(1);
		my $line;
		1 while defined($line = <$c>) && $line ne "\r\n";
		print $c "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 5\r\n"
		  . "Cache-Control: public, max-age=1, s-maxage=1\r\nxkey: imgmod-image-1\r\nConnection: close\r\n\r\nstale";
		close $c;
		POSIX::_exit(0);    # one answer, then the origin is gone
	}
	close $listen;
	my $edge = start_edge($node, { port => $port });
	my $first = edge_get($edge, '/i/1/grace.jpg');
	is($first->{status} . ' ' . $first->{content}, '200 stale', 'grace: the object is fetched once');
	waitpid($server, 0);
	my $expired;
	ok( defined within(20, sub {
				$expired = edge_get($edge, '/i/1/grace.jpg');
				return ($expired->{headers}{age} // 0) >= 2;
			}),
		'its TTL of 1 s passes (Age ' . ($expired->{headers}{age} // '?') . ')');
	is($expired->{status} . ' ' . $expired->{content}, '200 stale', 'past its TTL, with the origin down, it is still served');
	is($expired->{headers}{'x-cache'}, 'HIT', 'from the edge (grace)');
	my $again = edge_get($edge, '/i/1/grace.jpg');
	is($again->{status} . ' ' . $again->{content}, '200 stale', 'and again after the failed background fetch');
	cmp_ok($again->{headers}{age}, '>=', 2, 'still the stale copy (Age ' . $again->{headers}{age} . ')');
	is(edge_get($edge, '/i/1/never-fetched.jpg')->{status}, 503, 'what the edge never held is 503');
	stop_edge($edge);
}

# --- capacity: a small edge fills, evicts and shows up full
my $small = start_edge($node, $o, storage => '1m');
start_edge_reporter($node, $small, node => 'edge-small');
my @many = map { upload_bytes($node, jpeg(1200, 900, 100 + $_), "fill$_.jpg") } 1 .. 6;
is(sql("SELECT imgmod.wait($_)"), 'ready', "filler $_ ready") for @many;
my $bytes = sql("SELECT sum(bytes) FROM imgmod.variants WHERE image_id IN (" . join(',', @many) . ")");
cmp_ok($bytes, '>', 2 * 1024 * 1024, 'the fillers hold more than twice the edge');
for my $img (@many)
{
	edge_get($small, "/i/$img/$_.jpg") for qw(large medium small thumb);
}
ok(defined within(15, sub {
	sql("SELECT state = 'full' AND used_bytes <= capacity_bytes AND evictions > 0 FROM imgmod.cdn_capacity WHERE node = 'edge-small' AND tier = 'edge'") eq 't'
}), 'imgmod.cdn_capacity: tier edge, full, used bytes within capacity')
  or diag(sql("SELECT * FROM imgmod.cdn_capacity"));
my ($cap, $used, $items) = split /\|/, sql("SELECT capacity_bytes, used_bytes, items FROM imgmod.cdn_capacity WHERE node = 'edge-small'");
cmp_ok($cap, '>=', 900 * 1024, 'capacity is the storage size');
cmp_ok($cap, '<=', 1024 * 1024, 'and no more');
cmp_ok($items, '>', 0, 'objects counted');
is(stop_edge_reporter($small), 0, 'the reporter stops cleanly');
stop_edge($small);
ok(defined within(20, sub { sql("SELECT state FROM imgmod.cdn_capacity WHERE node = 'edge-small'") eq 'stale' }),
	'and the stopped edge turns stale');

is(stop_origin($o), 0, 'origin stops');
done_testing();
