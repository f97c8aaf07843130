/*
 * render_job.c — one render job: masters and every preset of one image
 * version, stored, then registered.
 *
 * Three short transactions, none held open during image work:
 *   1. claim the job (FOR UPDATE SKIP LOCKED) and read its source bytes
 *      and the presets;
 *   2. (no transaction) decode once, render, PUT every object;
 *   3. insert the variant rows, flip the current version, finish the job
 *      and emit the status event, all or nothing.
 * A crash between 2 and 3 leaves the job "running" under a dead PID; it is
 * reclaimed and redone, and the second PUT of each key replaces the first.
 */
#include "imgmod.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "render_job.h"

typedef struct preset_row
{
	char	   *name;
	img_variant_spec spec;
} preset_row;

typedef struct claimed_job
{
	int64		job_id;
	int64		image_id;
	int32		version;
	int32		attempt;
	bool		has_staged;		/* the version's row still holds the normalised master */
	char	   *master_key;		/* compressed master, once stored */
	uint8_t    *source;			/* the bytes rendered from */
	size_t		source_len;
	bool		source_is_staged;	/* full-resolution source (Redis or staged row);
									 * false: re-render from the compressed master */
	const char *source_origin;	/* redis, staged or store */
	bool		store_masters;	/* masters not stored yet for this version */
	int			npresets;
	preset_row *presets;
} claimed_job;

typedef struct stored_object
{
	char		key[256];
	char		etag[40];
	size_t		bytes;
	uint32		width;
	uint32		height;
} stored_object;

static void
begin_tx(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
commit_tx(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

static char *
copy_text_column(int row, int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return v ? pstrdup(v) : NULL;
}

static int32
int_column(int row, int col, bool *isnull)
{
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull));
}

