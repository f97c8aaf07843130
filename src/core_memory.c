/*
 * core_memory.c — the image core allocates from PostgreSQL memory contexts
 * and stops when PostgreSQL wants the statement or process to end.
 *
 * Every buffer the core hands back lives in whatever context is current
 * when it is called, so an ERROR anywhere after (a failed INSERT, a cancel)
 * cannot leak a 60 MB raster: the context reset takes it.  Allocation
 * failure returns NULL instead of raising, because the core may be inside
 * a codec that must unwind through its own error path first.
 */
#include "imgmod.h"

#include "miscadmin.h"
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

/*
 * The core's interrupt hook: only reads the flags the signal handlers set.
 * CHECK_FOR_INTERRUPTS() here would longjmp through libjpeg or libpng; the
 * core returns IMG_ERR_INTERRUPTED instead and the caller lets PostgreSQL
 * raise the error (imgmod_core_interrupted).  Only a pending cancel (a
 * statement timeout is one) or termination stops the work: the other
 * reasons for InterruptPending (a barrier, a memory-context dump request)
 * are handled by the next CHECK_FOR_INTERRUPTS without ending anything,
 * and must not cost an upload.
 */
static bool
core_should_stop(void *ctx)
{
	(void) ctx;
	return InterruptPending && (QueryCancelPending || ProcDiePending);
}

void
imgmod_install_core_hooks(void)
{
	img_allocator a = {core_alloc, core_realloc, core_free, NULL};

	img_set_allocator(&a);
	img_set_interrupt_hook(core_should_stop, NULL);
}
