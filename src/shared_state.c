/*
 * shared_state.c — imgmod's shared memory: the worker registry (so a
 * committing upload can wake workers) and the audit queue with its
 * counters (so a rejection is recorded even though the uploading
 * transaction rolls back).
 */
#include "imgmod.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "shared_state.h"

imgmod_shared *imgmod_state = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
shared_size(void)
{
	return MAXALIGN(sizeof(imgmod_shared));
}

static void
request_shmem(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("imgmod", 1);
}

void
imgmod_request_shmem(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = request_shmem;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = imgmod_shmem_startup;
}

void
imgmod_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	imgmod_state = ShmemInitStruct("imgmod", shared_size(), &found);
	if (!found)
	{
		memset(imgmod_state, 0, sizeof(*imgmod_state));
		imgmod_state->lock = &(GetNamedLWLockTranche("imgmod"))->lock;
		for (int i = 0; i < IMGMOD_MAX_WORKERS; i++)
			imgmod_state->workers[i].pgprocno = -1;
		imgmod_state->publisher.pgprocno = -1;
		for (int i = 0; i < IMG_STATUS_COUNT; i++)
			pg_atomic_init_u64(&imgmod_state->rejections_by_status[i], 0);
		pg_atomic_init_u64(&imgmod_state->audit_dropped, 0);
		for (int i = 0; i < IMGIO_CACHE_COUNTER_COUNT; i++)
			pg_atomic_init_u64(&imgmod_state->cache[i], 0);
		for (int i = 0; i < IMGMOD_RETRY_OUTCOME_COUNT; i++)
			pg_atomic_init_u64(&imgmod_state->retry_requests[i], 0);
		for (int i = 0; i <= IMGMOD_RENDER_THREADS_MAX; i++)
			pg_atomic_init_u64(&imgmod_state->renders_by_threads[i], 0);
		for (int st = 0; st < IMGMOD_STORE_COUNT; st++)
			for (int v = 0; v < IMGIO_VERB_COUNT; v++)
			{
				pg_atomic_init_u64(&imgmod_state->requests[st][v], 0);
				pg_atomic_init_u64(&imgmod_state->request_failures[st][v], 0);
				pg_atomic_init_u64(&imgmod_state->request_retries[st][v], 0);
			}
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
require_shared_state(void)
{
	if (imgmod_state == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("imgmod is not loaded through shared_preload_libraries"),
				 errhint("Add imgmod to shared_preload_libraries in postgresql.conf and restart the server.")));
}

void
imgmod_worker_attach(int slot)
{
	require_shared_state();
	LWLockAcquire(imgmod_state->lock, LW_EXCLUSIVE);
	imgmod_state->workers[slot].pid = MyProcPid;
	imgmod_state->workers[slot].pgprocno = MyProc->pgprocno;
	LWLockRelease(imgmod_state->lock);
}

void
imgmod_worker_detach(int slot)
{
	if (imgmod_state == NULL)
		return;
	LWLockAcquire(imgmod_state->lock, LW_EXCLUSIVE);
	if (imgmod_state->workers[slot].pid == MyProcPid)
	{
		imgmod_state->workers[slot].pid = 0;
		imgmod_state->workers[slot].pgprocno = -1;
	}
	LWLockRelease(imgmod_state->lock);
}

int
imgmod_wake_all_workers(void)
{
	int			woken = 0;

	if (imgmod_state == NULL)
		return 0;
	LWLockAcquire(imgmod_state->lock, LW_SHARED);
	for (int i = 0; i < IMGMOD_MAX_WORKERS; i++)
	{
		int			procno = imgmod_state->workers[i].pgprocno;

		if (imgmod_state->workers[i].pid != 0 && procno >= 0)
		{
			SetLatch(&GetPGProcByNumber(procno)->procLatch);
			woken++;
		}
	}
	if (imgmod_state->publisher.pid != 0 && imgmod_state->publisher.pgprocno >= 0)
		SetLatch(&GetPGProcByNumber(imgmod_state->publisher.pgprocno)->procLatch);
	LWLockRelease(imgmod_state->lock);
	return woken;
}

void
imgmod_publisher_attach(void)
{
	require_shared_state();
	LWLockAcquire(imgmod_state->lock, LW_EXCLUSIVE);
	imgmod_state->publisher.pid = MyProcPid;
	imgmod_state->publisher.pgprocno = MyProc->pgprocno;
	LWLockRelease(imgmod_state->lock);
}

static bool wake_registered = false;
static bool wake_pending = false;

static void
wake_at_commit(XactEvent event, void *arg)
{
	(void) arg;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_pending)
				imgmod_wake_all_workers();
			wake_pending = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* nothing committed, nothing to do; a prepared upload waits for the poll */
			wake_pending = false;
			break;
		default:
			break;
	}
}

void
imgmod_wake_workers_at_commit(void)
{
	if (!wake_registered)
	{
		RegisterXactCallback(wake_at_commit, NULL);
		wake_registered = true;
	}
	wake_pending = true;
}

int
imgmod_attached_worker_count(void)
{
	int			n = 0;

	if (imgmod_state == NULL)
		return 0;
	LWLockAcquire(imgmod_state->lock, LW_SHARED);
	for (int i = 0; i < IMGMOD_MAX_WORKERS; i++)
		if (imgmod_state->workers[i].pid != 0)
			n++;
	LWLockRelease(imgmod_state->lock);
	return n;
}

void
imgmod_count_request(imgmod_store store, imgio_verb verb, bool ok, int retries)
{
	if (imgmod_state == NULL || store >= IMGMOD_STORE_COUNT || verb >= IMGIO_VERB_COUNT)
		return;
	/* Every attempt reached the server (or tried to): count them all. */
	pg_atomic_fetch_add_u64(&imgmod_state->requests[store][verb], 1 + retries);
	if (retries > 0)
		pg_atomic_fetch_add_u64(&imgmod_state->request_retries[store][verb], retries);
	if (!ok)
		pg_atomic_fetch_add_u64(&imgmod_state->request_failures[store][verb], 1);
}

void
imgmod_count_cache(imgio_cache_counter counter, int n)
{
	if (imgmod_state == NULL || counter >= IMGIO_CACHE_COUNTER_COUNT || n <= 0)
		return;
	pg_atomic_fetch_add_u64(&imgmod_state->cache[counter], (uint64) n);
}

void
imgmod_count_retry_request(imgmod_retry_outcome outcome)
{
	if (imgmod_state == NULL || (int) outcome < 0 || outcome >= IMGMOD_RETRY_OUTCOME_COUNT)
		return;
	pg_atomic_fetch_add_u64(&imgmod_state->retry_requests[outcome], 1);
}

void
imgmod_count_render(unsigned threads)
{
	if (imgmod_state == NULL || threads < 1 || threads > IMGMOD_RENDER_THREADS_MAX)
		return;
	pg_atomic_fetch_add_u64(&imgmod_state->renders_by_threads[threads], 1);
}

/*
 * For background processes: is the extension created in our database yet?
 * (Before CREATE EXTENSION there are no tables to work on.)  Runs its own
 * short transaction.
 */
bool
imgmod_extension_installed(void)
{
	bool		installed;
	MemoryContext caller = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid("imgmod", true));
	CommitTransactionCommand();
	/* Commit leaves TopMemoryContext current; the caller's loop context is reset, Top never. */
	MemoryContextSwitchTo(caller);
	return installed;
}
