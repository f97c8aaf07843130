/*
 * cache_redis.c — the extension's side of the Redis cache: imgmod.redis_*
 * settings and the installation's namespace become an imgio cache
 * configuration, verified reads are copied into palloc'd memory, and a
 * poisoned key is logged with what to do about it.  The I/O itself is
 * src/io/cache_redis.c.
 */
#include "imgmod.h"

/* imgmod.installation.id, read by the worker: keys of other installations never match. */
static char cache_namespace[64] = "";
static imgio_cache_client *client = NULL;

static imgio_cache_config
current_config(void)
{
	imgio_cache_config c = {
		.url = imgmod_redis_url,
		.url_setting_name = "imgmod.redis_url",
		.cache_namespace = cache_namespace,
		.timeout_ms = imgmod_redis_timeout_ms,
		.ttl_s = imgmod_redis_ttl_s,
	};

	return c;
}

/* The process's connection, made on first use. */
static imgio_cache_client *
cache_client(void)
{
	if (client == NULL)
		client = imgio_cache_client_create(imgmod_io_hooks());
	if (client == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("imgmod: out of memory creating the Redis client")));
	return client;
}

void
imgmod_cache_set_namespace(const char *installation_id)
{
	strlcpy(cache_namespace, installation_id, sizeof(cache_namespace));
}

void
imgmod_cache_key(char *buf, size_t size, int64 image_id, int version, const char *what)
{
	(void) imgio_cache_key(buf, size, cache_namespace, image_id, version, what);
}

bool
imgmod_cache_enabled(void)
{
	imgio_cache_config c = current_config();

	return imgio_cache_enabled(&c);
}

int
imgmod_cache_put_many(int n, const char *const *keys, const uint8_t *const *values,
					  const size_t *lens)
{
	imgio_cache_config c = current_config();

	if (!imgio_cache_enabled(&c))
		return 0;
	return imgio_cache_put_many(cache_client(), &c, n, keys, values, lens);
}

bytea *
imgmod_cache_get_verified(const char *key, imgio_digest_kind kind, const char *expected_hex)
{
	imgio_cache_config c = current_config();
	imgio_error err = {0};
	uint8_t    *bytes = NULL;
	size_t		n = 0;
	bytea	   *copy;

	if (!imgio_cache_enabled(&c))
		return NULL;
	switch (imgio_cache_get_verified(cache_client(), &c, key, kind, expected_hex, &bytes, &n, &err))
	{
		case IMGIO_CACHE_READ_HIT:
			break;
		case IMGIO_CACHE_READ_MISS:
			return NULL;
		case IMGIO_CACHE_READ_POISONED:
			ereport(WARNING,
					(errmsg("imgmod: discarded %zu bytes read from Redis key \"%s\": their %s does not match the digest recorded in PostgreSQL",
							n, key, imgio_digest_name(kind)),
					 errhint("Something other than imgmod wrote this key, or it predates a restore; imgmod falls back to its own copy.")));
			return NULL;
		case IMGIO_CACHE_READ_FAILED:
			elog(ERROR, "imgmod: %s", err.message);
	}
	/* the caller's memory, so the caller's context frees it: the one copy */
	copy = palloc_extended(VARHDRSZ + n, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (copy != NULL)
	{
		SET_VARSIZE(copy, VARHDRSZ + n);
		memcpy(VARDATA(copy), bytes, n);
	}
	pfree(bytes);
	return copy;
}

int
imgmod_cache_delete_many(int n, const char *const *keys)
{
	imgio_cache_config c = current_config();

	if (!imgio_cache_enabled(&c) || n <= 0)
		return 0;
	return imgio_cache_delete_many(cache_client(), &c, n, keys);
}

int
imgmod_cache_drop_version(int64 image_id, int version, int npresets, char *const *presets)
{
	imgio_cache_config c = current_config();

	if (!imgio_cache_enabled(&c))
		return 0;
	return imgio_cache_drop_version(cache_client(), &c, image_id, version, npresets,
									(const char *const *) presets);
}
