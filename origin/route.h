/*
 * route.h — what an imgmod-origin request path asks for.  Pure parsing, no
 * I/O: every request path goes through img_origin_parse_route() before
 * anything is looked up, so a path can never name anything but a variant.
 */
#ifndef IMGMOD_ORIGIN_ROUTE_H
#define IMGMOD_ORIGIN_ROUTE_H

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

#endif
