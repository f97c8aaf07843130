/*
 * core_memory.c — the image core allocates from PostgreSQL memory contexts.
 *
 * Every buffer the core hands back lives in whatever context is current
 * when it is called, so an ERROR anywhere after (a failed INSERT, a cancel)
 * cannot leak a 60 MB raster: the context reset takes it.  Allocation
 * failure returns NULL instead of raising, because the core may be inside
 * a codec that must unwind through its own error path first.
 */
#include "imgmod.h"

#include "utils/memutils.h"

/* palloc has no NO_OOM realloc, so keep the size in front of each block. */
typedef struct block_header
{
	size_t		size;
	size_t		pad;			/* keeps the payload MAXALIGNed */
} block_header;

static void *
core_alloc(size_t size, void *ctx)
{
	block_header *h;

	(void) ctx;
	if (size > SIZE_MAX - sizeof(block_header))
		return NULL;
	h = MemoryContextAllocExtended(CurrentMemoryContext, size + sizeof(block_header),
								   MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (h == NULL)
		return NULL;
	h->size = size;
	return h + 1;
}

static void
core_free(void *ptr, void *ctx)
{
	(void) ctx;
	if (ptr != NULL)
		pfree(((block_header *) ptr) - 1);
}

static void *
core_realloc(void *ptr, size_t size, void *ctx)
{
	block_header *old;
	void	   *fresh;

	if (ptr == NULL)
		return core_alloc(size, ctx);
	old = ((block_header *) ptr) - 1;
	fresh = core_alloc(size, ctx);
	if (fresh == NULL)
		return NULL;
	memcpy(fresh, ptr, Min(old->size, size));
	core_free(ptr, ctx);
	return fresh;
}

void
imgmod_install_core_allocator(void)
{
	img_allocator a = {core_alloc, core_realloc, core_free, NULL};

	img_set_allocator(&a);
}
