/*
 * hashing.c — content digests for the extension's callers: the library's
 * (src/io/digest.c, OpenSSL), with a failure raised as an ERROR that gives
 * the crypto library's reason.
 */
#include "imgmod.h"

static void
digest_or_error(imgio_digest_kind kind, const uint8_t *data, size_t len, char *out)
{
	imgio_error err = {0};

	if (!imgio_digest_hex(kind, data, len, out, &err))
		elog(ERROR, "imgmod: %s", err.message);
}

void
imgmod_sha256_hex(const uint8_t *data, size_t len, char out[65])
{
	digest_or_error(IMGIO_DIGEST_SHA256, data, len, out);
}

void
imgmod_md5_hex(const uint8_t *data, size_t len, char out[33])
{
	char		hex[IMGIO_DIGEST_HEX_MAX];

	digest_or_error(IMGIO_DIGEST_MD5, data, len, hex);
	memcpy(out, hex, 33);
}
