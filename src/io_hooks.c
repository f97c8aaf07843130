/*
 * io_hooks.c — what the extension gives the I/O library (src/io): memory,
 * "should I stop", counters and a log for warnings.
 *
 * The library keeps its clients (connections, their URLs) for the life of
 * the process and frees every temporary before it returns, so its memory
 * comes from one long-lived context of its own, never from a context that
 * is reset under it; what a caller keeps is copied into the caller's
 * memory by the adapters.  Allocation failure is NULL (MCXT_ALLOC_NO_OOM):
 * the library is often inside a curl or hiredis call, where an ERROR's
 * longjmp would leave their handles mid-operation.
 */
#include "imgmod.h"

#include "miscadmin.h"
#include "utils/memutils.h"

static MemoryContext io_context = NULL;

static void *
io_alloc(size_t size, void *ctx)
{
	(void) ctx;
	return MemoryContextAllocExtended(io_context, size, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

static void
io_free(void *ptr, void *ctx)
{
	(void) ctx;
	pfree(ptr);
}

/* A pending cancel, statement timeout or termination stops a transfer now. */
static bool
io_should_abort(void *ctx)
{
	(void) ctx;
	return InterruptPending && (ProcDiePending || QueryCancelPending);
}

static void
io_count_request(const imgio_store_config *store, imgio_verb verb, bool ok, int retries, void *ctx)
{
	(void) ctx;
	imgmod_count_request((imgmod_store) store->id, verb, ok, retries);
}

static void
io_count_cache(imgio_cache_counter counter, int n, void *ctx)
{
	(void) ctx;
	imgmod_count_cache(counter, n);
}

static void
io_warn(const char *message, void *ctx)
{
	(void) ctx;
	ereport(WARNING, (errmsg("imgmod: %s", message)));
}

const imgio_hooks *
imgmod_io_hooks(void)
{
	static imgio_hooks hooks = {
		.alloc = io_alloc,
		.free = io_free,
		.should_abort = io_should_abort,
		.count_request = io_count_request,
		.count_cache = io_count_cache,
		.warn = io_warn,
	};

	if (io_context == NULL)
		io_context = AllocSetContextCreate(TopMemoryContext, "imgmod I/O", ALLOCSET_DEFAULT_SIZES);
	return &hooks;
}
