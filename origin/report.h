/*
 * report.h — imgmod-origin tells PostgreSQL how full its memory cache is
 * (imgmod.cdn_report(), seen in imgmod.cdn_capacity) every few seconds and
 * once more when it stops.
 */
#ifndef IMGMOD_ORIGIN_REPORT_H
#define IMGMOD_ORIGIN_REPORT_H

#include <stdbool.h>

#include "lru.h"

typedef struct origin_reporter origin_reporter;

origin_reporter *origin_report_start(const char *conninfo, const char *node, int interval_s, origin_lru *lru);
/* Stops the thread after one last report. */
void		origin_report_stop(origin_reporter *rep);

#endif
