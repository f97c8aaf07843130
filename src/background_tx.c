/*
 * background_tx.c — the short transactions of imgmod's background
 * processes (workers, publisher, audit flush): start, SPI, snapshot, and
 * back to the caller's memory context at commit.
 *
 * That last step is why this is one function for all of them: committing
 * leaves CurrentMemoryContext at TopMemoryContext, and anything a loop then
 * allocates there outlives the loop's per-iteration reset (a job's staged
 * source alone is megabytes).
 */
#include "imgmod.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

static MemoryContext caller_context = NULL;

void
imgmod_bg_begin_tx(const char *activity)
{
	caller_context = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (activity != NULL)
		pgstat_report_activity(STATE_RUNNING, activity);
}

void
imgmod_bg_commit_tx(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller_context);
}
