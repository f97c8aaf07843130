/*
 * purge_job.c — delete a superseded version: its variants and compressed
 * master from the main store, its full-resolution master from the hi-res
 * store, its Redis keys, then (in one transaction) its variant rows, the
 * version marked purged, the job done and the purged event.
 *
 * The deletes run outside any transaction and are idempotent (an object
 * already gone counts as deleted), so a purge interrupted by a crash or a
 * store outage is simply run again.  The current version is never purged,
 * and a purge waits while a render of the same version is running.
 */
#include "imgmod.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "jobs.h"

/*
 * Every object the version can have, derived from the key scheme rather
 * than only read from its rows: a render attempt that failed or died after
 * some PUTs, or that stored its objects while this purge was planned, has
 * written keys no row names.  Deleting a key that was never written is a
 * harmless 204.
 */
typedef struct purge_plan
{
	char		hires_key[256];
	char		master_key[256];
	int			npresets;		/* presets the version had or could have had */
	char	  **presets;
} purge_plan;

/*
 * Plan the purge; false when a render of this version is still running:
 * its objects would land after the deletes.  The job is then put back
 * (without spending an attempt) to run once that render is over.
 */
static bool
read_plan(const imgmod_job *job, purge_plan *plan, MemoryContext keep)
{
	Oid			types[3] = {INT8OID, INT4OID, INT8OID};
	Datum		values[3];
	bool		isnull;

	values[0] = Int64GetDatum(job->image_id);
	values[1] = Int32GetDatum(job->version);
	values[2] = Int64GetDatum(job->job_id);
	imgmod_bg_begin_tx("imgmod: planning a purge");
	if (SPI_execute_with_args("SELECT coalesce(i.current_version = v.version, false), "
							  "       EXISTS (SELECT 1 FROM imgmod.jobs r WHERE r.image_id = v.image_id "
							  "               AND r.version = v.version AND r.kind = 'render' AND r.state = 'running') "
							  "FROM imgmod.image_versions v JOIN imgmod.images i ON i.id = v.image_id "
							  "WHERE v.image_id = $1 AND v.version = $2",
							  2, types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "imgmod: image %lld version %d has no row in imgmod.image_versions",
			 (long long) job->image_id, job->version);
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		elog(ERROR, "imgmod: refusing to purge version %d of image %lld: it is the current version",
			 job->version, (long long) job->image_id);
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
	{
		if (SPI_execute_with_args("UPDATE imgmod.jobs SET state = 'queued', attempts = attempts - 1, "
								  "claimed_by = NULL, next_attempt_at = now() + interval '1 s', "
								  "last_error = 'waiting for the render of this version to finish' WHERE id = $3",
								  3, types, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "imgmod: could not postpone purge job %lld", (long long) job->job_id);
		imgmod_bg_commit_tx();
		return false;
	}
	imgio_hires_key(plan->hires_key, sizeof(plan->hires_key), job->image_id, job->version);
	imgio_master_key(plan->master_key, sizeof(plan->master_key), job->image_id, job->version);

	if (SPI_execute_with_args("SELECT preset FROM imgmod.variants WHERE image_id = $1 AND version = $2 "
							  "UNION SELECT name FROM imgmod.presets ORDER BY 1",
							  2, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: could not list the variants to purge");
	plan->npresets = (int) SPI_processed;
	plan->presets = MemoryContextAllocZero(keep, sizeof(char *) * (plan->npresets + 1));
	for (int i = 0; i < plan->npresets; i++)
		plan->presets[i] = MemoryContextStrdup(keep, SPI_getvalue(SPI_tuptable->vals[i],
																   SPI_tuptable->tupdesc, 1));
	imgmod_bg_commit_tx();
	return true;
}

static void
delete_object(imgmod_store store, const char *key)
{
	char		errbuf[1024];

	if (!imgmod_store_delete(store, key, errbuf, sizeof(errbuf)))
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("imgmod: deleting %s from the %s store failed", key,
						imgmod_store_name(store)),
				 errdetail("%s", errbuf)));
}

static void
finish_purge(const imgmod_job *job, int main_deleted, int hires_deleted, int cache_deleted)
{
	Oid			types[6] = {INT8OID, INT4OID, INT4OID, INT4OID, INT4OID, INT8OID};
	Datum		values[6];

	values[0] = Int64GetDatum(job->image_id);
	values[1] = Int32GetDatum(job->version);
	values[2] = Int32GetDatum(main_deleted);
	values[3] = Int32GetDatum(hires_deleted);
	values[4] = Int32GetDatum(cache_deleted);
	values[5] = Int64GetDatum(job->job_id);
	imgmod_bg_begin_tx("imgmod: registering a purge");
	if (SPI_execute_with_args(
							  "WITH gone AS (DELETE FROM imgmod.variants WHERE image_id = $1 AND version = $2 RETURNING 1), "
							  "ver AS (UPDATE imgmod.image_versions SET status = 'purged', purged_at = now(), staged = NULL "
							  "        WHERE image_id = $1 AND version = $2 RETURNING 1), "
							  "job AS (UPDATE imgmod.jobs SET state = 'done', finished_at = now(), claimed_by = NULL "
							  "        WHERE id = $6 RETURNING 1) "
							  "SELECT imgmod._emit($1, $2, 'purged', 'purge', NULL, NULL, NULL, "
							  "       jsonb_build_object('deleted', jsonb_build_object('main', $3, 'hires', $4, 'redis', $5, "
							  "                          'variant_rows', (SELECT count(*) FROM gone)))) "
							  "FROM ver, job",
							  6, types, values, NULL, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "imgmod: could not register the purge of image %lld version %d",
			 (long long) job->image_id, job->version);
	imgmod_bg_commit_tx();
}

void
imgmod_purge_job(const imgmod_job *job)
{
	purge_plan	plan;
	char		key[256];
	int			main_deleted = 0;
	int			cache_deleted;

	memset(&plan, 0, sizeof(plan));
	if (!read_plan(job, &plan, CurrentMemoryContext))
		return;

	pgstat_report_activity(STATE_RUNNING, "imgmod: deleting superseded objects");
	for (int i = 0; i < plan.npresets; i++, main_deleted++)
	{
		imgio_variant_key(key, sizeof(key), job->image_id, job->version, plan.presets[i]);
		delete_object(IMGMOD_STORE_MAIN, key);
	}
	delete_object(IMGMOD_STORE_MAIN, plan.master_key);
	main_deleted++;
	delete_object(IMGMOD_STORE_HIRES, plan.hires_key);
	cache_deleted = imgmod_cache_drop_version(job->image_id, job->version, plan.npresets,
											  plan.presets);
	finish_purge(job, main_deleted, 1, cache_deleted);
}
