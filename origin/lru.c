/*
 * lru.c — the origin's byte-bounded LRU of variant bytes.
 *
 * A hash of keys to entries plus one recency list, under one mutex: every
 * operation is a few pointer moves, far cheaper than the response it
 * serves, so one lock for the whole cache costs nothing measurable.  Entries
 * out of the cache (evicted, replaced, dropped) stay alive while responses
 * still hold them; the last release frees them.
 */
#include "lru.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry
{
	origin_blob blob;			/* first: callers hold &entry->blob */
	char	   *key;
	uint8_t    *bytes;
	unsigned	refs;			/* responses holding it, +1 while cached */
	int			cached;
	struct entry *hash_next;
	struct entry *newer;
	struct entry *older;
} entry;

struct origin_lru
{
	pthread_mutex_t lock;
	entry	  **buckets;
	size_t		nbuckets;
	entry	   *newest;
	entry	   *oldest;
	origin_lru_stats stats;
};

/* What an entry costs beyond its bytes, so many small ones cannot overrun. */
#define ENTRY_OVERHEAD 128

static uint64_t
key_hash(const char *key)
{
	uint64_t	h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *key; key++)
		h = (h ^ (unsigned char) *key) * 1099511628211ULL;
	return h;
}

static size_t
entry_cost(const entry *e)
{
	return e->blob.len + strlen(e->key) + ENTRY_OVERHEAD;
}

origin_lru *
origin_lru_create(uint64_t capacity_bytes)
{
	origin_lru *lru = calloc(1, sizeof(*lru));

	if (lru == NULL)
		return NULL;
	lru->nbuckets = 4096;
	lru->buckets = calloc(lru->nbuckets, sizeof(entry *));
	if (lru->buckets == NULL)
	{
		free(lru);
		return NULL;
	}
	pthread_mutex_init(&lru->lock, NULL);
	lru->stats.capacity_bytes = capacity_bytes;
	return lru;
}

static void
free_entry(entry *e)
{
	free(e->bytes);
	free(e->key);
	free(e);
}

static void
unref(entry *e)
{
	if (--e->refs == 0)
		free_entry(e);
}

/* Takes e out of the hash and the recency list; the cache's reference goes. */
static void
uncache(origin_lru *lru, entry *e)
{
	entry	  **link = &lru->buckets[key_hash(e->key) % lru->nbuckets];

	while (*link != e)
		link = &(*link)->hash_next;
	*link = e->hash_next;
	if (e->newer)
		e->newer->older = e->older;
	else
		lru->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		lru->oldest = e->newer;
	e->cached = 0;
	lru->stats.used_bytes -= entry_cost(e);
	lru->stats.items--;
	unref(e);
}

static void
make_newest(origin_lru *lru, entry *e)
{
	if (lru->newest == e)
		return;
	/* unlink */
	if (e->newer)
		e->newer->older = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else if (lru->oldest == e)
		lru->oldest = e->newer;
	/* push at the newest end */
	e->older = lru->newest;
	e->newer = NULL;
	if (lru->newest)
		lru->newest->newer = e;
	lru->newest = e;
	if (lru->oldest == NULL)
		lru->oldest = e;
}

static entry *
find(origin_lru *lru, const char *key)
{
	entry	   *e = lru->buckets[key_hash(key) % lru->nbuckets];

	while (e && strcmp(e->key, key) != 0)
		e = e->hash_next;
	return e;
}

const origin_blob *
origin_lru_get(origin_lru *lru, const char *key)
{
	entry	   *e;

	pthread_mutex_lock(&lru->lock);
	e = find(lru, key);
	if (e)
	{
		make_newest(lru, e);
		e->refs++;
		lru->stats.hits++;
	}
	else
		lru->stats.misses++;
	pthread_mutex_unlock(&lru->lock);
	return e ? &e->blob : NULL;
}

/* A new entry owning bytes (freed here on failure), one reference (the caller's). */
static entry *
make_entry(const char *key, uint8_t *bytes, size_t len, const char *etag)
{
	entry	   *e = calloc(1, sizeof(*e));

	if (e == NULL)
	{
		free(bytes);
		return NULL;
	}
	e->bytes = bytes;
	e->key = strdup(key);
	if (e->key == NULL)
	{
		free_entry(e);
		return NULL;
	}
	e->blob.data = e->bytes;
	e->blob.len = len;
	strncpy(e->blob.etag, etag ? etag : "", sizeof(e->blob.etag) - 1);
	e->refs = 1;
	return e;
}

const origin_blob *
origin_lru_adopt(origin_lru *lru, const char *key, uint8_t *data, size_t len, const char *etag)
{
	entry	   *e = make_entry(key, data, len, etag);
	entry	   *old;
	entry	  **bucket;

	if (e == NULL)
		return NULL;
	if (entry_cost(e) > lru->stats.capacity_bytes)
		return &e->blob;		/* served once, never cached: it could not fit */
	e->refs = 2;				/* the cache's and the caller's */
	e->cached = 1;

	pthread_mutex_lock(&lru->lock);
	if ((old = find(lru, key)) != NULL)
		uncache(lru, old);
	while (lru->stats.used_bytes + entry_cost(e) > lru->stats.capacity_bytes && lru->oldest)
	{
		uncache(lru, lru->oldest);
		lru->stats.evictions++;
	}
	bucket = &lru->buckets[key_hash(key) % lru->nbuckets];
	e->hash_next = *bucket;
	*bucket = e;
	e->older = lru->newest;
	if (lru->newest)
		lru->newest->newer = e;
	lru->newest = e;
	if (lru->oldest == NULL)
		lru->oldest = e;
	lru->stats.used_bytes += entry_cost(e);
	lru->stats.items++;
	pthread_mutex_unlock(&lru->lock);
	return &e->blob;
}

const origin_blob *
origin_lru_put(origin_lru *lru, const char *key, const uint8_t *data, size_t len, const char *etag)
{
	uint8_t    *copy = malloc(len ? len : 1);

	if (copy == NULL)
		return NULL;
	memcpy(copy, data, len);
	return origin_lru_adopt(lru, key, copy, len, etag);
}

void
origin_lru_release(origin_lru *lru, const origin_blob *blob)
{
	if (blob == NULL)
		return;
	pthread_mutex_lock(&lru->lock);
	unref((entry *) blob);
	pthread_mutex_unlock(&lru->lock);
}

void
origin_lru_drop_prefix(origin_lru *lru, const char *prefix)
{
	size_t		n = strlen(prefix);
	entry	   *e;

	pthread_mutex_lock(&lru->lock);
	e = lru->oldest;
	while (e)
	{
		entry	   *next = e->newer;

		if (strncmp(e->key, prefix, n) == 0)
			uncache(lru, e);
		e = next;
	}
	pthread_mutex_unlock(&lru->lock);
}

void
origin_lru_read_stats(origin_lru *lru, origin_lru_stats *out)
{
	pthread_mutex_lock(&lru->lock);
	*out = lru->stats;
	pthread_mutex_unlock(&lru->lock);
}

void
origin_lru_destroy(origin_lru *lru)
{
	if (lru == NULL)
		return;
	while (lru->oldest)
		uncache(lru, lru->oldest);
	pthread_mutex_destroy(&lru->lock);
	free(lru->buckets);
	free(lru);
}
