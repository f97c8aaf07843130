/*
 * route.h — what an imgmod-origin request path asks for.  Pure parsing, no
 * I/O: every request path goes through img_origin_parse_route() before
 * anything is looked up, so a path can never name anything but a variant.
 */
#ifndef IMGMOD_ORIGIN_ROUTE_H
#define IMGMOD_ORIGIN_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORIGIN_PRESET_MAX 64

typedef enum origin_route_kind
{
	ORIGIN_ROUTE_BAD_PATH = 0,	/* 400 */
	ORIGIN_ROUTE_NOT_FOUND,		/* 404: well formed, but nothing lives there */
	ORIGIN_ROUTE_CURRENT,		/* /i/{image}/{preset}.jpg */
	ORIGIN_ROUTE_VERSION,		/* /i/{image}/v{version}/{preset}.jpg */
	ORIGIN_ROUTE_HEALTH,		/* /healthz */
	ORIGIN_ROUTE_METRICS		/* /metrics */
} origin_route_kind;

typedef struct origin_route
{
	origin_route_kind kind;
	int64_t		image_id;
	int32_t		version;		/* ORIGIN_ROUTE_VERSION only */
	char		preset[ORIGIN_PRESET_MAX + 1];
} origin_route;

/*
 * Parses the path of a request (no query string: the caller drops it).
 * Image ids and versions are decimal without sign or leading zero and fit
 * their types; presets are what imgmod.presets allows ([a-z0-9][a-z0-9_-]*,
 * at most 64); anything percent-encoded, doubled, dotted or extra is
 * ORIGIN_ROUTE_BAD_PATH.
 */
origin_route_kind origin_parse_route(const char *path, origin_route *out);

/*
 * The surrogate keys of an image route's answers (200, 304 and 404 alike),
 * sent in both xkey (Varnish's xkey vmod) and Surrogate-Key (Fastly and
 * others), space-separated.  This is a contract with the purges imgmod
 * sends per image event, so the two sides must change together:
 *
 *   /i/{id}/{preset}.jpg         "imgmod-image-{id} imgmod-image-{id}-all"
 *   /i/{id}/v{n}/{preset}.jpg    "imgmod-image-{id}-v{n} imgmod-image-{id}-all"
 *
 *   version n becomes ready   purges  imgmod-image-{id} imgmod-image-{id}-v{n}
 *                                     (the current URLs and a cached 404 of v{n})
 *   version n is purged       purges  imgmod-image-{id}-v{n}
 *   the image is deleted      purges  imgmod-image-{id}-all
 *
 * False (buf "") for a route that is no image (and when size is too small;
 * ORIGIN_SURROGATE_KEYS_MAX always fits).
 */
#define ORIGIN_SURROGATE_KEYS_MAX 96
bool		origin_surrogate_keys(const origin_route *route, char *buf, size_t size);

#endif
