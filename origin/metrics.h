/*
 * metrics.h — imgmod-origin's counters, as Prometheus text on /metrics.
 */
#ifndef IMGMOD_ORIGIN_METRICS_H
#define IMGMOD_ORIGIN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lru.h"
#include "route.h"
#include "sources.h"

void		origin_metrics_request(origin_route_kind route, int status, double seconds, uint64_t body_bytes);
void		origin_metrics_tier(origin_tier tier, int hit);
void		origin_metrics_store_probe(int ok);
/* Prometheus text exposition into a malloc'd buffer (*len bytes). */
char	   *origin_metrics_render(origin_lru *lru, size_t *len);

#endif