/* Transaction 1: claim.  Allocations land in the caller's (loop) context. */
static bool
claim_job(claimed_job *job, MemoryContext keep)
{
	static const char *claim =
		"UPDATE imgmod.jobs j SET state = 'running', attempts = j.attempts + 1, "
		"       claimed_by = pg_backend_pid(), claimed_at = now() "
		" WHERE j.id = (SELECT id FROM imgmod.jobs WHERE state = 'queued' AND next_attempt_at <= now() "
		"               ORDER BY next_attempt_at, id FOR UPDATE SKIP LOCKED LIMIT 1) "
		"RETURNING j.id, j.image_id, j.version, j.attempts";
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	bool		isnull;
	MemoryContext old;

	begin_tx("imgmod: claiming a job");
	if (SPI_execute(claim, false, 1) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "imgmod: job claim failed");
	if (SPI_processed == 0)
	{
		commit_tx();
		return false;
	}
	job->job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	job->image_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	job->version = int_column(0, 3, &isnull);
	job->attempt = int_column(0, 4, &isnull);

	values[0] = Int64GetDatum(job->image_id);
	values[1] = Int32GetDatum(job->version);
	if (SPI_execute_with_args("UPDATE imgmod.images SET status = 'processing', updated_at = now() "
							  "WHERE id = $1 AND status <> 'processing'",
							  1, types, values, NULL, false, 0) < 0)
		elog(ERROR, "imgmod: could not mark image processing");

	/* Only where the source is; its bytes are read after this commits. */
	if (SPI_execute_with_args("SELECT staged IS NOT NULL, master_key FROM imgmod.image_versions "
							  "WHERE image_id = $1 AND version = $2",
							  2, types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "imgmod: image %lld version %d has no row in imgmod.image_versions",
			 (long long) job->image_id, job->version);
	job->has_staged = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	old = MemoryContextSwitchTo(keep);
	job->master_key = copy_text_column(0, 2);
	MemoryContextSwitchTo(old);

	if (SPI_execute("SELECT id::text FROM imgmod.installation", true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		imgmod_cache_set_namespace(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));

	if (SPI_execute("SELECT name, width, height, fit, quality, allow_upscale FROM imgmod.presets ORDER BY name",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: could not read imgmod.presets");
	old = MemoryContextSwitchTo(keep);
	job->npresets = (int) SPI_processed;
	job->presets = palloc0(sizeof(preset_row) * (job->npresets + 1));
	MemoryContextSwitchTo(old);
	for (int i = 0; i < job->npresets; i++)
	{
		preset_row *p = &job->presets[i];
		char	   *fit;
		int32		v;

		old = MemoryContextSwitchTo(keep);
		p->name = copy_text_column(i, 1);
		fit = copy_text_column(i, 4);
		MemoryContextSwitchTo(old);
		v = int_column(i, 2, &isnull);
		p->spec.geometry.box_width = isnull ? 0 : (uint32) v;
		v = int_column(i, 3, &isnull);
		p->spec.geometry.box_height = isnull ? 0 : (uint32) v;
		if (!img_fit_from_name(fit, &p->spec.geometry.fit))
			p->spec.geometry.fit = IMG_FIT_CONTAIN;
		p->spec.quality = int_column(i, 5, &isnull);
		p->spec.geometry.allow_upscale =
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 6, &isnull));
	}
	commit_tx();
	return true;
}

/*
 * The source, in the order that costs least: Redis (set by an earlier
 * render of this version), the staged row, and only for a re-render after
 * the staged bytes were cleared, the compressed master in the main store.
 */
static void
load_source(claimed_job *job)
{
	char		key[256];
	uint8_t    *cached;
	size_t		len = 0;

	imgmod_cache_key(key, sizeof(key), job->image_id, job->version, "source");
	cached = imgmod_cache_get(key, &len);
	if (cached != NULL)
	{
		job->source = palloc(len);
		memcpy(job->source, cached, len);
		free(cached);
		job->source_len = len;
		job->source_is_staged = true;
		job->source_origin = "redis";
		return;
	}
	if (job->has_staged)
	{
		Oid			types[2] = {INT8OID, INT4OID};
		Datum		values[2];
		bool		isnull;
		MemoryContext keep = CurrentMemoryContext;

		values[0] = Int64GetDatum(job->image_id);
		values[1] = Int32GetDatum(job->version);
		begin_tx("imgmod: reading the staged master");
		if (SPI_execute_with_args("SELECT staged FROM imgmod.image_versions WHERE image_id = $1 AND version = $2",
								  2, types, values, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		{
			Datum		staged = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
			{
				bytea	   *b = DatumGetByteaPP(staged);
				MemoryContext old = MemoryContextSwitchTo(keep);

				job->source_len = VARSIZE_ANY_EXHDR(b);
				job->source = palloc(job->source_len);
				memcpy(job->source, VARDATA_ANY(b), job->source_len);
				MemoryContextSwitchTo(old);
				job->source_is_staged = true;
				job->source_origin = "staged";
			}
		}
		commit_tx();
		if (job->source != NULL)
			return;
	}
	if (job->master_key == NULL)
		elog(ERROR, "imgmod: image %lld version %d has neither staged bytes nor a stored master",
			 (long long) job->image_id, job->version);
	{
		char		errbuf[1024];
		bytea	   *b = imgmod_store_get(IMGMOD_STORE_MAIN, job->master_key, errbuf, sizeof(errbuf));

		if (b == NULL)
			elog(ERROR, "imgmod: cannot re-render image %lld: %s", (long long) job->image_id, errbuf);
		job->source_len = VARSIZE_ANY_EXHDR(b);
		job->source = (uint8_t *) VARDATA_ANY(b);
		job->source_is_staged = false;
		job->source_origin = "store";
	}
}

/*
 * Warm Redis with the normalised source (for later re-renders) and every
 * variant (for the origin), all under version-bearing keys.
 */
static void
warm_cache(claimed_job *job, img_variant_result *results, int first_preset)
{
	int			n = 0;
	const char **keys;
	const uint8_t **values;
	size_t	   *lens;

	if (!imgmod_cache_enabled())
		return;
	keys = palloc(sizeof(char *) * (job->npresets + 1));
	values = palloc(sizeof(uint8_t *) * (job->npresets + 1));
	lens = palloc(sizeof(size_t) * (job->npresets + 1));
	/* The source only when it did not come from Redis in the first place. */
	if (job->source_is_staged && strcmp(job->source_origin, "redis") != 0)
	{
		char	   *k = palloc(256);

		imgmod_cache_key(k, 256, job->image_id, job->version, "source");
		keys[n] = k;
		values[n] = job->source;
		lens[n++] = job->source_len;
	}
	for (int i = 0; i < job->npresets; i++)
	{
		char	   *k = palloc(256);

		imgmod_cache_key(k, 256, job->image_id, job->version, job->presets[i].name);
		keys[n] = k;
		values[n] = results[first_preset + i].jpeg.data;
		lens[n++] = results[first_preset + i].jpeg.len;
	}
	pgstat_report_activity(STATE_RUNNING, "imgmod: warming redis");
	(void) imgmod_cache_put_many(n, keys, values, lens);
}

/*
 * Keys are versioned, so an object never changes once written: browsers
 * and the CDN may keep it for a year.
 */
#define IMMUTABLE_CACHE_CONTROL "public, max-age=31536000, immutable"

static void
put_object(imgmod_store store, const char *key, const uint8_t *data, size_t len,
		   stored_object *out)
{
	char		errbuf[1024];

	if (!imgmod_store_put(store, key, data, len, "image/jpeg", IMMUTABLE_CACHE_CONTROL,
						  errbuf, sizeof(errbuf)))
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("imgmod: storing %s in the %s store failed: %s", key,
						imgmod_store_name(store), errbuf)));
	strlcpy(out->key, key, sizeof(out->key));
	imgmod_md5_hex(data, len, out->etag);
	out->bytes = len;
}

/* Step 2: render every object and store it.  No transaction is open. */
static void
render_and_store(claimed_job *job, stored_object *hires, stored_object *master,
				 stored_object *variants)
{
	img_limits	limits;
	uint8_t		background[3];
	img_variant_spec *specs;
	img_variant_result *results;
	img_error	err;
	img_status	st;
	int			nspecs;
	int			first_preset;
	char		key[256];

	imgmod_current_limits(&limits);
	imgmod_background_rgb(background);

	/*
	 * Each object is written once per version: the masters only while they
	 * are not stored yet (a re-render after that reads a full-resolution
	 * source from Redis, but must not PUT the masters again).  The
	 * compressed master is rendered from the same decode as the presets.
	 */
	job->store_masters = job->source_is_staged && job->master_key == NULL;
	first_preset = job->store_masters ? 1 : 0;
	nspecs = job->npresets + first_preset;
	specs = palloc0(sizeof(img_variant_spec) * (nspecs + 1));
	results = palloc0(sizeof(img_variant_result) * (nspecs + 1));
	if (job->store_masters)
	{
		specs[0].geometry.box_width = (uint32) imgmod_compressed_master_max_side;
		specs[0].geometry.box_height = (uint32) imgmod_compressed_master_max_side;
		specs[0].geometry.fit = IMG_FIT_CONTAIN;
		specs[0].quality = imgmod_compressed_master_quality;
	}
	for (int i = 0; i < job->npresets; i++)
		specs[first_preset + i] = job->presets[i].spec;

	pgstat_report_activity(STATE_RUNNING, "imgmod: rendering");
	memset(&err, 0, sizeof(err));
	st = img_render_variants(job->source, job->source_len, &limits, specs, (size_t) nspecs,
							 background, results, &err);
	if (st != IMG_OK)
		ereport(ERROR,
				(errcode(imgmod_sqlstate_for(st)),
				 errmsg("imgmod: rendering image %lld version %d failed (%s): %s",
						(long long) job->image_id, job->version, img_status_name(st), err.message)));

	pgstat_report_activity(STATE_RUNNING, "imgmod: storing");
	if (job->store_masters)
	{
		imgmod_hires_key(key, sizeof(key), job->image_id, job->version);
		put_object(IMGMOD_STORE_HIRES, key, job->source, job->source_len, hires);
		imgmod_master_key(key, sizeof(key), job->image_id, job->version);
		put_object(IMGMOD_STORE_MAIN, key, results[0].jpeg.data, results[0].jpeg.len, master);
	}
	for (int i = 0; i < job->npresets; i++)
	{
		img_variant_result *r = &results[first_preset + i];

		imgmod_variant_key(key, sizeof(key), job->image_id, job->version, job->presets[i].name);
		put_object(IMGMOD_STORE_MAIN, key, r->jpeg.data, r->jpeg.len, &variants[i]);
		variants[i].width = r->width;
		variants[i].height = r->height;
	}
	warm_cache(job, results, first_preset);
	img_variant_results_free(results, (size_t) nspecs);
}

/* Transaction 3: register everything at once. */
static void
register_result(claimed_job *job, stored_object *hires, stored_object *master,
				stored_object *variants)
{
	static const char *insert_variant =
		"INSERT INTO imgmod.variants (image_id, version, preset, width, height, bytes, object_key, etag) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
		"ON CONFLICT (image_id, version, preset) DO UPDATE SET width = EXCLUDED.width, "
		"height = EXCLUDED.height, bytes = EXCLUDED.bytes, object_key = EXCLUDED.object_key, "
		"etag = EXCLUDED.etag, created_at = now()";
	Oid			vtypes[8] = {INT8OID, INT4OID, TEXTOID, INT4OID, INT4OID, INT4OID, TEXTOID, TEXTOID};
	Oid			types[7] = {INT8OID, INT4OID, TEXTOID, INT4OID, TEXTOID, INT4OID, INT8OID};
	Datum		values[8];
	char		nulls[8];
	StringInfoData json;
	char		etag[48];

	begin_tx("imgmod: registering variants");
	initStringInfo(&json);
	appendStringInfoChar(&json, '[');
	for (int i = 0; i < job->npresets; i++)
	{
		stored_object *v = &variants[i];

		snprintf(etag, sizeof(etag), "\"%s\"", v->etag);
		values[0] = Int64GetDatum(job->image_id);
		values[1] = Int32GetDatum(job->version);
		values[2] = CStringGetTextDatum(job->presets[i].name);
		values[3] = Int32GetDatum((int32) v->width);
		values[4] = Int32GetDatum((int32) v->height);
		values[5] = Int32GetDatum((int32) v->bytes);
		values[6] = CStringGetTextDatum(v->key);
		values[7] = CStringGetTextDatum(etag);
		if (SPI_execute_with_args(insert_variant, 8, vtypes, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "imgmod: could not insert variant %s", job->presets[i].name);
		if (i > 0)
			appendStringInfoString(&json, ", ");
		appendStringInfoString(&json, "{\"preset\": ");
		escape_json(&json, job->presets[i].name);
		appendStringInfo(&json, ", \"width\": %u, \"height\": %u, \"bytes\": %zu, \"key\": ",
						 v->width, v->height, v->bytes);
		escape_json(&json, v->key);
		appendStringInfoChar(&json, '}');
	}
	appendStringInfoChar(&json, ']');

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(job->image_id);
	values[1] = Int32GetDatum(job->version);
	values[2] = job->store_masters ? CStringGetTextDatum(hires->key) : (Datum) 0;
	nulls[2] = job->store_masters ? ' ' : 'n';
	values[3] = Int32GetDatum((int32) hires->bytes);
	nulls[3] = nulls[2];
	values[4] = job->store_masters ? CStringGetTextDatum(master->key) : (Datum) 0;
	nulls[4] = nulls[2];
	values[5] = Int32GetDatum((int32) master->bytes);
	nulls[5] = nulls[2];
	values[6] = Int64GetDatum(job->job_id);
	if (SPI_execute_with_args(
							  "WITH ver AS ("
							  "  UPDATE imgmod.image_versions SET status = 'ready', staged = NULL, stored_at = now(), "
							  "         hires_key = coalesce($3, hires_key), hires_bytes = coalesce($4, hires_bytes), "
							  "         master_key = coalesce($5, master_key), master_bytes = coalesce($6, master_bytes) "
							  "   WHERE image_id = $1 AND version = $2 RETURNING 1), "
							  "img AS ("
							  "  UPDATE imgmod.images SET status = 'ready', "
							  "         current_version = greatest(coalesce(current_version, 0), $2), "
							  "         ready_at = now(), updated_at = now(), last_error = NULL "
							  "   WHERE id = $1 RETURNING 1), "
							  "job AS ("
							  "  UPDATE imgmod.jobs SET state = 'done', finished_at = now(), claimed_by = NULL "
							  "   WHERE id = $7 RETURNING 1) "
							  "SELECT (SELECT count(*) FROM ver), (SELECT count(*) FROM img), (SELECT count(*) FROM job)",
							  7, types, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: could not mark image %lld ready", (long long) job->image_id);

	{
		/*
		 * The events of this step, in order: masters stored, each preset
		 * rendered, version ready.  They commit (and are notified) together
		 * with the rows they describe.
		 */
		Oid			etypes[6] = {INT8OID, INT4OID, INT4OID, TEXTOID, TEXTOID, BOOLOID};
		Datum		evalues[6];
		StringInfoData masters;

		initStringInfo(&masters);
		appendStringInfoString(&masters, "[{\"store\": \"hires\", \"key\": ");
		escape_json(&masters, hires->key);
		appendStringInfo(&masters, ", \"bytes\": %zu}, {\"store\": \"main\", \"key\": ", hires->bytes);
		escape_json(&masters, master->key);
		appendStringInfo(&masters, ", \"bytes\": %zu}]", master->bytes);

		evalues[0] = Int64GetDatum(job->image_id);
		evalues[1] = Int32GetDatum(job->version);
		evalues[2] = Int32GetDatum(job->attempt);
		evalues[3] = CStringGetTextDatum(json.data);
		evalues[4] = CStringGetTextDatum(masters.data);
		evalues[5] = BoolGetDatum(job->store_masters);
		if (SPI_execute_with_args("SELECT imgmod._emit($1, $2, 'stored', 'store', $3, NULL, $5::jsonb) WHERE $6",
								  6, etypes, evalues, NULL, false, 0) != SPI_OK_SELECT ||
			SPI_execute_with_args("SELECT imgmod._emit($1, $2, 'rendered', 'render', $3, NULL, jsonb_build_array(v)) "
								  "FROM jsonb_array_elements($4::jsonb) WITH ORDINALITY AS e(v, n) ORDER BY n",
								  4, etypes, evalues, NULL, false, 0) != SPI_OK_SELECT ||
			SPI_execute_with_args("SELECT imgmod._emit($1, $2, 'ready', 'render', $3, NULL, $4::jsonb)",
								  4, etypes, evalues, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "imgmod: could not emit the status events");
	}
	commit_tx();
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

/* Record a failed attempt in a fresh transaction; the job is retried or dead. */
static void
record_failure(claimed_job *job, const char *message)
{
	Oid			types[5] = {INT8OID, INT4OID, TEXTOID, INT8OID, INT4OID};
	Datum		values[5];
	bool		dead = job->attempt >= imgmod_max_attempts;

	begin_tx("imgmod: recording a failure");
	values[0] = Int64GetDatum(job->job_id);
	values[1] = Int32GetDatum(imgmod_max_attempts);
	values[2] = CStringGetTextDatum(message);
	values[3] = Int64GetDatum(backoff_ms(job->attempt));
	values[4] = Int32GetDatum(job->version);
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
	values[3] = CStringGetTextDatum(dead ? "dead" : "failed");
	{
		Oid			ftypes[5] = {INT8OID, INT4OID, TEXTOID, TEXTOID, INT4OID};

		if (SPI_execute_with_args(
								  "WITH img AS (UPDATE imgmod.images SET status = $4, last_error = $3, updated_at = now() "
								  "             WHERE id = $1 AND status <> 'ready' RETURNING 1) "
								  "SELECT imgmod._emit($1, $5, $4, 'render', $2, $3)",
								  5, ftypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "imgmod: could not emit the failure event");
	}
	commit_tx();
	ereport(dead ? WARNING : LOG,
			(errmsg("imgmod: image %lld version %d attempt %d failed%s: %s",
					(long long) job->image_id, job->version, job->attempt,
					dead ? "; no attempts left, the job is dead" : "; it will be retried",
					message)));
}

bool
imgmod_run_one_job(void)
{
	MemoryContext job_context = CurrentMemoryContext;
	claimed_job job;
	stored_object hires;
	stored_object master;
	stored_object *variants;
	volatile bool failed = false;
	char	   *volatile message = NULL;

	memset(&job, 0, sizeof(job));
	memset(&hires, 0, sizeof(hires));
	memset(&master, 0, sizeof(master));
	if (!claim_job(&job, job_context))
		return false;
	variants = palloc0(sizeof(stored_object) * (job.npresets + 1));

	PG_TRY();
	{
		load_source(&job);
		render_and_store(&job, &hires, &master, variants);
		register_result(&job, &hires, &master, variants);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(job_context);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		message = pstrdup(edata->message);
		FreeErrorData(edata);
		failed = true;
	}
	PG_END_TRY();

	if (failed)
		record_failure(&job, message);
	return true;
}

bool
imgmod_reclaim_orphaned_jobs(void)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	uint64		n;

	begin_tx("imgmod: reclaiming orphaned jobs");
	values[0] = Int32GetDatum(imgmod_max_attempts);
	/* An attempt that killed its worker counts: a poison image ends dead. */
	if (SPI_execute_with_args(
							  "WITH orphan AS ("
							  " UPDATE imgmod.jobs j SET "
							  "  state = CASE WHEN j.attempts >= $1 THEN 'dead' ELSE 'queued' END, "
							  "  finished_at = CASE WHEN j.attempts >= $1 THEN now() END, "
							  "  next_attempt_at = now(), "
							  "  last_error = 'worker ' || j.claimed_by || ' exited during attempt ' || j.attempts, "
							  "  claimed_by = NULL "
							  " WHERE j.state = 'running' AND NOT EXISTS ("
							  "  SELECT 1 FROM pg_stat_activity a WHERE a.pid = j.claimed_by AND a.backend_type = 'imgmod worker') "
							  " RETURNING j.image_id, j.version, j.state, j.attempts, j.last_error), "
							  "img AS (UPDATE imgmod.images i SET status = CASE WHEN o.state = 'dead' THEN 'dead' ELSE 'received' END, "
							  "        last_error = o.last_error, updated_at = now() "
							  "   FROM orphan o WHERE i.id = o.image_id AND i.status <> 'ready' RETURNING 1) "
							  "SELECT imgmod._emit(o.image_id, o.version, CASE WHEN o.state = 'dead' THEN 'dead' ELSE 'retried' END, "
							  "                    'render', o.attempts, o.last_error) FROM orphan o",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: could not reclaim orphaned jobs");
	n = SPI_processed;
	commit_tx();
	if (n > 0)
		elog(LOG, "imgmod: re-queued %llu job(s) whose worker exited mid-job", (unsigned long long) n);
	return n > 0;
}
