# Helpers shared by imgmod's TAP tests: fixture generation (PPM -> JPEG with
# cjpeg/jpegtran, EXIF/IPTC/COM segments written byte by byte), JPEG marker
# inspection, and pixel access through djpeg.
package ImgmodTest;

use strict;
use warnings;
use File::Temp qw(tempdir);
use Time::HiRes ();
use PostgreSQL::Test::Cluster;
use Exporter 'import';

our @EXPORT_OK = qw(
  upright_marked_ppm gradient_ppm ppm_to_jpeg jpegtran inverse_op_for
  with_metadata jpeg_segments jpeg_size decode_ppm pixel read_binary write_binary
  start_node sql_hex upload_bytes replace_bytes canary services service_conf require_services within
  s3_head_status s3_head s3_put
);

my $TMP = tempdir(CLEANUP => 1);
my $seq = 0;

sub canary { 'IMGMOD-CANARY-TAP' }

sub read_binary
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or die "cannot read $path: $!";
	local $/;
	my $data = <$fh>;
	close $fh;
	return $data;
}

sub write_binary
{
	my ($path, $data) = @_;
	open(my $fh, '>:raw', $path) or die "cannot write $path: $!";
	print $fh $data;
	close $fh;
}

# A W x H picture: grey gradient, a red block top-left, a blue block top-right.
sub upright_marked_ppm
{
	my ($w, $h, $block) = @_;
	$block //= int($h / 4);
	my $out = "P6\n$w $h\n255\n";
	for my $y (0 .. $h - 1)
	{
		my $row = '';
		for my $x (0 .. $w - 1)
		{
			if ($y < $block && $x < $block) { $row .= pack('C3', 230, 20, 20); }
			elsif ($y < $block && $x >= $w - $block) { $row .= pack('C3', 20, 20, 230); }
			else
			{
				my $g = 60 + int(120 * $x / $w) + int(40 * $y / $h);
				$row .= pack('C3', $g, $g, $g);
			}
		}
		$out .= $row;
	}
	return $out;
}

# A large smooth picture, built row by row (fast even at tens of megapixels).
sub gradient_ppm
{
	my ($w, $h) = @_;
	my $base = join('', map { pack('C3', ($_ * 255 / $w), 128, 255 - ($_ * 255 / $w)) } 0 .. $w - 1);
	my $out = "P6\n$w $h\n255\n";
	for my $y (0 .. $h - 1)
	{
		my $row = $base;
		substr($row, 0, 3) = pack('C3', $y % 256, $y % 256, $y % 256);
		$out .= $row;
	}
	return $out;
}

sub run_tool
{
	my (@cmd) = @_;
	system(@cmd) == 0 or die "command failed: @cmd";
}

sub ppm_to_jpeg
{
	my ($ppm, $quality, @extra) = @_;
	$quality //= 90;
	my $in = "$TMP/in" . (++$seq) . '.ppm';
	my $out = "$TMP/out$seq.jpg";
	write_binary($in, $ppm);
	run_tool('cjpeg', '-quality', $quality, @extra, '-outfile', $out, $in);
	return read_binary($out);
}

sub jpegtran
{
	my ($jpeg, @args) = @_;
	my $in = "$TMP/t" . (++$seq) . '.jpg';
	my $out = "$TMP/t$seq.out.jpg";
	write_binary($in, $jpeg);
	run_tool('jpegtran', @args, '-outfile', $out, $in);
	return read_binary($out);
}

# jpegtran options whose result, shown with EXIF orientation N, looks upright.
sub inverse_op_for
{
	my ($n) = @_;
	return (
		1 => [],
		2 => [ '-flip', 'horizontal' ],
		3 => [ '-rotate', '180' ],
		4 => [ '-flip', 'vertical' ],
		5 => ['-transpose'],
		6 => [ '-rotate', '270' ],
		7 => ['-transverse'],
		8 => [ '-rotate', '90' ])[ 2 * ($n - 1) + 1 ];
}

# Big-endian TIFF IFD entry.
sub ifd_entry
{
	my ($tag, $type, $count, $value) = @_;
	return pack('nnN', $tag, $type, $count) . $value;
}

