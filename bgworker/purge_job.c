/*
 * purge_job.c — delete a superseded version: its variants and compressed
 * master from the main store, its full-resolution master from the hi-res
 * store, its Redis keys, then (in one transaction) its variant rows, the
 * version marked purged, the job done and the purged event.
 *
 * The deletes run outside any transaction and are idempotent (an object
 * already gone counts as deleted), so a purge interrupted by a crash or a
 * store outage is simply run again.  The current version is never purged.
 */
#include "imgmod.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "jobs.h"

typedef struct purge_plan
{
	char	   *hires_key;		/* NULL when never stored */
	char	   *master_key;
	int			nvariants;
	char	  **variant_keys;
	char	  **variant_presets;
} purge_plan;

static char *
copy_value(MemoryContext keep, int row, int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return v ? MemoryContextStrdup(keep, v) : NULL;
}

static void
read_plan(const imgmod_job *job, purge_plan *plan, MemoryContext keep)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	char	   *current;

	values[0] = Int64GetDatum(job->image_id);
	values[1] = Int32GetDatum(job->version);
	imgmod_job_begin_tx("imgmod: planning a purge");
	if (SPI_execute_with_args("SELECT v.hires_key, v.master_key, i.current_version "
							  "FROM imgmod.image_versions v JOIN imgmod.images i ON i.id = v.image_id "
							  "WHERE v.image_id = $1 AND v.version = $2",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "imgmod: image %lld version %d has no row in imgmod.image_versions",
			 (long long) job->image_id, job->version);
	current = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	if (current != NULL && atoi(current) == job->version)
		elog(ERROR, "imgmod: refusing to purge version %d of image %lld: it is the current version",
			 job->version, (long long) job->image_id);
	plan->hires_key = copy_value(keep, 0, 1);
	plan->master_key = copy_value(keep, 0, 2);

	if (SPI_execute_with_args("SELECT object_key, preset FROM imgmod.variants "
							  "WHERE image_id = $1 AND version = $2 ORDER BY preset",
							  2, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: could not list the variants to purge");
	plan->nvariants = (int) SPI_processed;
	plan->variant_keys = MemoryContextAllocZero(keep, sizeof(char *) * (plan->nvariants + 1));
	plan->variant_presets = MemoryContextAllocZero(keep, sizeof(char *) * (plan->nvariants + 1));
	for (int i = 0; i < plan->nvariants; i++)
	{
		plan->variant_keys[i] = copy_value(keep, i, 1);
		plan->variant_presets[i] = copy_value(keep, i, 2);
	}
	imgmod_job_commit_tx();
}

static void
delete_object(imgmod_store store, const char *key)
{
	char		errbuf[1024];

	if (!imgmod_store_delete(store, key, errbuf, sizeof(errbuf)))
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("imgmod: deleting %s from the %s store failed: %s", key,
						imgmod_store_name(store), errbuf)));
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
	imgmod_job_begin_tx("imgmod: registering a purge");
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
	imgmod_job_commit_tx();
}

void
imgmod_purge_job(const imgmod_job *job)
{
	purge_plan	plan;
	int			main_deleted = 0;
	int			hires_deleted = 0;
	int			cache_deleted;

	memset(&plan, 0, sizeof(plan));
	read_plan(job, &plan, CurrentMemoryContext);

	pgstat_report_activity(STATE_RUNNING, "imgmod: deleting superseded objects");
	for (int i = 0; i < plan.nvariants; i++, main_deleted++)
		delete_object(IMGMOD_STORE_MAIN, plan.variant_keys[i]);
	if (plan.master_key != NULL)
	{
		delete_object(IMGMOD_STORE_MAIN, plan.master_key);
		main_deleted++;
	}
	if (plan.hires_key != NULL)
	{
		delete_object(IMGMOD_STORE_HIRES, plan.hires_key);
		hires_deleted++;
	}
	cache_deleted = imgmod_cache_drop_version(job->image_id, job->version, plan.nvariants,
											  plan.variant_presets);
	finish_purge(job, main_deleted, hires_deleted, cache_deleted);
}
