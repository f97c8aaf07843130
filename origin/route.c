/*
 * route.c — imgmod-origin's request paths.  Strict by construction: the
 * grammar below is the whole of what is accepted, so there is no escaping
 * to undo and no path to normalise (a '%', '.', '//' or anything unknown is
 * refused before any lookup).
 */
#include "route.h"

#include <stdio.h>
#include <string.h>

/* A decimal number without sign or leading zero, at most max; advances *p. */
static int
parse_decimal(const char **p, int64_t max, int64_t *out)
{
	const char *s = *p;
	int64_t		v = 0;

	if (*s < '1' || *s > '9')
		return 0;
	while (*s >= '0' && *s <= '9')
	{
		int			d = *s - '0';

		if (v > (max - d) / 10)
			return 0;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*out = v;
	return 1;
}

/* [a-z0-9][a-z0-9_-]{0,63} followed by ".jpg" and the end of the path. */
static int
parse_preset_file(const char *s, char *preset)
{
	size_t		n = 0;

	if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
		return 0;
	while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '-')
	{
		if (n == ORIGIN_PRESET_MAX)
			return 0;
		preset[n] = s[n];
		n++;
	}
	preset[n] = '\0';
	return strcmp(s + n, ".jpg") == 0;
}

origin_route_kind
origin_parse_route(const char *path, origin_route *out)
{
	const char *p = path;
	int64_t		n;

	memset(out, 0, sizeof(*out));
	if (strcmp(path, "/healthz") == 0)
		return out->kind = ORIGIN_ROUTE_HEALTH;
	if (strcmp(path, "/metrics") == 0)
		return out->kind = ORIGIN_ROUTE_METRICS;
	if (strncmp(p, "/i/", 3) != 0)
		return out->kind = ORIGIN_ROUTE_NOT_FOUND;
	p += 3;
	if (!parse_decimal(&p, INT64_MAX, &n) || *p != '/')
		return out->kind = ORIGIN_ROUTE_BAD_PATH;
	out->image_id = n;
	p++;
	/* "v7/thumb.jpg" names a version; "v7.jpg" is a preset called v7. */
	if (*p == 'v')
	{
		const char *q = p + 1;

		if (parse_decimal(&q, INT32_MAX, &n) && *q == '/')
		{
			out->version = (int32_t) n;
			if (!parse_preset_file(q + 1, out->preset))
				return out->kind = ORIGIN_ROUTE_BAD_PATH;
			return out->kind = ORIGIN_ROUTE_VERSION;
		}
	}
	if (!parse_preset_file(p, out->preset))
		return out->kind = ORIGIN_ROUTE_BAD_PATH;
	return out->kind = ORIGIN_ROUTE_CURRENT;
}

bool
origin_surrogate_keys(const origin_route *route, char *buf, size_t size)
{
	int			n;
	long long	id = (long long) route->image_id;

	if (size == 0)
		return false;
	if (route->kind == ORIGIN_ROUTE_CURRENT)
		n = snprintf(buf, size, "imgmod-image-%lld imgmod-image-%lld-all", id, id);
	else if (route->kind == ORIGIN_ROUTE_VERSION)
		n = snprintf(buf, size, "imgmod-image-%lld-v%d imgmod-image-%lld-all", id, (int) route->version, id);
	else
		n = -1;
	if (n < 0 || (size_t) n >= size)
	{
		buf[0] = '\0';
		return false;
	}
	return true;
}