# APP1 Exif with Orientation, an ImageDescription canary and a GPS IFD;
# APP13 Photoshop/IPTC and a COM segment, both carrying the canary.
sub with_metadata
{
	my ($jpeg, $orientation) = @_;
	my $desc = canary() . "-EXIF\0";
	# IFD0 at 8: 3 entries; GPS IFD follows; then the description string.
	my $ifd0_size = 2 + 3 * 12 + 4;
	my $gps_off = 8 + $ifd0_size;
	my $gps_size = 2 + 1 * 12 + 4;
	my $desc_off = $gps_off + $gps_size;
	my $tiff = "MM\0*" . pack('N', 8)
	  . pack('n', 3)
	  . ifd_entry(0x010E, 2, length($desc), pack('N', $desc_off))
	  . ifd_entry(0x0112, 3, 1, pack('nn', $orientation, 0))
	  . ifd_entry(0x8825, 4, 1, pack('N', $gps_off))
	  . pack('N', 0)
	  . pack('n', 1)
	  . ifd_entry(0x0001, 2, 2, "N\0\0\0")
	  . pack('N', 0)
	  . $desc;
	my $app1 = "Exif\0\0" . $tiff;
	my $iptc = "Photoshop 3.0\0" . "8BIM" . pack('n', 0x0404) . "\0\0"
	  . pack('N', 5 + length(canary()) + 6)
	  . "\x1c\x02\x78" . pack('n', length(canary()) + 6) . canary() . "-IPTC\0";
	my $com = canary() . '-COM';
	my $segments = "\xFF\xE1" . pack('n', length($app1) + 2) . $app1
	  . "\xFF\xED" . pack('n', length($iptc) + 2) . $iptc
	  . "\xFF\xFE" . pack('n', length($com) + 2) . $com;
	return substr($jpeg, 0, 2) . $segments . substr($jpeg, 2);
}

# [marker, offset, length] for every segment up to SOS, plus EOI position.
sub jpeg_segments
{
	my ($jpeg) = @_;
	my @seg;
	my $pos = 2;
	die 'not a JPEG' unless substr($jpeg, 0, 2) eq "\xFF\xD8";
	while ($pos + 4 <= length($jpeg))
	{
		my ($ff, $m, $len) = unpack('CCn', substr($jpeg, $pos, 4));
		die "bad marker at $pos" unless $ff == 0xFF;
		push @seg, [ $m, $pos, $len ];
		last if $m == 0xDA;
		$pos += 2 + $len;
	}
	return @seg;
}

sub jpeg_size
{
	my ($jpeg) = @_;
	for my $s (jpeg_segments($jpeg))
	{
		my ($m, $pos) = @$s;
		if ($m >= 0xC0 && $m <= 0xCF && $m != 0xC4 && $m != 0xC8 && $m != 0xCC)
		{
			my ($h, $w) = unpack('nn', substr($jpeg, $pos + 5, 4));
			return ($w, $h);
		}
	}
	die 'no SOF';
}

# Decode with djpeg into { w, h, data }; dies if djpeg reports anything.
sub decode_ppm
{
	my ($jpeg) = @_;
	my $in = "$TMP/d" . (++$seq) . '.jpg';
	my $out = "$TMP/d$seq.ppm";
	write_binary($in, $jpeg);
	run_tool('djpeg', '-pnm', '-outfile', $out, $in);
	my $ppm = read_binary($out);
	$ppm =~ s/^P6\s+(\d+)\s+(\d+)\s+255\s//s or die 'unexpected PPM';
	return { w => $1, h => $2, data => $ppm };
}

# Mean RGB of a square around (x, y).
sub pixel
{
	my ($img, $x, $y, $r) = @_;
	$r //= 2;
	my @sum = (0, 0, 0);
	my $n = 0;
	for my $yy ($y - $r .. $y + $r)
	{
		for my $xx ($x - $r .. $x + $r)
		{
			next if $xx < 0 || $yy < 0 || $xx >= $img->{w} || $yy >= $img->{h};
			my @p = unpack('C3', substr($img->{data}, 3 * ($yy * $img->{w} + $xx), 3));
			$sum[$_] += $p[$_] for 0 .. 2;
			$n++;
		}
	}
	return map { $_ / $n } @sum;
}

# The real servers started by scripts/services.sh (see run-tap.sh): stop and
# start one of them from a test.
sub services
{
	my (@args) = @_;
	my $script = $ENV{IMGMOD_SERVICES_SCRIPT} or die 'IMGMOD_SERVICES_SCRIPT is not set';
	system('bash', $script, @args) == 0 or die "services.sh @args failed";
}

# Die (the test fails, it is not skipped) when the servers are not there.
sub require_services
{
	for my $v (@_)
	{
		die "$v is not set: run the TAP suite through scripts/test.sh, which starts the servers"
		  unless defined $ENV{$v} && $ENV{$v} ne '';
	}
}

