/*
 * sources.c — the three tiers behind a variant, through imgmod's I/O
 * library (src/io): the memory LRU, Redis (verified against the variant's
 * ETag: a cache is never trusted), the main store (one GET of exactly the
 * recorded size, verified too when the ETag is an MD5; then put in Redis
 * and in memory).  Bytes read from Redis or the store become the memory
 * tier's entry as they are (origin_lru_adopt): no second copy.
 *
 * libmicrohttpd answers on a pool of threads; store and Redis clients hold
 * connections, so each thread has its own, made on first use and freed
 * when the thread ends.
 */
#include "sources.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imgio.h"
#include "metrics.h"

struct origin_sources
{
	origin_lru *lru;
	imgio_store_config store;
	imgio_cache_config cache;
	pthread_key_t clients_key;

	/* the store probe of /healthz: probe_client belongs to whoever set probing */
	pthread_mutex_t probe_lock;
	imgio_store_client *probe_client;
	bool		probing;
	bool		store_ok;
	double		probed_at;		/* monotonic seconds */
};

#define PROBE_INTERVAL_S 1.0
#define PROBE_TIMEOUT_MS 1000

typedef struct thread_clients
{
	imgio_store_client *store;
	imgio_cache_client *cache;
} thread_clients;

static const char *
env(const char *name, const char *fallback)
{
	const char *v = getenv(name);

	return v && *v ? v : fallback;
}

static void
free_clients(void *p)
{
	thread_clients *c = p;

	imgio_store_client_free(c->store);
	imgio_cache_client_free(c->cache);
	free(c);
}

static thread_clients *
clients(origin_sources *src)
{
	thread_clients *c = pthread_getspecific(src->clients_key);

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->store = imgio_store_client_create(NULL);
	c->cache = imgio_cache_client_create(NULL);
	if (c->store == NULL || c->cache == NULL)
	{
		free_clients(c);
		return NULL;
	}
	pthread_setspecific(src->clients_key, c);
	return c;
}

static double
monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * One probe, by the caller that set src->probing (so the probe client is
 * its own meanwhile); records the result and logs a change of state.
 */
static bool
probe_store(origin_sources *src)
{
	imgio_error err = {0};
	bool		ok = imgio_store_probe(src->probe_client, &src->store, PROBE_TIMEOUT_MS, &err);
	bool		changed;

	origin_metrics_store_probe(ok);
	pthread_mutex_lock(&src->probe_lock);
	changed = ok != src->store_ok;
	src->store_ok = ok;
	src->probed_at = monotonic_seconds();
	src->probing = false;
	pthread_mutex_unlock(&src->probe_lock);
	if (changed && !ok)
		fprintf(stderr, "imgmod-origin: the store is unreachable: %s\n", err.message);
	else if (changed)
		fputs("imgmod-origin: the store is reachable again\n", stderr);
	return ok;
}

origin_sources *
origin_sources_open(origin_lru *lru, char *errbuf, size_t errsize)
{
	origin_sources *src = calloc(1, sizeof(*src));

	if (src == NULL)
	{
		snprintf(errbuf, errsize, "out of memory");
		return NULL;
	}
	imgio_global_init();
	src->lru = lru;
	/* the same names scripts/services.sh env prints */
	src->store.name = "main";
	src->store.id = 0;
	src->store.local_dir = env("IMGMOD_STORE_DIR", NULL);
	src->store.s3.endpoint = env("IMGMOD_S3_ENDPOINT", NULL);
	src->store.s3.region = env("IMGMOD_S3_REGION", "us-east-1");
	src->store.s3.bucket = env("IMGMOD_S3_BUCKET", NULL);
	src->store.s3.access_key = env("IMGMOD_S3_ACCESS_KEY", NULL);
	src->store.s3.secret_key = env("IMGMOD_S3_SECRET_KEY", NULL);
	src->store.s3.virtual_host = strcmp(env("IMGMOD_S3_VIRTUAL_HOST", "off"), "on") == 0;
	src->store.s3.connect_timeout_ms = 3000;
	src->store.s3.timeout_ms = 10000;
	src->store.s3.retries = 2;
	src->store.s3.bucket_setting_name = "IMGMOD_S3_BUCKET";
	if (src->store.s3.endpoint == NULL && src->store.local_dir == NULL)
	{
		snprintf(errbuf, errsize, "no store: set IMGMOD_S3_ENDPOINT (and its bucket and keys) or IMGMOD_STORE_DIR");
		free(src);
		return NULL;
	}
	src->cache.url = env("IMGMOD_REDIS_URL", NULL);
	src->cache.url_setting_name = "IMGMOD_REDIS_URL";
	src->cache.cache_namespace = "";
	src->cache.timeout_ms = 200;
	src->cache.ttl_s = atoi(env("IMGMOD_REDIS_TTL", "86400"));
	src->probe_client = imgio_store_client_create(NULL);
	if (src->probe_client == NULL)
	{
		snprintf(errbuf, errsize, "out of memory");
		free(src);
		return NULL;
	}
	if (pthread_key_create(&src->clients_key, free_clients) != 0)
	{
		snprintf(errbuf, errsize, "out of thread keys");
		imgio_store_client_free(src->probe_client);
		free(src);
		return NULL;
	}
	pthread_mutex_init(&src->probe_lock, NULL);
	/* a first answer before any request: nobody waits on it later */
	src->store_ok = true;
	src->probing = true;
	probe_store(src);
	return src;
}

