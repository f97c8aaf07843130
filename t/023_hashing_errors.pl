# When the crypto library cannot hash, imgmod says why: the reason is read
# from the hash context before that context is freed (read afterwards, the
# freed context says "success").  OpenSSL is made to refuse every digest
# (algorithms must come from a FIPS provider that is not loaded) while
# random numbers keep working, so the server itself runs normally.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ImgmodTest qw(upright_marked_ppm ppm_to_jpeg start_node write_binary);

my $jpeg = ppm_to_jpeg(upright_marked_ppm(64, 48), 90);
my $node;
{
	my $conf = PostgreSQL::Test::Utils::tempdir() . '/openssl-no-digests.cnf';
	write_binary($conf, join("\n",
		'openssl_conf = openssl_init',
		'[openssl_init]',
		'alg_section = algorithm_sect',
		'random = random_sect',
		'[algorithm_sect]',
		'default_properties = fips=yes',
		'[random_sect]',
		'properties = fips=no', ''));
	# Only the server gets this configuration; psql and the tools do not.
	local $ENV{OPENSSL_CONF} = $conf;
	$node = start_node('hashing');
}
my $path = $node->basedir . '/hash.jpg';
write_binary($path, $jpeg);

for my $attempt (1, 2)
{
	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT imgmod.upload(pg_read_binary_file('$path'), 'hash.jpg')");
	isnt($rc, 0, "upload $attempt fails: SHA-256 cannot be computed");
	like($err, qr/imgmod: could not compute SHA-256: (?!success)\S/,
		"upload $attempt: the error gives the crypto library's reason: $err");
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM imgmod.images'), '0', 'nothing was registered');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server carries on');

$node->stop;
done_testing();
