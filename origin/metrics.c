/*
 * metrics.c — counters kept with atomics (requests come from a thread
 * pool) and rendered as Prometheus text.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const route_names[] = {"bad_path", "not_found", "current", "version", "healthz", "metrics"};
static const int status_codes[] = {200, 304, 400, 404, 405, 431, 500, 502, 503};
#define NROUTES (sizeof(route_names) / sizeof(route_names[0]))
#define NSTATUS (sizeof(status_codes) / sizeof(status_codes[0]))
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))
static const char *const tier_names[ORIGIN_TIER_COUNT] = {"memory", "redis", "store"};

static atomic_ulong requests[NROUTES][NSTATUS + 1];	/* last column: other codes */
static atomic_ulong latency_buckets[NBUCKETS + 1];
static atomic_ulong latency_micros_sum;
static atomic_ulong bytes_sent;
static atomic_ulong tier_hits[ORIGIN_TIER_COUNT];
static atomic_ulong tier_misses[ORIGIN_TIER_COUNT];
static atomic_ulong store_probes[2];	/* failed, ok */

void
origin_metrics_request(origin_route_kind route, int status, double seconds, uint64_t body_bytes)
{
	size_t		s = NSTATUS;

	for (size_t i = 0; i < NSTATUS; i++)
		if (status_codes[i] == status)
			s = i;
	if ((size_t) route < NROUTES)
		atomic_fetch_add(&requests[route][s], 1);
	for (size_t b = 0; b <= NBUCKETS; b++)
		if (b == NBUCKETS || seconds <= buckets[b])
		{
			atomic_fetch_add(&latency_buckets[b], 1);
			break;
		}
	atomic_fetch_add(&latency_micros_sum, (unsigned long) (seconds * 1e6));
	atomic_fetch_add(&bytes_sent, body_bytes);
}

void
origin_metrics_tier(origin_tier tier, int hit)
{
	if (hit)
		atomic_fetch_add(&tier_hits[tier], 1);
	else
		atomic_fetch_add(&tier_misses[tier], 1);
}

void
origin_metrics_store_probe(int ok)
{
	atomic_fetch_add(&store_probes[ok ? 1 : 0], 1);
}

typedef struct text
{
	char	   *buf;
	size_t		len;
	size_t		cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(text *t, const char *fmt, ...)
{
	va_list		ap;
	int			n;

	if (t->buf == NULL)
		return;
	for (;;)
	{
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t) n < t->cap - t->len)
		{
			t->len += (size_t) n;
			return;
		}
		t->cap *= 2;
		t->buf = realloc(t->buf, t->cap);
		if (t->buf == NULL)
			return;
	}
}

char *
origin_metrics_render(origin_lru *lru, size_t *len)
{
	text		t = {malloc(8192), 0, 8192};
	origin_lru_stats s;
	unsigned long cumulative = 0;

	put(&t, "# HELP imgmod_origin_requests_total Requests by route and status code.\n"
		"# TYPE imgmod_origin_requests_total counter\n");
	for (size_t r = 0; r < NROUTES; r++)
		for (size_t c = 0; c <= NSTATUS; c++)
		{
			unsigned long n = atomic_load(&requests[r][c]);

			if (n == 0)
				continue;
			if (c < NSTATUS)
				put(&t, "imgmod_origin_requests_total{route=\"%s\",code=\"%d\"} %lu\n", route_names[r], status_codes[c], n);
			else
				put(&t, "imgmod_origin_requests_total{route=\"%s\",code=\"other\"} %lu\n", route_names[r], n);
		}
	put(&t, "# HELP imgmod_origin_request_seconds Time from request to response queued.\n"
		"# TYPE imgmod_origin_request_seconds histogram\n");
	for (size_t b = 0; b <= NBUCKETS; b++)
	{
		cumulative += atomic_load(&latency_buckets[b]);
		if (b < NBUCKETS)
			put(&t, "imgmod_origin_request_seconds_bucket{le=\"%g\"} %lu\n", buckets[b], cumulative);
		else
			put(&t, "imgmod_origin_request_seconds_bucket{le=\"+Inf\"} %lu\n", cumulative);
	}
	put(&t, "imgmod_origin_request_seconds_sum %.6f\nimgmod_origin_request_seconds_count %lu\n",
		atomic_load(&latency_micros_sum) / 1e6, cumulative);
	put(&t, "# HELP imgmod_origin_sent_bytes_total Body bytes sent.\n# TYPE imgmod_origin_sent_bytes_total counter\n"
		"imgmod_origin_sent_bytes_total %lu\n", atomic_load(&bytes_sent));

	origin_lru_read_stats(lru, &s);
	put(&t, "# HELP imgmod_origin_cache_capacity_bytes Capacity of the memory cache.\n"
		"# TYPE imgmod_origin_cache_capacity_bytes gauge\nimgmod_origin_cache_capacity_bytes %llu\n"
		"# HELP imgmod_origin_cache_used_bytes Bytes held by the memory cache.\n"
		"# TYPE imgmod_origin_cache_used_bytes gauge\nimgmod_origin_cache_used_bytes %llu\n"
		"# HELP imgmod_origin_cache_items Variants held by the memory cache.\n"
		"# TYPE imgmod_origin_cache_items gauge\nimgmod_origin_cache_items %llu\n"
		"# HELP imgmod_origin_cache_evictions_total Variants evicted from the memory cache.\n"
		"# TYPE imgmod_origin_cache_evictions_total counter\nimgmod_origin_cache_evictions_total %llu\n",
		(unsigned long long) s.capacity_bytes, (unsigned long long) s.used_bytes,
		(unsigned long long) s.items, (unsigned long long) s.evictions);
	put(&t, "# HELP imgmod_origin_tier_hits_total Variants found in a tier.\n# TYPE imgmod_origin_tier_hits_total counter\n");
	for (int i = 0; i < ORIGIN_TIER_COUNT; i++)
		put(&t, "imgmod_origin_tier_hits_total{tier=\"%s\"} %lu\n", tier_names[i], atomic_load(&tier_hits[i]));
	put(&t, "# HELP imgmod_origin_tier_misses_total Variants a tier did not have (or failed to give).\n"
		"# TYPE imgmod_origin_tier_misses_total counter\n");
	for (int i = 0; i < ORIGIN_TIER_COUNT; i++)
		put(&t, "imgmod_origin_tier_misses_total{tier=\"%s\"} %lu\n", tier_names[i], atomic_load(&tier_misses[i]));
	put(&t, "# HELP imgmod_origin_store_probes_total Reachability probes of the main store (for /healthz).\n"
		"# TYPE imgmod_origin_store_probes_total counter\n"
		"imgmod_origin_store_probes_total{result=\"ok\"} %lu\nimgmod_origin_store_probes_total{result=\"failed\"} %lu\n",
		atomic_load(&store_probes[1]), atomic_load(&store_probes[0]));
	*len = t.len;
	return t.buf;
}
