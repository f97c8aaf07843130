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
#include "utils/guc.h"
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

/*
 * Background processes run as a superuser: with the default search_path a
 * database owner's public.make_interval(secs int) or public.nextval(text)
 * would be a better match than pg_catalog's for the workers' own SQL, and
 * would run with superuser rights.  Only pg_catalog (and pg_temp, last) are
 * searched; everything of imgmod's is schema-qualified.  Set as an override
 * so that no configuration reload can change it.
 */
void
imgmod_pin_search_path(void)
{
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
}
