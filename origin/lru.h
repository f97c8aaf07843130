/*
 * lru.h — imgmod-origin's memory tier: variant bytes by key, bounded by a
 * capacity in bytes, least recently used evicted first.  Thread-safe.  An
 * entry handed to a response is reference counted: eviction unlinks it, and
 * its bytes are freed only when the last response releases it.
 */
#ifndef IMGMOD_ORIGIN_LRU_H
#define IMGMOD_ORIGIN_LRU_H

#include <stddef.h>
#include <stdint.h>

typedef struct origin_lru origin_lru;

typedef struct origin_blob
{
	const uint8_t *data;
	size_t		len;
	char		etag[48];		/* quoted, as in imgmod.variants.etag */
} origin_blob;

typedef struct origin_lru_stats
{
	uint64_t	capacity_bytes;
	uint64_t	used_bytes;
	uint64_t	items;
	uint64_t	hits;
	uint64_t	misses;
	uint64_t	evictions;
} origin_lru_stats;

origin_lru *origin_lru_create(uint64_t capacity_bytes);
void		origin_lru_destroy(origin_lru *lru);

/* A referenced entry, or NULL (counted as a miss). Release it when done. */
const origin_blob *origin_lru_get(origin_lru *lru, const char *key);

/*
 * Copies the bytes in under key (replacing an entry of the same key) and
 * evicts from the cold end until they fit; returns the new entry,
 * referenced.  Bytes larger than the whole capacity get an entry that is
 * not cached (freed at its release).  NULL only when memory ran out.
 */
const origin_blob *origin_lru_put(origin_lru *lru, const char *key, const uint8_t *data, size_t len,
								  const char *etag);
/*
 * The same without the copy: data (from malloc) belongs to the cache from
 * this call on, also when NULL is returned, and is freed with free() when
 * the entry's last holder lets go.  For bytes just read from Redis or the
 * store, which would otherwise be copied once more.
 */
const origin_blob *origin_lru_adopt(origin_lru *lru, const char *key, uint8_t *data, size_t len,
									const char *etag);
void		origin_lru_release(origin_lru *lru, const origin_blob *blob);

/* Drops every entry whose key starts with prefix (an image's keys). */
void		origin_lru_drop_prefix(origin_lru *lru, const char *prefix);
void		origin_lru_read_stats(origin_lru *lru, origin_lru_stats *out);

#endif
