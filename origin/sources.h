/*
 * sources.h — where imgmod-origin takes a variant's bytes from, cheapest
 * first: its memory LRU, Redis (only bytes that hash to the variant's
 * ETag), the main store (one GET; then put in Redis for the next origin).
 */
#ifndef IMGMOD_ORIGIN_SOURCES_H
#define IMGMOD_ORIGIN_SOURCES_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "lru.h"

typedef struct origin_sources origin_sources;

typedef enum origin_tier
{
	ORIGIN_TIER_MEMORY = 0,
	ORIGIN_TIER_REDIS,
	ORIGIN_TIER_STORE,
	ORIGIN_TIER_COUNT
} origin_tier;

typedef enum origin_fetch
{
	ORIGIN_FETCH_OK = 0,
	ORIGIN_FETCH_STORE_FAILED	/* 502 */
} origin_fetch;

/* Reads the store and Redis settings from the environment (see main.c). */
origin_sources *origin_sources_open(origin_lru *lru, char *errbuf, size_t errsize);
void		origin_sources_close(origin_sources *src);

/*
 * Is the main store reachable?  A probe (imgio_store_probe: S3 HEAD of the
 * bucket with a 1 s timeout, or the local directory readable) made at most
 * once a second whatever the number of callers, so /healthz cannot be used
 * to hammer the store; while one caller probes, the others get the last
 * result instead of waiting.  A change of state is logged (to stderr).
 */
bool		origin_sources_store_reachable(origin_sources *src);

/*
 * The variant's bytes, referenced (release with origin_lru_release), and
 * the tier they came from.
 */
origin_fetch origin_sources_get(origin_sources *src, origin_catalog *cat, const origin_variant *v,
								const origin_blob **blob, origin_tier *tier);

#endif
