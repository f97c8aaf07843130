/*
 * digest.c — content digests through OpenSSL's libcrypto: SHA-256
 * identifies uploads, masters and S3 payloads; MD5 is the variant ETag
 * (what S3 reports for a single PUT, so a local store and an S3 store
 * agree).  libcrypto is thread-safe, so the origin's threads may hash at
 * once.
 */
#include "io_internal.h"

#include <ctype.h>

#include <openssl/err.h>
#include <openssl/evp.h>

const char *
imgio_digest_name(imgio_digest_kind kind)
{
	return kind == IMGIO_DIGEST_SHA256 ? "SHA-256" : "MD5";
}

static void
to_hex(const unsigned char *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0xF];
	}
	out[2 * n] = '\0';
}

/*
 * The reason OpenSSL queued (a provider refusing the algorithm, say), and
 * the queue emptied, so that nothing else in this thread reads it later.
 */
static bool
fail_with_openssl_reason(imgio_error *err, imgio_digest_kind kind)
{
	unsigned long code = ERR_get_error();
	char		reason[256];

	if (code != 0)
		ERR_error_string_n(code, reason, sizeof(reason));
	else
		snprintf(reason, sizeof(reason), "the crypto library gave no reason");
	ERR_clear_error();
	return imgio_fail(err, "could not compute %s: %s", imgio_digest_name(kind), reason);
}

bool
imgio_digest_hex(imgio_digest_kind kind, const uint8_t *data, size_t len,
				 char out[IMGIO_DIGEST_HEX_MAX], imgio_error *err)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool		ok;

	if (ctx == NULL)
		return imgio_fail(err, "could not compute %s: out of memory", imgio_digest_name(kind));
	ok = EVP_DigestInit_ex(ctx, kind == IMGIO_DIGEST_SHA256 ? EVP_sha256() : EVP_md5(), NULL) == 1 &&
		EVP_DigestUpdate(ctx, data, len) == 1 &&
		EVP_DigestFinal_ex(ctx, digest, &digest_len) == 1;
	/* OpenSSL queues the reason per thread, not in the context: free it first */
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return fail_with_openssl_reason(err, kind);
	to_hex(digest, digest_len, out);
	return true;
}

bool
imgio_etag_md5(const char *etag, char out[33])
{
	size_t		n = etag ? strlen(etag) : 0;

	/* "<32 hex>"; a multipart or SSE-KMS ETag is no digest of the bytes */
	if (n != 34 || etag[0] != '"' || etag[33] != '"')
		return false;
	for (int i = 1; i < 33; i++)
		if (!isxdigit((unsigned char) etag[i]))
			return false;
	memcpy(out, etag + 1, 32);
	out[32] = '\0';
	return true;
}
