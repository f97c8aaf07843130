/*
 * job_queue.c — the worker's side of imgmod.jobs: claim the next due job
 * (FOR UPDATE SKIP LOCKED, in a short transaction), hand it to the code of
 * its kind, and when an attempt fails record the error and schedule the
 * next attempt with jittered exponential backoff, or declare the job dead.
 * Jobs left 'running' by a worker that died are re-queued here too.
 */
#include "imgmod.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "jobs.h"

static const char *
kind_name(imgmod_job_kind kind)
{
	return kind == IMGMOD_JOB_PURGE ? "purge" : "render";
}

static bool
claim_job(imgmod_job *job)
{
	static const char *claim =
		"UPDATE imgmod.jobs j SET state = 'running', attempts = j.attempts + 1, "
		"       claimed_by = pg_backend_pid(), claimed_by_start = $1, claimed_at = now() "
		" WHERE j.id = (SELECT id FROM imgmod.jobs WHERE state = 'queued' AND next_attempt_at <= now() "
		"               ORDER BY next_attempt_at, id FOR UPDATE SKIP LOCKED LIMIT 1) "
		"RETURNING j.id, j.image_id, j.version, j.attempts, j.kind";
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	char	   *kind;

	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1];

	/* PID and start time together name this process; a PID alone is reused. */
	values[0] = TimestampTzGetDatum(MyStartTimestamp);
	imgmod_bg_begin_tx("imgmod: claiming a job");
	if (SPI_execute_with_args(claim, 1, types, values, NULL, false, 1) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "imgmod: job claim failed");
	if (SPI_processed == 0)
	{
		imgmod_bg_commit_tx();
		return false;
	}
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	job->job_id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
	job->image_id = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
	job->version = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
	job->attempt = DatumGetInt32(SPI_getbinval(row, desc, 4, &isnull));
	kind = SPI_getvalue(row, desc, 5);
	job->kind = strcmp(kind, "purge") == 0 ? IMGMOD_JOB_PURGE : IMGMOD_JOB_RENDER;

	/* Every kind may touch Redis, whose keys carry the installation id. */
	if (SPI_execute("SELECT id::text FROM imgmod.installation", true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		imgmod_cache_set_namespace(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	imgmod_bg_commit_tx();
	return true;
}

/*
 * Jittered exponential backoff: base * 2^(attempt-1), capped at
 * imgmod.retry_max_delay, scaled by [0.5, 1) so that jobs failed by one
 * outage do not all come back at the same instant.
 */
static int64
backoff_ms(int attempt)
{
	double		delay = (double) imgmod_retry_base_delay_ms * pow(2.0, Min(Max(attempt - 1, 0), 30));

	delay = Min(delay, (double) imgmod_retry_max_delay_ms);
	return (int64) (delay * (0.5 + 0.5 * pg_prng_double(&pg_global_prng_state)));
}

/*
 * Record a failed attempt in a fresh transaction; the job is retried or
 * dead.  Only a render failure changes the image's status: a purge that
 * cannot reach the store does not make a served image "failed".  summary
 * goes to the image and the status event (subscribers, Kafka); details (a
 * server's own words, endpoints) only to the job row, which operators read.
 */
static void
record_failure(const imgmod_job *job, const char *summary, const char *details)
{
	Oid			types[6] = {INT8OID, INT4OID, TEXTOID, INT8OID, INT4OID, TEXTOID};
	Datum		values[6];
	bool		dead = job->attempt >= imgmod_max_attempts;

	imgmod_bg_begin_tx("imgmod: recording a failure");
	values[0] = Int64GetDatum(job->job_id);
	values[1] = Int32GetDatum(imgmod_max_attempts);
	values[2] = CStringGetTextDatum(details);
	values[3] = Int64GetDatum(backoff_ms(job->attempt));
	if (SPI_execute_with_args(
							  "UPDATE imgmod.jobs SET "
							  " state = CASE WHEN attempts >= $2 THEN 'dead' ELSE 'queued' END, "
							  " next_attempt_at = now() + make_interval(secs => $4 / 1000.0), "
							  " finished_at = CASE WHEN attempts >= $2 THEN now() END, "
							  " claimed_by = NULL, last_error = $3 "
							  "WHERE id = $1",
							  4, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "imgmod: could not record the job failure");

	values[0] = Int64GetDatum(job->image_id);
	values[1] = Int32GetDatum(job->attempt);
	values[2] = CStringGetTextDatum(summary);
	values[3] = CStringGetTextDatum(dead ? "dead" : "failed");
	values[4] = Int32GetDatum(job->version);
	values[5] = CStringGetTextDatum(kind_name(job->kind));
	{
		Oid			ftypes[6] = {INT8OID, INT4OID, TEXTOID, TEXTOID, INT4OID, TEXTOID};

		if (SPI_execute_with_args(
								  "WITH img AS (UPDATE imgmod.images SET status = $4, last_error = $3, updated_at = now() "
								  "             WHERE id = $1 AND status NOT IN ('ready', 'deleted') AND $6 = 'render' "
								  /* a newer version still on its way decides the image's status */
								  "               AND NOT EXISTS (SELECT 1 FROM imgmod.jobs o WHERE o.image_id = $1 "
								  "                   AND o.kind = 'render' AND o.version > $5 AND o.state IN ('queued', 'running')) "
								  "             RETURNING 1) "
								  "SELECT imgmod._emit($1, $5, $4, $6, $2, $3)",
								  6, ftypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "imgmod: could not emit the failure event");
	}
	imgmod_bg_commit_tx();
	ereport(dead ? WARNING : LOG,
			(errmsg("imgmod: %s of image %lld version %d, attempt %d, failed%s: %s",
					kind_name(job->kind), (long long) job->image_id, job->version, job->attempt,
					dead ? "; no attempts left, the job is dead" : "; it will be retried",
					details)));
}

/*
 * When even recording the failure failed (the events insert raised, a
 * trigger refused, the disk was full for a moment): put the job back in the
 * queue with nothing but the job row touched, so it is not left 'running'
 * under a worker that is alive and will never finish it.  Should this fail
 * too, the job is still claimed by this process, and the reclaim pass that
 * runs between jobs treats any job this process still holds as orphaned.
 */
static void
release_unrecorded_failure(const imgmod_job *job, const char *details, const char *why)
{
	Oid			types[4] = {INT8OID, TEXTOID, INT8OID, INT4OID};
	Datum		values[4];

	imgmod_bg_begin_tx("imgmod: releasing a failed job");
	values[0] = Int64GetDatum(job->job_id);
	values[1] = CStringGetTextDatum(psprintf("%s (and recording this failure failed: %s)", details, why));
	values[2] = Int64GetDatum(backoff_ms(job->attempt));
	values[3] = Int32GetDatum(imgmod_max_attempts);
	if (SPI_execute_with_args("UPDATE imgmod.jobs SET "
							  " state = CASE WHEN attempts >= $4 THEN 'dead' ELSE 'queued' END, "
							  " finished_at = CASE WHEN attempts >= $4 THEN now() END, "
							  " claimed_by = NULL, last_error = $2, "
							  " next_attempt_at = now() + make_interval(secs => $3 / 1000.0) "
							  "WHERE id = $1 AND state = 'running'",
							  4, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "imgmod: could not release job %lld", (long long) job->job_id);
	imgmod_bg_commit_tx();
	ereport(WARNING,
			(errmsg("imgmod: the failure of job %lld (image %lld) could not be recorded: %s; the job was released (re-queued, or dead after imgmod.max_attempts)",
					(long long) job->job_id, (long long) job->image_id, why)));
}

/* The error being handled, copied into context; its transaction aborted. */
static ErrorData *
take_error(MemoryContext context)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(context);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	return edata;
}

bool
imgmod_run_one_job(void)
{
	MemoryContext job_context = CurrentMemoryContext;
	imgmod_job	job;
	volatile bool failed = false;
	char	   *volatile summary = NULL;
	char	   *volatile details = NULL;

	memset(&job, 0, sizeof(job));
	if (!claim_job(&job))
		return false;

	PG_TRY();
	{
		if (job.kind == IMGMOD_JOB_PURGE)
			imgmod_purge_job(&job);
		else
			imgmod_render_job(&job);
	}
	PG_CATCH();
	{
		ErrorData  *edata = take_error(job_context);

		summary = pstrdup(edata->message);
		details = edata->detail ? psprintf("%s: %s", edata->message, edata->detail) : summary;
		FreeErrorData(edata);
		failed = true;
	}
	PG_END_TRY();

	if (failed)
	{
		PG_TRY();
		{
			record_failure(&job, summary, details);
		}
		PG_CATCH();
		{
			ErrorData  *edata = take_error(job_context);

			release_unrecorded_failure(&job, details, edata->message);
			FreeErrorData(edata);
		}
		PG_END_TRY();
	}
	return true;
}

bool
imgmod_reclaim_orphaned_jobs(void)
{
	Oid			types[2] = {INT4OID, TIMESTAMPTZOID};
	Datum		values[2];
	uint64		n;

	imgmod_bg_begin_tx("imgmod: reclaiming orphaned jobs");
	values[0] = Int32GetDatum(imgmod_max_attempts);
	values[1] = TimestampTzGetDatum(MyStartTimestamp);
	/* An attempt that killed its worker counts: a poison image ends dead. */
	if (SPI_execute_with_args(
							  "WITH orphan AS ("
							  " UPDATE imgmod.jobs j SET "
							  "  state = CASE WHEN j.attempts >= $1 THEN 'dead' ELSE 'queued' END, "
							  "  finished_at = CASE WHEN j.attempts >= $1 THEN now() END, "
							  "  next_attempt_at = now(), "
							  "  last_error = CASE WHEN j.claimed_by = pg_backend_pid() AND j.claimed_by_start = $2 "
							  "                    THEN 'worker ' || j.claimed_by || ' could not record the end of attempt ' || j.attempts "
							  "                    ELSE 'worker ' || j.claimed_by || ' exited during attempt ' || j.attempts END, "
							  "  claimed_by = NULL "
							  " WHERE j.state = 'running' AND ("
							  /* a worker runs one job at a time and calls this between jobs */
							  "  (j.claimed_by = pg_backend_pid() AND j.claimed_by_start = $2) "
							  "  OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = j.claimed_by "
							  "                 AND a.backend_start = j.claimed_by_start AND a.backend_type = 'imgmod worker')) "
							  " RETURNING j.image_id, j.version, j.kind, j.state, j.attempts, j.last_error), "
							  "img AS (UPDATE imgmod.images i SET status = CASE WHEN o.state = 'dead' THEN 'dead' ELSE 'received' END, "
							  "        last_error = o.last_error, updated_at = now() "
							  "   FROM orphan o WHERE i.id = o.image_id AND o.kind = 'render' AND i.status NOT IN ('ready', 'deleted') RETURNING 1) "
							  "SELECT imgmod._emit(o.image_id, o.version, CASE WHEN o.state = 'dead' THEN 'dead' ELSE 'retried' END, "
							  "                    o.kind, o.attempts, o.last_error) FROM orphan o",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: could not reclaim orphaned jobs");
	n = SPI_processed;
	imgmod_bg_commit_tx();
	if (n > 0)
		elog(LOG, "imgmod: re-queued %llu job(s) whose worker exited mid-job", (unsigned long long) n);
	return n > 0;
}
