/*
 * alloc.c — the core's allocator and interrupt hooks, and raster/buffer
 * lifetimes.
 */
#include "imgcore.h"
#include "codec.h"

#include <stdlib.h>
#include <string.h>

static void *
default_alloc(size_t size, void *ctx)
{
	(void) ctx;
	return malloc(size);
}

static void *
default_realloc(void *ptr, size_t size, void *ctx)
{
	(void) ctx;
	return realloc(ptr, size);
}

static void
default_free(void *ptr, void *ctx)
{
	(void) ctx;
	free(ptr);
}

/*
 * One allocator per thread.  The caller's (a PostgreSQL backend's palloc,
 * which is not thread-safe) stays on the thread that installed it; the
 * helper threads a render starts (parallel.c) allocate with malloc, and
 * whatever they hand back is moved into the caller's allocator by the
 * caller (img_adopt_buffer).
 */
static _Thread_local img_allocator current = {default_alloc, default_realloc, default_free, NULL};

void
img_set_allocator(const img_allocator *allocator)
{
	if (allocator == NULL)
	{
		current.alloc = default_alloc;
		current.realloc = default_realloc;
		current.free = default_free;
		current.ctx = NULL;
	}
	else
		current = *allocator;
}

void *
img_alloc(size_t size)
{
	return current.alloc(size ? size : 1, current.ctx);
}

void *
img_realloc(void *ptr, size_t size)
{
	return current.realloc(ptr, size ? size : 1, current.ctx);
}

void
img_free(void *ptr)
{
	if (ptr != NULL)
		current.free(ptr, current.ctx);
}

static img_interrupt_hook interrupt_hook;
static void *interrupt_ctx;

void
img_set_interrupt_hook(img_interrupt_hook hook, void *ctx)
{
	interrupt_hook = hook;
	interrupt_ctx = hook ? ctx : NULL;
}

bool
img_interrupt_requested(void)
{
	return interrupt_hook != NULL && interrupt_hook(interrupt_ctx);
}

img_status
img_check_interrupt(img_error *err, const char *doing)
{
	if (!img_interrupt_requested())
		return IMG_OK;
	return img_fail(err, IMG_ERR_INTERRUPTED, "interrupted while %s", doing);
}

bool
img_size_mul(size_t a, size_t b, size_t *out)
{
	if (a != 0 && b > SIZE_MAX / a)
		return false;
	*out = a * b;
	return true;
}

img_status
img_raster_init(img_raster *raster, uint32_t width, uint32_t height,
				uint32_t channels, img_error *err)
{
	size_t		stride;
	size_t		total;

	memset(raster, 0, sizeof(*raster));
	if (width == 0 || height == 0 || channels == 0 || channels > 4)
		return img_fail(err, IMG_ERR_INTERNAL, "invalid raster %ux%ux%u",
						width, height, channels);
	if (!img_size_mul(width, channels, &stride) ||
		!img_size_mul(stride, height, &total))
		return img_fail(err, IMG_ERR_TOO_MANY_PIXELS,
						"raster %ux%u does not fit in memory", width, height);
	raster->pixels = img_alloc(total);
	if (raster->pixels == NULL)
		return img_fail(err, IMG_ERR_NO_MEMORY,
						"out of memory allocating a %ux%u raster", width, height);
	raster->width = width;
	raster->height = height;
	raster->channels = channels;
	raster->stride = stride;
	return IMG_OK;
}

void
img_raster_free(img_raster *raster)
{
	if (raster == NULL)
		return;
	img_free(raster->pixels);
	memset(raster, 0, sizeof(*raster));
}

void
img_buffer_free(img_buffer *buffer)
{
	if (buffer == NULL)
		return;
	img_free(buffer->data);
	buffer->data = NULL;
	buffer->len = 0;
}

void
img_decoded_free(img_decoded *decoded)
{
	if (decoded == NULL)
		return;
	img_raster_free(&decoded->raster);
	img_free(decoded->icc);
	decoded->icc = NULL;
	decoded->icc_len = 0;
}
