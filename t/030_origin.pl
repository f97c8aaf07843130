# imgmod-origin against the embedded store: the bytes and headers it serves,
# conditional requests, HEAD, the tiers, how it follows replace() and
# delete() through LISTEN (and ignores a forged NOTIFY), a PostgreSQL
# stop and start under it, /healthz and the store probe, hostile requests, slow clients, a bounded memory cache
# reported in imgmod.cdn_capacity, and a clean SIGTERM.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Digest::MD5 qw(md5_hex);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm gradient_ppm ppm_to_jpeg start_node upload_bytes replace_bytes);
use OriginTest qw(start_origin stop_origin http_get origin_metric wait_health secrets_shown);

# The surrogate keys an edge purges by, the same in xkey and Surrogate-Key
# (the contract with the extension's purges: origin/route.h).
sub surrogate_keys_are
{
	my ($res, $want, $what) = @_;
	is($res->{headers}{xkey}, $want, "$what: xkey");
	is($res->{headers}{'surrogate-key'}, $want, "$what: Surrogate-Key");
}

sub no_surrogate_keys
{
	my ($res, $what) = @_;
	ok(!defined $res->{headers}{xkey} && !defined $res->{headers}{'surrogate-key'}, "$what: no surrogate key");
}

my $node = start_node('origin', conf => "imgmod.superseded_retention = '1h'");
my $id = upload_bytes($node, ppm_to_jpeg(upright_marked_ppm(900, 600), 90), 'origin.jpg');
is($node->safe_psql('postgres', "SELECT imgmod.wait($id)"), 'ready', 'an image is ready');
# A conninfo carrying a password (the test cluster trusts local
# connections, so it is only carried) and a PGPASSWORD: neither may show
# in ps or in the log.
my %secrets = ('the conninfo password' => 'conninfo-pw-' . int(rand(1e9)), PGPASSWORD => 'pgpassword-' . int(rand(1e9)));
my $o = start_origin($node, args => ['--timeout', 2],
	env => { IMGMOD_ORIGIN_CONNINFO => 'host=' . $node->host . ' port=' . $node->port
		  . " dbname=postgres user=origin password=$secrets{'the conninfo password'}",
		PGPASSWORD => $secrets{PGPASSWORD} });
like(slurp_file("/proc/$o->{pid}/cmdline"), qr{^\Q$ENV{IMGMOD_ORIGIN_BIN}\E\0--port\0}, 'the command line of the origin is read');
is(join(', ', secrets_shown($o, %secrets)), '', 'no password in its command line or log');

