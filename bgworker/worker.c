/*
 * worker.c — the imgmod background worker's loop.
 *
 * Each worker waits on its latch (set when an upload or retry commits, or
 * when a rejection is queued for the audit table), wakes at least every
 * imgmod.poll_interval for retries that became due, and then works until
 * nothing is runnable.  One bad job never ends the loop: its error is
 * caught, recorded on the job, and the job is retried with backoff.
 */
#include "imgmod.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "jobs.h"

PGDLLEXPORT void imgmod_worker_main(Datum main_arg);

static int	worker_slot = -1;

static void
detach_on_exit(int code, Datum arg)
{
	(void) code;
	(void) arg;
	imgmod_worker_detach(worker_slot);
}

/*
 * Runs one step of work under an error boundary.  Returns true when it did
 * something (so the loop goes on without sleeping).
 */
static bool
guarded_step(bool (*step) (void), MemoryContext loop_context)
{
	volatile bool did = false;

	/*
	 * Each step allocates in the loop context, reset after every job: a
	 * step that committed a transaction leaves CurrentMemoryContext at
	 * TopMemoryContext, where the next step's buffers would never be freed.
	 */
	MemoryContextSwitchTo(loop_context);
	PG_TRY();
	{
		did = step();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(loop_context);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		/* Back off a little so a systematic error cannot spin the CPU. */
		did = false;
	}
	PG_END_TRY();
	return did;
}

static bool
flush_audit_step(void)
{
	return imgmod_audit_flush() > 0;
}

void
imgmod_worker_main(Datum main_arg)
{
	MemoryContext loop_context;
	TimestampTz last_reclaim = 0;

	worker_slot = DatumGetInt32(main_arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(imgmod_database, NULL, 0);
	imgmod_pin_search_path();

	imgmod_worker_attach(worker_slot);
	on_shmem_exit(detach_on_exit, (Datum) 0);
	imgmod_install_core_hooks();

	loop_context = AllocSetContextCreate(TopMemoryContext, "imgmod worker loop",
										 ALLOCSET_DEFAULT_SIZES);
	elog(LOG, "imgmod worker %d started in database \"%s\"", worker_slot, imgmod_database);

	for (;;)
	{
		bool		did_work = false;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(loop_context);

		if (imgmod_extension_installed())
		{
			TimestampTz now = GetCurrentTimestamp();

			pgstat_report_activity(STATE_RUNNING, "imgmod: working");
			if (worker_slot == 0)
				did_work |= guarded_step(flush_audit_step, loop_context);

			/* Orphaned jobs are rare; look for them once per poll interval. */
			if (TimestampDifferenceExceeds(last_reclaim, now, imgmod_poll_interval_ms))
			{
				last_reclaim = now;
				did_work |= guarded_step(imgmod_reclaim_orphaned_jobs, loop_context);
			}
			did_work |= guarded_step(imgmod_run_one_job, loop_context);
			MemoryContextReset(loop_context);
			pgstat_report_stat(true);
			pgstat_report_activity(STATE_IDLE, NULL);
		}

		if (!did_work)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 imgmod_poll_interval_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}