# postgresql.conf lines pointing imgmod at the servers in the environment.
sub service_conf
{
	my (%want) = @_;
	my @c;
	if ($want{s3})
	{
		push @c, "imgmod.s3_endpoint = '$ENV{IMGMOD_S3_ENDPOINT}'",
		  "imgmod.s3_region = '" . ($ENV{IMGMOD_S3_REGION} // 'us-east-1') . "'",
		  "imgmod.s3_bucket = '$ENV{IMGMOD_S3_BUCKET}'",
		  "imgmod.s3_access_key = '$ENV{IMGMOD_S3_ACCESS_KEY}'",
		  "imgmod.s3_secret_key = '$ENV{IMGMOD_S3_SECRET_KEY}'",
		  "imgmod.hires_s3_endpoint = '$ENV{IMGMOD_HIRES_S3_ENDPOINT}'",
		  "imgmod.hires_s3_region = '" . ($ENV{IMGMOD_S3_REGION} // 'us-east-1') . "'",
		  "imgmod.hires_s3_bucket = '$ENV{IMGMOD_HIRES_S3_BUCKET}'",
		  "imgmod.hires_s3_access_key = '$ENV{IMGMOD_HIRES_S3_ACCESS_KEY}'",
		  "imgmod.hires_s3_secret_key = '$ENV{IMGMOD_HIRES_S3_SECRET_KEY}'";
	}
	push @c, "imgmod.redis_url = '$ENV{IMGMOD_REDIS_URL}'" if $want{redis};
	push @c, "imgmod.kafka_brokers = '$ENV{IMGMOD_KAFKA_BROKERS}'" if $want{kafka};
	return join("\n", @c);
}

# HTTP status of a HEAD on an object, asked of the S3 server directly (not
# through imgmod), with curl's own SigV4: 200 when it exists, 404 when not.
sub s3_head_status
{
	my ($store, $key) = @_;
	return (s3_head($store, $key))[0];
}

# (HTTP status, ETag without quotes) of a HEAD on an object.
sub s3_head
{
	my ($store, $key) = @_;
	my $p = $store eq 'hires' ? 'IMGMOD_HIRES_S3_' : 'IMGMOD_S3_';
	my $region = $ENV{IMGMOD_S3_REGION} // 'us-east-1';
	my $empty = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
	my $url = $ENV{"${p}ENDPOINT"} . '/' . $ENV{"${p}BUCKET"} . "/$key";
	my $user = $ENV{"${p}ACCESS_KEY"} . ':' . $ENV{"${p}SECRET_KEY"};
	my $out = `curl -s -I -w '\n%{http_code}' --max-time 10 --aws-sigv4 'aws:amz:$region:s3' --user '$user' -H 'x-amz-content-sha256: $empty' '$url'`;
	my ($code) = $out =~ /(\d+)\s*\z/;
	my ($etag) = $out =~ /^etag:\s*"?([^"\r\n]*)"?\r?$/mi;
	return ($code // '000', $etag // '');
}

# PUT a file's bytes as an object, straight to the S3 server (not through
# imgmod), as someone with the store's keys could; returns the HTTP status.
sub s3_put
{
	my ($store, $key, $path) = @_;
	my $p = $store eq 'hires' ? 'IMGMOD_HIRES_S3_' : 'IMGMOD_S3_';
	my $region = $ENV{IMGMOD_S3_REGION} // 'us-east-1';
	my $url = $ENV{"${p}ENDPOINT"} . '/' . $ENV{"${p}BUCKET"} . "/$key";
	my $user = $ENV{"${p}ACCESS_KEY"} . ':' . $ENV{"${p}SECRET_KEY"};
	my $out = `curl -s -o /dev/null -w '%{http_code}' --max-time 30 --aws-sigv4 'aws:amz:$region:s3' --user '$user' -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -H 'Content-Type: image/jpeg' -T '$path' '$url'`;
	return $out;
}

sub sql_hex
{
	my ($bytes) = @_;
	return "decode('" . unpack('H*', $bytes) . "', 'hex')";
}

sub start_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', join("\n",
		"shared_preload_libraries = 'imgmod'",
		"imgmod.database = 'postgres'",
		"imgmod.workers = " . ($opt{workers} // 2),
		"imgmod.poll_interval = '100ms'",
		"imgmod.retry_base_delay = '100ms'",
		"restart_after_crash = on",
		($opt{conf} // '')));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION imgmod');
	return $node;
}

# Upload bytes through a file the server can read (hex literals of many MB
# would be slow through psql's command line).
sub upload_bytes
{
	my ($node, $bytes, $name) = @_;
	my $path = $node->basedir . '/upload' . (++$seq) . '.bin';
	write_binary($path, $bytes);
	return $node->safe_psql('postgres',
		"SELECT imgmod.upload(pg_read_binary_file('$path'), '$name')");
}

# imgmod.replace() with bytes from a file; returns the new version number.
sub replace_bytes
{
	my ($node, $id, $bytes, $name) = @_;
	my $path = $node->basedir . '/upload' . (++$seq) . '.bin';
	write_binary($path, $bytes);
	return $node->safe_psql('postgres',
		"SELECT imgmod.replace($id, pg_read_binary_file('$path'), '$name')");
}

# Polls $check until it returns true, up to $seconds: how long it took,
# or undef if it never did.  (Waiting on a condition, never a fixed sleep.)
sub within
{
	my ($seconds, $check) = @_;
	my $start = Time::HiRes::time();
	while (Time::HiRes::time() - $start < $seconds)
	{
		return Time::HiRes::time() - $start if $check->();
		select(undef, undef, undef, 0.02);
	}
	return undef;
}

1;
