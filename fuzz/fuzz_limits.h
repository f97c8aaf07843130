/*
 * fuzz_limits.h — the limits the decoding fuzz targets run under: small
 * enough that libFuzzer spends its time on parsing, not on large rasters.
 */
#ifndef FUZZ_LIMITS_H
#define FUZZ_LIMITS_H

#include "imgcore.h"

static inline void
fuzz_limits(img_limits *lim)
{
	img_limits_default(lim);
	lim->max_pixels = 4 * 1000 * 1000;
	lim->max_side = 4096;
	lim->max_bytes = 16 * 1024 * 1024;
}

#endif
