# A product page in a real browser: HTML made by one SQL query over
# imgmod.url() / imgmod.srcset(), its images loaded through the CDN edge
# (Varnish in front of imgmod-origin) by headless Chromium, driven by
# test/browser/product_page.py (Playwright for Python, Debian's
# /usr/bin/chromium).  Every image decodes, srcset and sizes pick the preset
# the layout asks for at a narrow and a wide viewport, and after a replace a
# reload shows the new version.
#
# IMGMOD_UPDATE_SCREENSHOT=1 writes the wide viewport's screenshot to
# docs/product-page.png (scripts/run-tap.sh copies it back to the source tree).
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Digest::MD5 qw(md5_hex);
use File::Path qw(make_path);
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(start_node upload_bytes replace_bytes read_binary jpegtran);
use OriginTest qw(start_origin stop_origin);
use EdgeTest qw(start_edge stop_edge edge_get);

# The browser and its driver: installed by scripts/install-deps.sh.  Missing,
# the test fails (it is not skipped).
my $python = ($ENV{IMGMOD_TOOLS_VENV} || '/opt/imgmod-tools') . '/bin/python';
my $driver = ($ENV{TESTDIR} // "$FindBin::Bin/..") . '/test/browser/product_page.py';
-x $python or die "$python is missing: scripts/install-deps.sh installs Playwright into the tools venv";
-x '/usr/bin/chromium' or die '/usr/bin/chromium is missing: scripts/install-deps.sh installs Debian\'s chromium';
-f $driver or die "$driver is missing";

my $fixtures = ($ENV{TESTDIR} // "$FindBin::Bin/..") . '/test/fixtures';
my $tmp = PostgreSQL::Test::Utils::tempdir();

# The layout, in CSS pixels: one column up to 600 px, two above, 16 px of
# padding around the grid and between its columns.  sizes says the same.
my ($breakpoint, $pad, $gap) = (600, 16, 16);
my $sizes = "(max-width: ${breakpoint}px) calc(100vw - " . (2 * $pad) . 'px), calc(50vw - ' . ($pad + $gap / 2) . 'px)';
sub slot_width { my ($vw) = @_; return $vw <= $breakpoint ? $vw - 2 * $pad : $vw / 2 - ($pad + $gap / 2); }
my @narrow = (360, 800);
my @wide = (1400, 900);

my $edge_port = PostgreSQL::Test::Cluster::get_free_port();
my $node = start_node('browser', conf => "imgmod.cdn_purge_urls = 'http://127.0.0.1:$edge_port/'");
sub sql { return $node->safe_psql('postgres', $_[0]); }

# --- a grid of six photos, uploaded in the formats a shop receives
my @photos = (
	[ 'formats/jpeg_progressive_420.jpg', 'Meadow at dusk' ],
	[ 'formats/webp_lossy.webp', 'Seed head' ],
	[ 'formats/avif_aom.avif', 'Evening light' ],
	[ 'formats/heic_x265.heic', 'From the phone' ],
	[ 'formats/jpeg_gray.jpg', 'Silver print' ],
	[ 'exif/icc_adobergb.jpg', 'Wide gamut' ]);
sql("CREATE TABLE shop_photos (position int PRIMARY KEY, image_id bigint NOT NULL, title text NOT NULL)");
my @ids;
for my $i (0 .. $#photos)
{
	my ($file, $title) = @{ $photos[$i] };
	my $id = upload_bytes($node, read_binary("$fixtures/$file"), $file =~ s{.*/}{}r);
	push @ids, $id;
	sql("INSERT INTO shop_photos VALUES ($i + 1, $id, '$title')");
}
is(sql("SELECT imgmod.wait($_)"), 'ready', "photo $_ is ready") for @ids;

my $o = start_origin($node);
my $e = start_edge($node, $o, port => $edge_port);
sql("ALTER DATABASE postgres SET imgmod.cdn_base_url = '$e->{url}'");

# The page, made by one query: every <img> names its current version's
# variants in srcset, the medium one as src for browsers without srcset.
my $page_sql = <<"SQL";
SELECT format(\$page\$<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Meadow prints</title>
<style>
body { margin: 0; padding: ${pad}px; font: 15px/1.4 sans-serif; color: #222; background: #fafaf7; }
h1 { margin: 0 0 ${pad}px; font-size: 22px; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: ${gap}px; }
\@media (max-width: ${breakpoint}px) { .grid { grid-template-columns: 1fr; } }
figure { margin: 0; }
img { display: block; width: 100%%; height: auto; border-radius: 4px; }
figcaption { padding: 4px 0; }
</style></head>
<body><h1>Meadow prints</h1>
<main class="grid">
%s
</main></body></html>
\$page\$, string_agg(format(
    '<figure><img src="%s" srcset="%s" sizes="%s" width="%s" height="%s" alt="%s">'
    '<figcaption>%s &middot; from a %s upload</figcaption></figure>',
    imgmod.url(i.id, 'medium'), imgmod.srcset(i.id), '$sizes', i.width, i.height, s.title,
    s.title, upper(i.detected_format)), E'\\n' ORDER BY s.position))
  FROM shop_photos s JOIN imgmod.images i ON i.id = s.image_id
SQL
my $page = "$tmp/product.html";
sub write_page
{
	open(my $fh, '>:utf8', $page) or die "$page: $!";
	print $fh sql($page_sql);
	close $fh;
}
write_page();
my $html = slurp_file($page);
is(scalar(() = $html =~ /<img /g), scalar @ids, 'the page has one <img> per photo');
like($html, qr{srcset="\Q$e->{url}\E/i/$ids[0]/v1/\w+\.jpg \d+w, }, 'srcset names versioned URLs on the edge');

# What a browser should pick at a viewport: the narrowest variant at least
# as wide as the slot sizes gives (device scale factor 1), else the widest;
# the candidates are srcset()'s: variants whose preset has a width and fit
# contain (a cover preset, the square thumb, is another picture).
sub expected_preset
{
	my ($id, $vw) = @_;
	my $slot = slot_width($vw);
	return sql("SELECT v.preset FROM imgmod.images i"
		  . " JOIN imgmod.variants v ON v.image_id = i.id AND v.version = i.current_version"
		  . " JOIN imgmod.presets p ON p.name = v.preset AND p.width IS NOT NULL AND p.fit = 'contain'"
		  . " WHERE i.id = $id ORDER BY v.width >= $slot DESC,"
		  . " CASE WHEN v.width >= $slot THEN v.width ELSE -v.width END, v.preset LIMIT 1");
}

# --- the browser: both viewports, then a reload when asked on stdin
my $home = "$tmp/home";    # Chromium's profile and caches
make_path($home);
my $shot = ($ENV{IMGMOD_UPDATE_SCREENSHOT} // '') eq '1'
  ? ($ENV{TESTDIR} // die 'TESTDIR is not set') . '/docs/product-page.png'
  : "$tmp/product-page.png";
make_path($shot =~ s{/[^/]*$}{}r);
my ($in, $out, $err) = ('', '', '');
my $started = time;
my $browser = IPC::Run::start(
	[ 'env', "HOME=$home", "TMPDIR=$tmp", $python, $driver, $page, '--reload',
	  '--viewport', join('x', @narrow), '--viewport', join('x', @wide),
	  '--screenshot', "$wide[0]=$shot" ],
	'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(45));
END { eval { $browser->kill_kill } if $browser; }

# The driver's next JSON line, by viewport width.
sub next_report
{
	my $line;
	eval {
		$browser->pump while $out !~ /\n/ && $browser->pumpable;
		1;
	} or diag("waiting for the browser: $@");
	($line, $out) = split /\n/, $out, 2 if $out =~ /\n/;
	$out //= '';
	if (!defined $line)
	{
		diag("product_page.py said: $err");
		die 'the browser driver gave no report';
	}
	my $r = decode_json($line);
	return { map { $_->{width} => $_ } @{ $r->{viewports} } };
}

sub preset_of { my ($url) = @_; return $url =~ m{/(\w+)\.jpg$} ? $1 : ''; }

my $first = next_report();
note(sprintf('browser loaded both viewports in %.1f s', time - $started));
my %picked;
for my $vw ($narrow[0], $wide[0])
{
	my $imgs = $first->{$vw}{images};
	is(scalar @$imgs, scalar @ids, "$vw px: the browser sees every image");
	for my $k (0 .. $#ids)
	{
		my ($img, $id) = ($imgs->[$k], $ids[$k]);
		ok($img->{complete} && $img->{naturalWidth} > 0, "$vw px, photo $id: loaded and decoded (naturalWidth $img->{naturalWidth})");
		is($img->{renderedWidth}, slot_width($vw), "$vw px, photo $id: laid out as wide as sizes says");
		my $want = expected_preset($id, $vw);
		is($img->{currentSrc}, sql("SELECT imgmod.url($id, '$want')"), "$vw px, photo $id: picks $want from srcset");
		$picked{$vw}{ preset_of($img->{currentSrc}) }++;
	}
}
note('narrow picked ' . join(',', sort keys %{ $picked{ $narrow[0] } }) . '; wide picked ' . join(',', sort keys %{ $picked{ $wide[0] } }));
is_deeply([ sort keys %{ $picked{ $narrow[0] } } ], ['small'], "$narrow[0] px: every photo is the small preset");
is_deeply([ sort keys %{ $picked{ $wide[0] } } ], ['medium'], "$wide[0] px: every photo is the medium preset");

# The browser's requests went through the edge, which now holds them.
for my $img (@{ $first->{ $wide[0] }{images} })
{
	my $r = edge_get($e, $img->{currentSrc} =~ s{^\Q$e->{url}\E}{}r);
	is($r->{headers}{'x-cache'}, 'HIT', "$img->{currentSrc}: cached at the edge after the browser's request");
}

# --- replace the first photo; the regenerated page names v2; reload
my $id = $ids[0];
my $flipped = jpegtran(read_binary("$fixtures/formats/jpeg_progressive_420.jpg"), '-flip', 'horizontal');
is(replace_bytes($node, $id, $flipped, 'meadow-flipped.jpg'), 2, 'photo 1 replaced: version 2');
is(sql("SELECT imgmod.wait($id)"), 'ready', 'version 2 is ready');
write_page();
like(slurp_file($page), qr{\Q$e->{url}\E/i/$id/v2/small\.jpg 512w}, 'the page made again names version 2');
$in .= "reload\n";
my $second = next_report();
for my $vw ($narrow[0], $wide[0])
{
	my $img = $second->{$vw}{images}[0];
	my $want = expected_preset($id, $vw);
	like($img->{currentSrc}, qr{/i/$id/v2/}, "$vw px after the reload: photo $id is version 2");
	is($img->{currentSrc}, sql("SELECT imgmod.url($id, '$want')"), "$vw px after the reload: still the $want preset");
	ok($img->{complete} && $img->{naturalWidth} > 0, "$vw px after the reload: version 2 loaded and decoded");
	is($second->{$vw}{images}[1]{currentSrc}, $first->{$vw}{images}[1]{currentSrc}, "$vw px after the reload: the other photos are unchanged");
}
$browser->finish;
is($browser->result(0), 0, 'the driver exits 0') or diag($err);

# The unversioned URL through the edge follows: the purge reached it.
for my $preset (qw(small medium))
{
	my $want = sql("SELECT md5(imgmod.fetch($id, '$preset'))");
	my ($got, $deadline) = ('', time + 5);
	while (time < $deadline)
	{
		$got = md5_hex(edge_get($e, "/i/$id/$preset.jpg")->{content} // '');
		last if $got eq $want;
		select(undef, undef, undef, 0.05);
	}
	is($got, $want, "/i/$id/$preset.jpg through the edge: the bytes of version 2");
}

# --- the screenshot: a PNG of the wide viewport
my $png = read_binary($shot);
is(substr($png, 0, 8), "\x89PNG\r\n\x1a\n", "the screenshot is a PNG ($shot)");
is(join('x', unpack('NN', substr($png, 16, 8))), join('x', @wide), 'of the wide viewport\'s size');
note(sprintf('whole browser part: %.1f s', time - $started));

stop_edge($e);
is(stop_origin($o), 0, 'origin stops');
done_testing();