void
origin_sources_close(origin_sources *src)
{
	if (src == NULL)
		return;
	pthread_key_delete(src->clients_key);
	imgio_store_client_free(src->probe_client);
	pthread_mutex_destroy(&src->probe_lock);
	free(src);
}

bool
origin_sources_store_reachable(origin_sources *src)
{
	bool		ok;
	bool		due;

	pthread_mutex_lock(&src->probe_lock);
	ok = src->store_ok;
	due = !src->probing && monotonic_seconds() - src->probed_at >= PROBE_INTERVAL_S;
	if (due)
		src->probing = true;
	pthread_mutex_unlock(&src->probe_lock);
	return due ? probe_store(src) : ok;
}

/* The variant from Redis if it is there and is what the ETag says. */
static const origin_blob *
from_redis(origin_sources *src, thread_clients *c, const imgio_cache_config *cache, const origin_variant *v)
{
	char		key[320];
	char		md5[33];
	uint8_t    *bytes = NULL;
	size_t		len = 0;
	imgio_error err;
	const origin_blob *blob = NULL;

	if (!imgio_cache_enabled(cache) || !imgio_etag_md5(v->etag, md5) ||
		!imgio_cache_key(key, sizeof(key), cache->cache_namespace, v->image_id, v->version, v->preset))
		return NULL;
	/* the bytes come from malloc (no alloc hook): the memory tier takes them as they are */
	if (imgio_cache_get_verified(c->cache, cache, key, IMGIO_DIGEST_MD5, md5, &bytes, &len, &err) ==
		IMGIO_CACHE_READ_HIT && bytes != NULL)
		blob = origin_lru_adopt(src->lru, v->object_key, bytes, len, v->etag);
	return blob;
}

origin_fetch
origin_sources_get(origin_sources *src, origin_catalog *cat, const origin_variant *v,
				   const origin_blob **blob, origin_tier *tier)
{
	thread_clients *c;
	imgio_cache_config cache = src->cache;
	char		installation[ORIGIN_INSTALLATION_MAX];
	imgio_error err;
	size_t		capacity;
	size_t		got = 0;
	uint8_t    *bytes;
	char		md5[33];
	char		actual[IMGIO_DIGEST_HEX_MAX];

	*blob = origin_lru_get(src->lru, v->object_key);
	origin_metrics_tier(ORIGIN_TIER_MEMORY, *blob != NULL);
	if (*blob)
	{
		*tier = ORIGIN_TIER_MEMORY;
		return ORIGIN_FETCH_OK;
	}
	if ((c = clients(src)) == NULL)
		return ORIGIN_FETCH_STORE_FAILED;

	origin_catalog_installation(cat, installation, sizeof(installation));
	cache.cache_namespace = installation;
	*blob = from_redis(src, c, &cache, v);
	if (imgio_cache_enabled(&cache))
		origin_metrics_tier(ORIGIN_TIER_REDIS, *blob != NULL);
	if (*blob)
	{
		*tier = ORIGIN_TIER_REDIS;
		return ORIGIN_FETCH_OK;
	}

	capacity = imgio_store_get_capacity((size_t) v->bytes);
	bytes = malloc(capacity ? capacity : 1);
	if (bytes == NULL ||
		!imgio_store_get(c->store, &src->store, v->object_key, (size_t) v->bytes, bytes, capacity, &got, &err) ||
		(imgio_etag_md5(v->etag, md5) &&
		 (!imgio_digest_hex(IMGIO_DIGEST_MD5, bytes, got, actual, &err) || strcmp(actual, md5) != 0)))
	{
		/* the store failed, or holds something imgmod did not write there */
		origin_metrics_tier(ORIGIN_TIER_STORE, 0);
		free(bytes);
		return ORIGIN_FETCH_STORE_FAILED;
	}
	origin_metrics_tier(ORIGIN_TIER_STORE, 1);
	if (imgio_cache_enabled(&cache))
	{
		char		key[320];
		const char *keys[1] = {key};
		const uint8_t *values[1] = {bytes};

		/* the next origin (or this one after an eviction) finds it in Redis */
		if (imgio_cache_key(key, sizeof(key), cache.cache_namespace, v->image_id, v->version, v->preset))
			(void) imgio_cache_put_many(c->cache, &cache, 1, keys, values, &got);
	}
	/* the read buffer has room for an S3 error document: give back what the object did not use */
	if (capacity > got)
	{
		uint8_t    *fit = realloc(bytes, got ? got : 1);

		if (fit != NULL)
			bytes = fit;
	}
	*blob = origin_lru_adopt(src->lru, v->object_key, bytes, got, v->etag);
	if (*blob == NULL)
		return ORIGIN_FETCH_STORE_FAILED;
	*tier = ORIGIN_TIER_STORE;
	return ORIGIN_FETCH_OK;
}
