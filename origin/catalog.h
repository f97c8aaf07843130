/*
 * catalog.h — what imgmod-origin knows from PostgreSQL: for an image, its
 * status, current version and the variant rows of the versions still kept.
 * Read with a prepared statement on a small pool of connections and cached
 * per image; LISTEN imgmod_status drops an image's entry whenever any event
 * about it arrives (its payload is a hint, never trusted), and a lost
 * listening connection drops everything.
 */
#ifndef IMGMOD_ORIGIN_CATALOG_H
#define IMGMOD_ORIGIN_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "route.h"

typedef struct origin_catalog origin_catalog;

#define ORIGIN_INSTALLATION_MAX 64	/* a uuid's text, with room */

typedef enum origin_lookup
{
	ORIGIN_LOOKUP_FOUND = 0,
	ORIGIN_LOOKUP_NO_IMAGE,		/* no such image, or deleted */
	ORIGIN_LOOKUP_NOT_READY,	/* no current version yet */
	ORIGIN_LOOKUP_NO_VARIANT,	/* no such preset or version (or purged) */
	ORIGIN_LOOKUP_UNAVAILABLE	/* PostgreSQL cannot be reached */
} origin_lookup;

typedef struct origin_variant
{
	int64_t		image_id;
	int32_t		version;
	bool		current;		/* the image's current version */
	char		preset[ORIGIN_PRESET_MAX + 1];
	char		object_key[256];
	char		etag[48];
	int64_t		bytes;
	time_t		created_at;		/* Last-Modified */
} origin_variant;

origin_catalog *origin_catalog_open(const char *conninfo, int pool_size, int timeout_ms);
void		origin_catalog_close(origin_catalog *cat);

/* The variant a route names, current or exact version. */
origin_lookup origin_catalog_find(origin_catalog *cat, const origin_route *route, origin_variant *out);

/* Starts the listener thread (LISTEN imgmod_status). */
bool		origin_catalog_listen(origin_catalog *cat);

/* True while PostgreSQL answered the last attempt. */
bool		origin_catalog_reachable(origin_catalog *cat);

/*
 * The installation id that names imgmod's Redis keys, copied into buf
 * ("" until read).  A copy, taken under the catalog's lock: the listener
 * thread rewrites it at every (re)connection while requests read it.
 */
void		origin_catalog_installation(origin_catalog *cat, char *buf, size_t size);

#endif