# --- bytes and headers, every preset, both URL forms
my @presets = split /\n/, $node->safe_psql('postgres', "SELECT preset FROM imgmod.variants WHERE image_id = $id ORDER BY 1");
is(scalar(@presets), 4, 'four presets');
for my $p (@presets)
{
	my ($md5, $etag) = split /\|/, $node->safe_psql('postgres',
		"SELECT md5(imgmod.fetch($id, '$p')), etag FROM imgmod.variants WHERE image_id = $id AND preset = '$p'");
	for my $path ("/i/$id/$p.jpg", "/i/$id/v1/$p.jpg")
	{
		my $r = http_get($o, $path);
		is($r->{status}, 200, "GET $path");
		is(md5_hex($r->{content}), $md5, "$path: the bytes imgmod.fetch() returns");
		is($r->{headers}{'content-type'}, 'image/jpeg', "$path: Content-Type");
		is($r->{headers}{'content-length'}, length($r->{content}), "$path: Content-Length");
		is($r->{headers}{etag}, $etag, "$path: the ETag of imgmod.variants");
		is($r->{headers}{'x-content-type-options'}, 'nosniff', "$path: nosniff");
		like($r->{headers}{'last-modified'} // '', qr/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/, "$path: Last-Modified");
		if ($path =~ m{/v1/})
		{
			is($r->{headers}{'cache-control'}, 'public, max-age=31536000, immutable', "$path: immutable");
			surrogate_keys_are($r, "imgmod-image-$id-v1 imgmod-image-$id-all", $path);
		}
		else
		{
			is($r->{headers}{'cache-control'}, 'public, max-age=60, s-maxage=31536000', "$path: short browser, long CDN");
			surrogate_keys_are($r, "imgmod-image-$id imgmod-image-$id-all", $path);
		}
	}
}
my $thumb_etag = $node->safe_psql('postgres', "SELECT etag FROM imgmod.variants WHERE image_id = $id AND preset = 'thumb'");
my $r = http_get($o, "/i/$id/thumb.jpg", 'If-None-Match' => $thumb_etag);
is($r->{status}, 304, 'If-None-Match with the ETag: 304');
is($r->{content} // '', '', 'with no body');
is($r->{headers}{etag}, $thumb_etag, 'and the same validator');
is($r->{headers}{'cache-control'}, 'public, max-age=60, s-maxage=31536000', 'and the same cache headers');
surrogate_keys_are($r, "imgmod-image-$id imgmod-image-$id-all", '304 of the current URL');
$r = http_get($o, "/i/$id/v1/thumb.jpg", 'If-None-Match' => $thumb_etag);
is($r->{status}, 304, 'the versioned URL with the ETag: 304');
surrogate_keys_are($r, "imgmod-image-$id-v1 imgmod-image-$id-all", '304 of the versioned URL');
is(http_get($o, "/i/$id/thumb.jpg", 'If-None-Match' => "\"other\", W/$thumb_etag")->{status}, 304, 'a list with a weak match: 304');
is(http_get($o, "/i/$id/thumb.jpg", 'If-None-Match' => '"other"')->{status}, 200, 'another ETag: 200');
$r = http_get($o, "/i/$id/v1/medium.jpg", method => 'HEAD');
is($r->{status}, 200, 'HEAD: 200');
is($r->{content} // '', '', 'HEAD: no body');
ok($r->{headers}{'content-length'} > 1000, 'HEAD: the Content-Length of the body');
is(http_get($o, "/i/$id/thumb.jpg?width=9999&x=../../etc")->{status}, 200, 'a query string is ignored');

# --- tiers: the first request of a variant read the store, the second was a memory hit
is(origin_metric($o, 'imgmod_origin_tier_hits_total{tier="store"}'), 4, 'each of the 4 variants read from the store once');
cmp_ok(origin_metric($o, 'imgmod_origin_tier_hits_total{tier="memory"}'), '>=', 4, 'every later request a memory hit');

# --- replace(): the unversioned URL follows as soon as the event arrives
my $v2 = replace_bytes($node, $id, ppm_to_jpeg(gradient_ppm(700, 500), 90), 'origin-v2.jpg');
is($node->safe_psql('postgres', "SELECT imgmod.wait($id)"), 'ready', "version $v2 ready");
my $v2_etag = $node->safe_psql('postgres', "SELECT etag FROM imgmod.variants WHERE image_id = $id AND version = 2 AND preset = 'thumb'");
my $followed = 0;
for (1 .. 100)
{
	last if ($followed = (http_get($o, "/i/$id/thumb.jpg")->{headers}{etag} // '') eq $v2_etag);
	select(undef, undef, undef, 0.02);
}
ok($followed, 'the unversioned URL serves version 2');
is(md5_hex(http_get($o, "/i/$id/thumb.jpg")->{content}), $node->safe_psql('postgres', "SELECT md5(imgmod.fetch($id, 'thumb'))"),
	'with version 2\'s bytes');
is(http_get($o, "/i/$id/v1/thumb.jpg")->{headers}{etag}, $thumb_etag, 'the v1 URL still serves v1 (kept for the retention)');
is(http_get($o, "/i/$id/v2/thumb.jpg")->{headers}{etag}, $v2_etag, 'and the v2 URL v2');
$r = http_get($o, "/i/$id/v3/thumb.jpg");
is($r->{status}, 404, 'a version that does not exist: 404');
surrogate_keys_are($r, "imgmod-image-$id-v3 imgmod-image-$id-all", '404 of a version not (yet) there');
$r = http_get($o, "/i/$id/nonesuch.jpg");
is($r->{status}, 404, 'a preset that does not exist: 404');
surrogate_keys_are($r, "imgmod-image-$id imgmod-image-$id-all", '404 of an unknown preset');
$r = http_get($o, '/i/424242/thumb.jpg');
is($r->{status}, 404, 'an image that does not exist: 404');
surrogate_keys_are($r, 'imgmod-image-424242 imgmod-image-424242-all', '404 of an unknown image');
no_surrogate_keys(http_get($o, '/i/abc/thumb.jpg'), '400 of a malformed path');
no_surrogate_keys(http_get($o, '/etc/passwd'), '404 outside /i/');
no_surrogate_keys(http_get($o, '/healthz'), '/healthz');

# --- a forged NOTIFY is only a hint: nothing served changes
$node->safe_psql('postgres', qq{SELECT pg_notify('imgmod_status', '{"image_id": $id, "version": 1, "status": "ready"}')});
$node->safe_psql('postgres', q{SELECT pg_notify('imgmod_status', 'not json at all')});
is(http_get($o, "/i/$id/thumb.jpg")->{headers}{etag}, $v2_etag, 'after forged notifications the current version is still 2');

# --- /healthz: PostgreSQL and the store (probed at most once a second)
$r = http_get($o, '/healthz');
is($r->{status}, 200, '/healthz: 200 with PostgreSQL and the store up');
is($r->{content}, "ok\n", '/healthz: ok');
# fifty checks in a row cost at most two probes of the store
my $probes = origin_metric($o, 'imgmod_origin_store_probes_total{result="ok"}');
cmp_ok($probes, '>=', 1, "the store was probed ($probes)");
my $t0 = time;
is(scalar(grep { http_get($o, '/healthz')->{status} == 200 } 1 .. 50), 50, '/healthz hammered: 50 times 200');
my $spent = time - $t0;
my $more = origin_metric($o, 'imgmod_origin_store_probes_total{result="ok"}') - $probes;
cmp_ok($more, '<=', 1 + int($spent), "50 requests in ${spent}s made $more probe(s): at most one a second");
my $store = $node->data_dir . '/imgmod/store';
my $store_mode = (stat $store)[2] & 07777;
rename($store, "$store.away") or die "rename $store: $!";
$r = wait_health($o, 503);
is($r->{status}, 503, 'the store directory gone: /healthz 503');
is($r->{content}, "store unreachable\n", 'naming the store, nothing more');
is($r->{headers}{'cache-control'}, 'no-store', 'not cached');
rename("$store.away", $store) or die "rename $store.away: $!";
is(wait_health($o, 200)->{content}, "ok\n", 'the store directory back: /healthz 200');
chmod(0, $store) or die "chmod $store: $!";
$r = wait_health($o, 503);
is($r->{status}, 503, 'the store directory unreadable: /healthz 503');
is($r->{content}, "store unreachable\n", 'naming the store');
chmod($store_mode, $store) or die "chmod $store: $!";
is(wait_health($o, 200)->{status}, 200, 'readable again: /healthz 200');

# --- PostgreSQL stopped, then started, under the origin
$node->stop;
$r = wait_health($o, 503);
is($r->{status}, 503, 'PostgreSQL stopped: /healthz 503');
is($r->{content}, "postgres unreachable\n", 'naming PostgreSQL');
rename($store, "$store.away") or die "rename $store: $!";
is(wait_health($o, 503, "postgres and store unreachable\n")->{content}, "postgres and store unreachable\n",
	'both down: both named');
rename("$store.away", $store) or die "rename $store.away: $!";
$node->start;
my $back = 0;
for (1 .. 200)
{
	last if ($back = http_get($o, "/i/$id/small.jpg")->{status} == 200);
	select(undef, undef, undef, 0.05);
}
ok($back, 'after PostgreSQL is back the origin reconnects and serves');
is(wait_health($o, 200)->{content}, "ok\n", '/healthz is 200 again');

# --- hostile requests
for my $case (
	['/i/abc/thumb.jpg', 400], ['/i/1/Thumb.jpg', 400], ["/i/$id/../$id/thumb.jpg", 400],
	["/i/$id/%2e%2e/thumb.jpg", 400], ["/i/$id/%74humb.jpg", 400], ["/i//thumb.jpg", 400],
	["/i/$id//thumb.jpg", 400], ['/i/99999999999999999999/thumb.jpg', 400], ["/i/$id/thumb.png", 400],
	["/i/$id/original.jpg", 404], ["/i/$id/master.jpg", 404], ['/i/424242/thumb.jpg', 404],
	["/i/$id/nonesuch.jpg", 404], ['/etc/passwd', 404], ['/', 404])
{
	my ($path, $want) = @$case;
	my $res = http_get($o, $path);
	is($res->{status}, $want, "GET $path: $want");
	unlike($res->{content}, qr/imgmod\.|postgres|store|\/tmp|secret/i, "GET $path: the body tells nothing internal")
	  if $want != 200;
}
like(http_get($o, '/i/424242/thumb.jpg')->{headers}{'cache-control'}, qr/max-age=10\b/, '404 is cached briefly');
$r = http_get($o, "/i/$id/thumb.jpg", method => 'POST');
is($r->{status}, 405, 'POST: 405');
is($r->{headers}{allow}, 'GET, HEAD', 'with Allow');
is(http_get($o, "/i/$id/thumb.jpg", method => 'DELETE')->{status}, 405, 'DELETE: 405');
# libmicrohttpd (0.9.75, Debian 12) answers these itself, before the
# handler sees the request, when they overflow the connection's memory pool
# (MHD_OPTION_CONNECTION_MEMORY_LIMIT, 32 KiB in http.c): 431 for header
# fields (one huge or very many), 414 when the request line alone does.
$r = http_get($o, "/i/$id/thumb.jpg", 'X-Padding' => 'x' x 40000);
is($r->{status}, 431, 'an oversized header: 431');
$r = http_get($o, "/i/$id/thumb.jpg", map { ("X-Many-$_" => 'y' x 16) } 1 .. 3000);
is($r->{status}, 431, '3,000 small headers: 431');
$r = http_get($o, "/i/$id/" . ('a' x 40000) . '.jpg');
is($r->{status}, 414, 'a request line over the limit: 414');
is(http_get($o, "/i/$id/thumb.jpg", 'X-Padding' => 'x' x 20000)->{status}, 200, 'a 20 kB header is still served');

# --- slow clients: 1,000 idle connections do not stop a normal client
my @idle;
for (1 .. 1000)
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $o->{port}, Proto => 'tcp') or last;
	push @idle, $s;
}
is(scalar(@idle), 1000, '1,000 idle connections are open');
is(http_get($o, "/i/$id/thumb.jpg")->{status}, 200, 'a normal client is still served');
my $closed = 0;
for my $s (@idle[0 .. 9])
{
	# the origin closes after its timeout (2 s): EOF; never wait past 15 s
	my $n = IO::Select->new($s)->can_read(15) ? sysread($s, my $buf, 1) : undef;
	$closed++ if defined $n && $n == 0;
}
is($closed, 10, 'idle connections are closed after the connection timeout');
close $_ for @idle;

# --- delete(): every URL of the image answers 404
is($node->safe_psql('postgres', "SELECT imgmod.delete($id)"), '1', 'deleted (version 2; version 1 was superseded already)');
my $gone = 0;
for (1 .. 100)
{
	last if ($gone = http_get($o, "/i/$id/thumb.jpg")->{status} == 404);
	select(undef, undef, undef, 0.02);
}
ok($gone, 'the current URL answers 404');
$r = http_get($o, "/i/$id/v1/thumb.jpg");
is($r->{status}, 404, 'so does v1');
surrogate_keys_are($r, "imgmod-image-$id-v1 imgmod-image-$id-all", '404 of a deleted image\'s version');
surrogate_keys_are(http_get($o, "/i/$id/thumb.jpg"), "imgmod-image-$id imgmod-image-$id-all",
	'404 of a deleted image\'s current URL');
is(http_get($o, "/i/$id/v2/small.jpg")->{status}, 404, 'and v2');

# --- its capacity in SQL, and a clean stop
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM imgmod.cdn_capacity WHERE tier = 'origin-memory' AND items > 0"),
	'imgmod.cdn_capacity shows the node');
is(stop_origin($o), 0, 'SIGTERM: the origin exits 0');
like(slurp_file($o->{log}), qr/serving on/, 'its log is read');
is(join(', ', secrets_shown($o, %secrets)), '', 'after a PostgreSQL stop and start, still no password in its log');

# --- a small memory cache: bounded, evicting, and "full" in SQL
my @ids = map { upload_bytes($node, ppm_to_jpeg(gradient_ppm(1200 + 10 * $_, 900), 92), "many$_.jpg") } 1 .. 8;
is($node->safe_psql('postgres', "SELECT imgmod.wait($_)"), 'ready', "image $_ ready") for @ids;
my $capacity = 120_000;
$o = start_origin($node, args => ['--cache-bytes', $capacity, '--node', 'small-cache']);
my $requested = 0;
for my $round (1 .. 3)
{
	for my $i (@ids)
	{
		for my $p ('large', 'medium', 'small')
		{
			my $res = http_get($o, "/i/$i/$p.jpg");
			$requested += length($res->{content}) if $round == 1;
		}
	}
}
cmp_ok($requested, '>', 3 * $capacity, "distinct variants requested: $requested bytes, over 3x the capacity");
my $used = origin_metric($o, 'imgmod_origin_cache_used_bytes');
cmp_ok($used, '<=', $capacity, "the cache holds $used bytes, within its capacity");
cmp_ok(origin_metric($o, 'imgmod_origin_cache_evictions_total'), '>', 0, 'evictions are counted');
my ($rss) = slurp_file("/proc/$o->{pid}/status") =~ /^VmRSS:\s+(\d+) kB/m;
cmp_ok($rss * 1024, '<', $capacity + 48 * 1024 * 1024, "the origin's resident size (" . $rss * 1024 . " bytes) stays under the capacity + 48 MiB");
ok($node->poll_query_until('postgres',
		"SELECT used_bytes <= capacity_bytes AND evictions > 0 FROM imgmod.cdn_capacity WHERE node = 'small-cache'"),
	'imgmod.cdn_capacity: used within capacity, evictions reported');
# one more round of misses while it is evicting: full
for my $i (@ids) { http_get($o, "/i/$i/thumb.jpg"); http_get($o, "/i/$i/large.jpg"); }
ok($node->poll_query_until('postgres', "SELECT state = 'full' FROM imgmod.cdn_capacity WHERE node = 'small-cache'"),
	'and its state is full while it evicts');
is(stop_origin($o), 0, 'stopped');
ok($node->poll_query_until('postgres', "SELECT state = 'stale' FROM imgmod.cdn_capacity WHERE node = 'small-cache'"),
	'a node that stopped reporting turns stale');

$node->stop;
done_testing();
