/*
 * stages_util.h — what the in-process bench helpers (imgmod_stages,
 * edit_stages) share: a monotonic clock in ms, a double comparator for
 * qsort and reading a whole file.  Header-only: each helper is one source.
 */
#ifndef IMGMOD_STAGES_UTIL_H
#define IMGMOD_STAGES_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* The whole file, malloc'd; NULL on any error. */
static uint8_t *
read_all(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t    *buf;
	long		size;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0)
		return NULL;
	rewind(f);
	buf = malloc(size ? size : 1);
	if (buf == NULL || fread(buf, 1, size, f) != (size_t) size)
	{
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*len = (size_t) size;
	return buf;
}

#endif							/* IMGMOD_STAGES_UTIL_H */
