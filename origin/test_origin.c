/*
 * Unit tests of imgmod-origin's pure parts: the route grammar (every path a
 * browser or an attacker may send) and the byte-bounded LRU (eviction
 * order, capacity, entries held by a response outliving their eviction).
 * Run under AddressSanitizer by `make -C origin check`; exits non-zero on
 * any failed check, and when no check ran.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lru.h"
#include "route.h"

static int	checks = 0;
static int	failures = 0;

#define CHECK(cond, ...) \
	do { \
		checks++; \
		if (!(cond)) \
		{ \
			failures++; \
			printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__); \
			printf("\n"); \
		} \
	} while (0)

static void
test_routes(void)
{
	static const struct
	{
		const char *path;
		origin_route_kind kind;
	}			cases[] = {
		{"/i/1/thumb.jpg", ORIGIN_ROUTE_CURRENT},
		{"/i/12/v3/thumb.jpg", ORIGIN_ROUTE_VERSION},
		{"/i/5/v1.jpg", ORIGIN_ROUTE_CURRENT},	/* a preset named v1 */
		{"/i/9223372036854775807/t.jpg", ORIGIN_ROUTE_CURRENT},
		{"/i/1/v2147483647/t.jpg", ORIGIN_ROUTE_VERSION},
		{"/i/1/a-b_c9.jpg", ORIGIN_ROUTE_CURRENT},
		{"/healthz", ORIGIN_ROUTE_HEALTH},
		{"/metrics", ORIGIN_ROUTE_METRICS},
		{"/", ORIGIN_ROUTE_NOT_FOUND},
		{"/x", ORIGIN_ROUTE_NOT_FOUND},
		{"/etc/passwd", ORIGIN_ROUTE_NOT_FOUND},
		{"/i/0/thumb.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/01/thumb.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/-1/t.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/+1/t.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/abc/t.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/9223372036854775808/t.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/v2147483648/t.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/v0/t.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/../x.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/%2e%2e/x.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/%74humb.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1//thumb.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i//thumb.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/Thumb.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/_x.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/thumb.png", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/thumb.jpg/", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/thumb.jpg.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/v2/", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/v2/x/y.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/.jpg", ORIGIN_ROUTE_BAD_PATH},
		{"/i/1/t\\x.jpg", ORIGIN_ROUTE_BAD_PATH},
	};
	origin_route r;
	char		long_preset[80];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(origin_parse_route(cases[i].path, &r) == cases[i].kind, "%s parsed as %d, expected %d",
			  cases[i].path, r.kind, cases[i].kind);
	origin_parse_route("/i/12/v3/thumb.jpg", &r);
	CHECK(r.image_id == 12 && r.version == 3 && strcmp(r.preset, "thumb") == 0, "fields of a versioned path");
	origin_parse_route("/i/5/v1.jpg", &r);
	CHECK(r.image_id == 5 && r.version == 0 && strcmp(r.preset, "v1") == 0, "a preset named like a version");
	/* 64 characters is the longest preset, 65 is refused */
	snprintf(long_preset, sizeof(long_preset), "/i/1/%s.jpg", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	CHECK(origin_parse_route(long_preset, &r) == ORIGIN_ROUTE_CURRENT, "a 64-character preset");
	snprintf(long_preset, sizeof(long_preset), "/i/1/%s.jpg", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	CHECK(origin_parse_route(long_preset, &r) == ORIGIN_ROUTE_BAD_PATH, "a 65-character preset");
}

/* The keys an edge purges by: exact, since the extension's purges must name the same. */
static void
test_surrogate_keys(void)
{
	origin_route r;
	char		keys[ORIGIN_SURROGATE_KEYS_MAX];
	char		small[12];

	origin_parse_route("/i/42/thumb.jpg", &r);
	CHECK(origin_surrogate_keys(&r, keys, sizeof(keys)) &&
		  strcmp(keys, "imgmod-image-42 imgmod-image-42-all") == 0, "current URL: %s", keys);
	origin_parse_route("/i/42/v7/thumb.jpg", &r);
	CHECK(origin_surrogate_keys(&r, keys, sizeof(keys)) &&
		  strcmp(keys, "imgmod-image-42-v7 imgmod-image-42-all") == 0, "versioned URL: %s", keys);
	origin_parse_route("/i/9223372036854775807/v2147483647/t.jpg", &r);
	CHECK(origin_surrogate_keys(&r, keys, sizeof(keys)) &&
		  strcmp(keys, "imgmod-image-9223372036854775807-v2147483647 imgmod-image-9223372036854775807-all") == 0,
		  "the largest ids fit ORIGIN_SURROGATE_KEYS_MAX: %s", keys);
	origin_parse_route("/healthz", &r);
	CHECK(!origin_surrogate_keys(&r, keys, sizeof(keys)) && keys[0] == '\0', "no keys for /healthz");
	origin_parse_route("/i/1/../x.jpg", &r);
	CHECK(!origin_surrogate_keys(&r, keys, sizeof(keys)) && keys[0] == '\0', "no keys for a malformed path");
	origin_parse_route("/i/42/thumb.jpg", &r);
	CHECK(!origin_surrogate_keys(&r, small, sizeof(small)) && small[0] == '\0', "a buffer too small: no half key");
}

static void
test_lru(void)
{
	const size_t cost = 1000 + 2 + 128;	/* bytes + key + per-entry overhead */
	origin_lru *lru = origin_lru_create(3 * cost);
	uint8_t		buf[1000];
	const origin_blob *held;
	origin_lru_stats s;

	memset(buf, 7, sizeof(buf));
	origin_lru_release(lru, origin_lru_put(lru, "a1", buf, sizeof(buf), "\"a\""));
	origin_lru_release(lru, origin_lru_put(lru, "b1", buf, sizeof(buf), "\"b\""));
	held = origin_lru_get(lru, "a1");	/* a1 is now the newest, and held */
	CHECK(held && held->len == 1000 && strcmp(held->etag, "\"a\"") == 0, "a hit returns the entry");
	origin_lru_release(lru, origin_lru_put(lru, "c1", buf, sizeof(buf), "\"c\""));
	origin_lru_release(lru, origin_lru_put(lru, "d1", buf, sizeof(buf), "\"d\""));
	CHECK(origin_lru_get(lru, "b1") == NULL, "the least recently used entry (b1) was evicted");
	origin_lru_release(lru, origin_lru_put(lru, "e1", buf, sizeof(buf), "\"e\""));
	CHECK(origin_lru_get(lru, "a1") == NULL, "a held entry is evicted from the cache...");
	CHECK(held->data[999] == 7 && strcmp(held->etag, "\"a\"") == 0, "...but stays readable by its holder");
	origin_lru_release(lru, held);
	origin_lru_read_stats(lru, &s);
	CHECK(s.items == 3 && s.evictions == 2, "3 items, 2 evictions (got %llu, %llu)",
		  (unsigned long long) s.items, (unsigned long long) s.evictions);
	CHECK(s.used_bytes <= s.capacity_bytes, "used within capacity");
	CHECK(s.hits == 1 && s.misses == 2, "hits and misses counted");

	/* the same key again replaces, it does not duplicate */
	origin_lru_release(lru, origin_lru_put(lru, "e1", buf, 500, "\"e2\""));
	held = origin_lru_get(lru, "e1");
	CHECK(held && held->len == 500 && strcmp(held->etag, "\"e2\"") == 0, "a put replaces the entry of its key");
	origin_lru_release(lru, held);

	/* larger than the whole cache: served once, never cached */
	{
		uint8_t		big[5000];

		memset(big, 1, sizeof(big));
		held = origin_lru_put(lru, "big", big, sizeof(big), "\"big\"");
		CHECK(held && held->len == sizeof(big), "an entry larger than the cache is still handed out");
		origin_lru_release(lru, held);
		CHECK(origin_lru_get(lru, "big") == NULL, "but not kept");
	}
	/* adopted bytes: no copy, freed by the cache (ASan judges the frees) */
	{
		uint8_t    *mine = malloc(800);
		uint8_t    *huge = malloc(5000);
		const origin_blob *adopted;

		memset(mine, 3, 800);
		adopted = origin_lru_adopt(lru, "f1", mine, 800, "\"f\"");
		CHECK(adopted && adopted->data == mine && adopted->len == 800, "adopted bytes are the entry's, not a copy");
		origin_lru_release(lru, adopted);
		held = origin_lru_get(lru, "f1");
		CHECK(held && held->data == mine && strcmp(held->etag, "\"f\"") == 0, "and are found again");
		origin_lru_release(lru, held);
		adopted = origin_lru_adopt(lru, "huge", huge, 5000, "\"h\"");
		CHECK(adopted && adopted->data == huge, "adopted bytes larger than the cache are handed out");
		origin_lru_release(lru, adopted);
		CHECK(origin_lru_get(lru, "huge") == NULL, "but not kept (and freed at their release)");
	}
	origin_lru_drop_prefix(lru, "d");
	CHECK(origin_lru_get(lru, "d1") == NULL, "dropped by prefix");
	origin_lru_destroy(lru);
}

int
main(void)
{
	test_routes();
	test_surrogate_keys();
	test_lru();
	printf("origin: %d checks, %d failed\n", checks, failures);
	return failures > 0 || checks == 0;
}
