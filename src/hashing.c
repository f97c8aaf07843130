/*
 * hashing.c — content hashes: SHA-256 identifies uploads, MD5 is the
 * variant ETag (what S3 reports for a single PUT, so the embedded store and
 * an S3 store agree).
 */
#include "imgmod.h"

#include "common/cryptohash.h"
#include "common/md5.h"
#include "common/sha2.h"
#include "utils/resowner.h"

static void
to_hex(const uint8 *bytes, size_t n, char *out)
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
 * With OpenSSL, pg_cryptohash contexts are tracked by the current resource
 * owner, which a worker outside a transaction does not have: lend it one.
 */
static ResourceOwner
borrow_resource_owner(void)
{
	ResourceOwner saved = CurrentResourceOwner;

	if (saved == NULL)
		CurrentResourceOwner = ResourceOwnerCreate(NULL, "imgmod hashing");
	return saved;
}

static void
return_resource_owner(ResourceOwner saved)
{
	if (saved == NULL && CurrentResourceOwner != NULL)
	{
		ResourceOwner mine = CurrentResourceOwner;

		ResourceOwnerRelease(mine, RESOURCE_RELEASE_BEFORE_LOCKS, true, false);
		ResourceOwnerRelease(mine, RESOURCE_RELEASE_LOCKS, true, false);
		ResourceOwnerRelease(mine, RESOURCE_RELEASE_AFTER_LOCKS, true, false);
		CurrentResourceOwner = NULL;
		ResourceOwnerDelete(mine);
	}
}

/*
 * Errors are raised only after the context is freed and the borrowed
 * resource owner returned, with the reason taken while the context was
 * still alive: a worker outside a transaction must not be left with a
 * temporary owner as its current one.
 */
void
imgmod_sha256_hex(const uint8_t *data, size_t len, char out[65])
{
	ResourceOwner saved = borrow_resource_owner();
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	const char *failure = NULL;

	if (ctx == NULL)
		failure = "out of memory";
	else if (pg_cryptohash_init(ctx) < 0 ||
			 pg_cryptohash_update(ctx, data, len) < 0 ||
			 pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		failure = pg_cryptohash_error(ctx);
	if (ctx != NULL)
		pg_cryptohash_free(ctx);
	return_resource_owner(saved);
	if (failure != NULL)
		elog(ERROR, "imgmod: could not compute SHA-256: %s", failure);
	to_hex(digest, sizeof(digest), out);
}

void
imgmod_md5_hex(const uint8_t *data, size_t len, char out[33])
{
	const char *errstr = NULL;
	ResourceOwner saved = borrow_resource_owner();
	bool		ok = pg_md5_hash(data, len, out, &errstr);

	return_resource_owner(saved);
	if (!ok)
		elog(ERROR, "imgmod: could not compute MD5: %s", errstr ? errstr : "?");
}
