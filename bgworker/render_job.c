/*
 * render_job.c — one render job: masters and every preset of one image
 * version, stored, then registered.
 *
 * Short transactions, none held open during image work:
 *   1. (after job_queue.c claimed the job) mark the image processing, read
 *      where the source is and the presets;
 *   2. (no transaction) decode once, render, PUT every object;
 *   3. insert the variant rows, flip the current version, supersede the
 *      version it replaces, finish the job and emit the status events, all
 *      or nothing.
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
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "jobs.h"

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
	int32		superseded;		/* version made obsolete by this one, or 0 */
	char	  **superseded_presets;	/* its variants, for the Redis keys */
	int			nsuperseded_presets;
	bool		has_staged;		/* the version's row still holds the normalised master */
	char	   *master_key;		/* compressed master, once stored */
	char		master_sha256[65];	/* digest of the full-resolution master */
	int32		master_bytes;	/* its size as recorded */
	uint8_t    *source;			/* the bytes rendered from */
	size_t		source_len;
	bool		source_is_staged;	/* full-resolution source (Redis or staged row);
									 * false: re-render from the compressed master */
	const char *source_origin;	/* redis, staged or store */
	MemoryContext job_context;	/* where results that outlive a transaction go */
	/* edit and revert: the master is made from another version's */
	char	   *origin;			/* upload, replace, edit or revert */
	bool		derive_master;	/* an edit or revert whose master is not stored yet */
	int32		base_version;
	char		base_sha256[65];
	char	   *base_hires_key;
	int32		base_hires_bytes;
	bool		base_has_staged;
	char	   *ops;			/* edit: the ops, as JSON text */
	img_master_method derived_method;	/* of the master made here */
	uint32		derived_width;
	uint32		derived_height;
	bool		has_focus;		/* cover presets crop around (focus_x, focus_y) */
	double		focus_x;
	double		focus_y;
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

/*
 * Transaction 1.  Allocations land in the caller's (job) context.  Returns
 * false when a newer version is already current: this one is superseded
 * without being rendered, and the job is done.
 */
static bool
prepare_render(claimed_job *job, MemoryContext keep)
{
	Oid			types[3] = {INT8OID, INT4OID, INT4OID};
	Datum		values[3];
	bool		isnull;
	MemoryContext old;

	imgmod_bg_begin_tx("imgmod: preparing a render");
	values[0] = Int64GetDatum(job->image_id);
	values[1] = Int32GetDatum(job->version);

	/* Only where the source is; its bytes are read after this commits. */
	if (SPI_execute_with_args("SELECT v.staged IS NOT NULL, v.master_key, "
							  "       coalesce(i.current_version, 0) > v.version OR i.status = 'deleted', "
							  "       i.status = 'deleted', v.master_sha256, coalesce(v.master_bytes, 0), "
							  "       v.origin, v.base_version, v.ops::pg_catalog.text, b.master_sha256, b.hires_key, "
							  "       coalesce(b.hires_bytes, 0), b.staged IS NOT NULL, v.focus_x, v.focus_y, "
							  "       v.width, v.height "
							  "FROM imgmod.image_versions v JOIN imgmod.images i ON i.id = v.image_id "
							  "LEFT JOIN imgmod.image_versions b ON b.image_id = v.image_id AND b.version = v.base_version "
							  "WHERE v.image_id = $1 AND v.version = $2 FOR UPDATE OF i",
							  2, types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "imgmod: image %lld version %d has no row in imgmod.image_versions",
			 (long long) job->image_id, job->version);
	job->has_staged = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	old = MemoryContextSwitchTo(keep);
	job->master_key = copy_text_column(0, 2);
	job->origin = copy_text_column(0, 7);
	job->ops = copy_text_column(0, 9);
	job->base_hires_key = copy_text_column(0, 11);
	MemoryContextSwitchTo(old);
	{
		char	   *sha = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5);
		char	   *base_sha = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 10);

		strlcpy(job->master_sha256, sha ? sha : "", sizeof(job->master_sha256));
		strlcpy(job->base_sha256, base_sha ? base_sha : "", sizeof(job->base_sha256));
	}
	job->master_bytes = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6, &isnull));
	job->base_version = int_column(0, 8, &isnull);
	job->base_hires_bytes = int_column(0, 12, &isnull);
	job->base_has_staged = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 13, &isnull));
	job->focus_x = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 14, &isnull));
	job->has_focus = !isnull;
	job->focus_y = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 15, &isnull));
	job->has_focus = job->has_focus && !isnull;
	job->derived_width = (uint32) int_column(0, 16, &isnull);
	job->derived_height = (uint32) int_column(0, 17, &isnull);
	/* an edit or revert whose masters are not stored yet makes them from its base */
	job->derive_master = (strcmp(job->origin, "edit") == 0 || strcmp(job->origin, "revert") == 0) &&
		job->master_key == NULL;
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull)))
	{
		bool		deleted = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
		bool		superseded_now;

		values[2] = Int32GetDatum(deleted ? 0 : imgmod_superseded_retention_s);
		if (SPI_execute_with_args("SELECT imgmod._supersede($1, $2, make_interval(secs => $3))",
								  3, types, values, NULL, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "imgmod: could not supersede version %d", job->version);
		superseded_now = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		/*
		 * An earlier attempt may have PUT objects before it failed or its
		 * worker died, after the version's purge had already run: purge
		 * once more.
		 */
		if (!superseded_now && job->attempt > 1 &&
			SPI_execute_with_args("INSERT INTO imgmod.jobs (image_id, version, kind, next_attempt_at) "
								  "VALUES ($1, $2, 'purge', now() + make_interval(secs => $3))",
								  3, types, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "imgmod: could not queue a purge of version %d", job->version);
		values[0] = Int64GetDatum(job->job_id);
		if (SPI_execute_with_args("UPDATE imgmod.jobs SET state = 'done', finished_at = now(), claimed_by = NULL, "
								  "last_error = 'not rendered: a newer version was already current, or the image was deleted' WHERE id = $1",
								  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "imgmod: could not finish job %lld", (long long) job->job_id);
		imgmod_bg_commit_tx();
		return false;
	}
	if (SPI_execute_with_args("UPDATE imgmod.images SET status = 'processing', updated_at = now() "
							  "WHERE id = $1 AND status <> 'processing'",
							  1, types, values, NULL, false, 0) < 0)
		elog(ERROR, "imgmod: could not mark image processing");

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
		p->spec.name = p->name;
		p->spec.geometry.allow_upscale =
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 6, &isnull));
	}
	imgmod_bg_commit_tx();
	return true;
}

/* A version's staged master, in the caller's memory; NULL once it was cleared. */
static bytea *
read_staged(int64 image_id, int32 version)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	bool		isnull;
	MemoryContext keep = CurrentMemoryContext;
	bytea	   *b = NULL;

	values[0] = Int64GetDatum(image_id);
	values[1] = Int32GetDatum(version);
	imgmod_bg_begin_tx("imgmod: reading a staged master");
	if (SPI_execute_with_args("SELECT staged FROM imgmod.image_versions WHERE image_id = $1 AND version = $2",
							  2, types, values, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		Datum		staged = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			/* fetched from TOAST straight into the caller's memory: one copy */
			MemoryContext old = MemoryContextSwitchTo(keep);

			b = DatumGetByteaPCopy(staged);
			MemoryContextSwitchTo(old);
		}
	}
	imgmod_bg_commit_tx();
	return b;
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
	bytea	   *cached;

	/*
	 * Whatever sits under the key is used only if it is this version's
	 * master byte for byte: it becomes the hi-res original and every
	 * variant.
	 */
	imgmod_cache_key(key, sizeof(key), job->image_id, job->version, "source");
	cached = imgmod_cache_get_verified(key, IMGIO_DIGEST_SHA256, job->master_sha256);
	if (cached != NULL)
	{
		job->source = (uint8_t *) VARDATA(cached);
		job->source_len = VARSIZE(cached) - VARHDRSZ;
		job->source_is_staged = true;
		job->source_origin = "redis";
		return;
	}
	if (job->has_staged)
	{
		bytea	   *b = read_staged(job->image_id, job->version);

		if (b != NULL)
		{
			job->source_len = VARSIZE(b) - VARHDRSZ;
			job->source = (uint8_t *) VARDATA(b);
			job->source_is_staged = true;
			job->source_origin = "staged";
			return;
		}
	}
	if (job->master_key == NULL)
		elog(ERROR, "imgmod: image %lld version %d has neither staged bytes nor a stored master",
			 (long long) job->image_id, job->version);
	{
		char		errbuf[1024];
		bytea	   *b = imgmod_store_get(IMGMOD_STORE_MAIN, job->master_key, job->master_bytes,
										 errbuf, sizeof(errbuf));

		if (b == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("imgmod: cannot re-render image %lld: its compressed master could not be read from the main store",
							(long long) job->image_id),
					 errdetail("%s", errbuf)));
		job->source_len = VARSIZE_ANY_EXHDR(b);
		job->source = (uint8_t *) VARDATA_ANY(b);
		job->source_is_staged = false;
		job->source_origin = "store";
	}
}

/*
 * A version's full-resolution master, for an edit or a revert to start
 * from: Redis (verified against the version's digest), else its staged row
 * (it is not stored yet), else one GET from the hi-res store, verified too.
 * Never a variant or the compressed master: edits never compound loss.
 */
static void
load_version_master(claimed_job *job, int32 version, const char *sha256, const char *hires_key,
					int32 hires_bytes, bool has_staged, uint8_t **data, size_t *len)
{
	char		key[256];
	char		errbuf[1024];
	char		sha[65];
	const char *from = "redis";
	bytea	   *b;

	imgmod_cache_key(key, sizeof(key), job->image_id, version, "source");
	b = imgmod_cache_get_verified(key, IMGIO_DIGEST_SHA256, sha256);
	if (b == NULL && has_staged)
	{
		b = read_staged(job->image_id, version);
		from = "staged row";
	}
	if (b == NULL)
	{
		if (hires_key == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("imgmod: the master of version %d of image %lld is not stored yet",
							version, (long long) job->image_id),
					 errhint("It is tried again with backoff.")));
		b = imgmod_store_get(IMGMOD_STORE_HIRES, hires_key, hires_bytes, errbuf, sizeof(errbuf));
		if (b == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("imgmod: the master of version %d of image %lld could not be read from the hi-res store",
							version, (long long) job->image_id),
					 errdetail("%s", errbuf)));
		from = "hi-res store";
	}
	*data = (uint8_t *) VARDATA_ANY(b);
	*len = VARSIZE_ANY_EXHDR(b);
	if (strcmp(from, "redis") != 0)
	{
		imgmod_sha256_hex(*data, *len, sha);
		if (strcmp(sha, sha256) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("imgmod: the master of version %d of image %lld read from the %s is not the one recorded",
							version, (long long) job->image_id, from),
					 errdetail("SHA-256 %s, recorded %s.", sha, sha256)));
	}
	ereport(DEBUG1, (errmsg("imgmod: image %lld version %d made from the master of version %d (%s)",
							(long long) job->image_id, job->version, version, from)));
}

/*
 * Make an edit's master -- its ops, after those of the edits it was made
 * on, applied at once to the oldest master the chain still has
 * (imgmod._edit_source) -- or a revert's: its base's master itself.  It
 * becomes the job's source, rendered and stored like an upload's.
 */
static void
derive_master(claimed_job *job)
{
	uint8_t    *base;
	size_t		base_len;

	if (strcmp(job->origin, "revert") == 0)
	{
		if (job->base_sha256[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("imgmod: version %d of image %lld reverts to version %d, whose master is gone",
							job->version, (long long) job->image_id, job->base_version)));
		load_version_master(job, job->base_version, job->base_sha256, job->base_hires_key,
							job->base_hires_bytes, job->base_has_staged, &base, &base_len);
		job->source = base;
		job->source_len = base_len;
		job->source_origin = "revert";
	}
	else
	{
		Datum		ops_datum = DirectFunctionCall1(jsonb_in, CStringGetDatum(job->ops));
		img_edit_op *own;
		int			nown = imgmod_parse_edit_ops("imgmod edit", DatumGetJsonbP(ops_datum), IMGMOD_EDIT_MAX_OPS, &own);
		imgmod_edit_source source;
		img_edit_op *chain;
		int			prefix;
		img_limits	limits;
		img_edit_result result;
		img_error	err;
		img_status	st;
		bool		found;

		imgmod_bg_begin_tx("imgmod: finding an edit's source");
		found = imgmod_read_edit_source(job->image_id, job->base_version, nown, job->job_context, &source);
		imgmod_bg_commit_tx();
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("imgmod: version %d of image %lld is an edit of version %d, whose chain has no master left",
							job->version, (long long) job->image_id, job->base_version)));
		load_version_master(job, source.version, source.master_sha256, source.hires_key, source.hires_bytes,
							source.has_staged, &base, &base_len);
		prefix = imgmod_edit_chain("imgmod edit", &source, own, nown, &chain);
		imgmod_current_limits(&limits);
		memset(&err, 0, sizeof(err));
		memset(&result, 0, sizeof(result));
		pgstat_report_activity(STATE_RUNNING, "imgmod: editing");
		st = img_edit_apply(base, base_len, &limits, chain, (size_t) (prefix + nown), imgmod_master_quality,
							&result, &err);
		imgmod_core_interrupted(st);
		if (st != IMG_OK)
			ereport(ERROR,
					(errcode(imgmod_sqlstate_for(st)),
					 errmsg("imgmod: editing image %lld into version %d failed (%s): %s",
							(long long) job->image_id, job->version, img_status_name(st), err.message)));
		/* in the job's memory, like every other source */
		job->source = palloc(result.master.len);
		memcpy(job->source, result.master.data, result.master.len);
		job->source_len = result.master.len;
		job->derived_method = result.method;
		job->derived_width = result.width;
		job->derived_height = result.height;
		job->has_focus = result.has_focus;
		job->focus_x = result.focus_x;
		job->focus_y = result.focus_y;
		img_edit_result_free(&result);
		job->source_origin = "edit";
	}
	job->source_is_staged = true;
	/* a revert's master is its base's, already checked against this digest */
	if (strcmp(job->origin, "revert") == 0)
		strlcpy(job->master_sha256, job->base_sha256, sizeof(job->master_sha256));
	else
		imgmod_sha256_hex(job->source, job->source_len, job->master_sha256);
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

/* The objects of one version, PUT together and then described for the rows. */
typedef struct object_batch
{
	int			n;
	imgio_put_item *items;
	stored_object **outs;
	bool	   *needs_etag;
} object_batch;

/*
 * needs_etag: the object gets a variants row, whose etag is the MD5 of the
 * bytes.  S3 reports it with the PUT; only other stores make us hash.
 */
static void
batch_add(object_batch *b, imgmod_store store, const char *key, const uint8_t *data, size_t len,
		  stored_object *out, bool needs_etag)
{
	imgio_put_item *it = &b->items[b->n];

	it->store = imgmod_store_config(store);
	it->key = pstrdup(key);
	it->data = data;
	it->len = len;
	it->content_type = "image/jpeg";
	it->cache_control = IMMUTABLE_CACHE_CONTROL;
	b->needs_etag[b->n] = needs_etag;
	b->outs[b->n++] = out;
}

/* One PUT per object, all at once; the job fails if any object failed. */
static void
batch_store(object_batch *b)
{
	int			failed = imgmod_store_put_many(b->items, b->n);

	for (int i = 0; i < b->n && failed > 0; i++)
		if (!b->items[i].ok)
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("imgmod: storing %s in the %s store failed%s", b->items[i].key,
							b->items[i].store->name,
							failed > 1 ? psprintf(" (and %d more of this version's objects failed)", failed - 1) : ""),
					 /* the server's words stay with the job, out of the events */
					 errdetail("%s", b->items[i].error)));
	for (int i = 0; i < b->n; i++)
	{
		stored_object *out = b->outs[i];

		strlcpy(out->key, b->items[i].key, sizeof(out->key));
		if (b->items[i].etag[0] != '\0')
			strlcpy(out->etag, b->items[i].etag, sizeof(out->etag));
		else if (b->needs_etag[i])
			imgmod_md5_hex(b->items[i].data, b->items[i].len, out->etag);
		out->bytes = b->items[i].len;
	}
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
	object_batch batch;

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
		specs[0].name = "master";
	}
	for (int i = 0; i < job->npresets; i++)
		specs[first_preset + i] = job->presets[i].spec;

	pgstat_report_activity(STATE_RUNNING, "imgmod: rendering");
	memset(&err, 0, sizeof(err));
	{
		/* cover presets crop around the version's focal point, if it has one */
		img_focus	focus = {.x = job->focus_x, .y = job->focus_y};
		img_render_options options = {0};

		options.focus = job->has_focus ? &focus : NULL;
		options.threads = (unsigned) imgmod_render_threads;
		options.budget = imgmod_idle_core_budget;
		st = img_render_variants_opts(job->source, job->source_len, &limits, specs, (size_t) nspecs,
									  background, &options, results, &err);
		if (st == IMG_OK)
			imgmod_count_render(options.threads_used);
	}
	imgmod_core_interrupted(st);
	if (st != IMG_OK)
		ereport(ERROR,
				(errcode(imgmod_sqlstate_for(st)),
				 errmsg("imgmod: rendering image %lld version %d failed (%s): %s",
						(long long) job->image_id, job->version, img_status_name(st), err.message)));

	pgstat_report_activity(STATE_RUNNING, "imgmod: storing");
	batch.n = 0;
	batch.items = palloc0(sizeof(imgio_put_item) * (nspecs + 2));
	batch.outs = palloc0(sizeof(stored_object *) * (nspecs + 2));
	batch.needs_etag = palloc0(sizeof(bool) * (nspecs + 2));
	if (job->store_masters)
	{
		imgio_hires_key(key, sizeof(key), job->image_id, job->version);
		batch_add(&batch, IMGMOD_STORE_HIRES, key, job->source, job->source_len, hires, false);
		imgio_master_key(key, sizeof(key), job->image_id, job->version);
		batch_add(&batch, IMGMOD_STORE_MAIN, key, results[0].jpeg.data, results[0].jpeg.len, master, false);
	}
	for (int i = 0; i < job->npresets; i++)
	{
		img_variant_result *r = &results[first_preset + i];

		imgio_variant_key(key, sizeof(key), job->image_id, job->version, job->presets[i].name);
		batch_add(&batch, IMGMOD_STORE_MAIN, key, r->jpeg.data, r->jpeg.len, &variants[i], true);
		variants[i].width = r->width;
		variants[i].height = r->height;
	}
	batch_store(&batch);
	warm_cache(job, results, first_preset);
	img_variant_results_free(results, (size_t) nspecs);
}

/*
 * The image's current version (0 for none) and whether imgmod.delete() was
 * called on it meanwhile; the row stays locked until commit.
 */
static int32
lock_current_version(int64 image_id, bool *deleted)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	int32		current;

	values[0] = Int64GetDatum(image_id);
	if (SPI_execute_with_args("SELECT current_version, status = 'deleted' FROM imgmod.images WHERE id = $1 FOR UPDATE",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "imgmod: image %lld is gone", (long long) image_id);
	*deleted = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	current = int_column(0, 1, &isnull);
	return isnull ? 0 : current;
}

/*
 * Mark a version superseded and schedule its purge (imgmod._supersede);
 * remember its presets so its Redis keys can be dropped after commit.
 */
static void
supersede(claimed_job *job, int32 version, int retention_s)
{
	Oid			types[3] = {INT8OID, INT4OID, INT4OID};
	Datum		values[3];
	MemoryContext keep = job->job_context;

	values[0] = Int64GetDatum(job->image_id);
	values[1] = Int32GetDatum(version);
	values[2] = Int32GetDatum(retention_s);
	if (SPI_execute_with_args("SELECT imgmod._supersede($1, $2, make_interval(secs => $3))",
							  3, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: could not supersede version %d of image %lld", version,
			 (long long) job->image_id);
	/* not read-only: the rows this transaction just wrote must be seen */
	if (SPI_execute_with_args("SELECT preset FROM imgmod.variants WHERE image_id = $1 AND version = $2",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: could not list the variants of version %d", version);
	job->superseded = version;
	job->nsuperseded_presets = (int) SPI_processed;
	job->superseded_presets = MemoryContextAllocZero(keep, sizeof(char *) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed; i++)
		job->superseded_presets[i] = MemoryContextStrdup(keep, SPI_getvalue(SPI_tuptable->vals[i],
																			   SPI_tuptable->tupdesc, 1));
}

/*
 * Redis entries of a superseded version go at once (its objects stay for
 * the retention): a cache must not keep serving what was replaced.  Best
 * effort; the purge deletes them again, and their TTL ends them anyway.
 */
static void
drop_superseded_cache(claimed_job *job)
{
	if (job->superseded != 0)
		(void) imgmod_cache_drop_version(job->image_id, job->superseded, job->nsuperseded_presets,
										 job->superseded_presets);
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
	int32		previous;
	bool		deleted;

	imgmod_bg_begin_tx("imgmod: registering variants");
	previous = lock_current_version(job->image_id, &deleted);
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
							  "  UPDATE imgmod.images SET "
							  "         status = CASE WHEN EXISTS (SELECT 1 FROM imgmod.jobs o WHERE o.image_id = $1 "
							  "                        AND o.kind = 'render' AND o.version > $2 AND o.state IN ('queued', 'running')) "
							  "                       THEN status ELSE 'ready' END, "
							  "         current_version = greatest(coalesce(current_version, 0), $2), "
							  "         ready_at = CASE WHEN coalesce(current_version, 0) < $2 THEN now() ELSE ready_at END, "
							  "         updated_at = now(), "
							  "         last_error = CASE WHEN coalesce(current_version, 0) < $2 THEN NULL ELSE last_error END "
							  "   WHERE id = $1 AND status <> 'deleted' RETURNING 1), "
							  "job AS ("
							  "  UPDATE imgmod.jobs SET state = 'done', finished_at = now(), claimed_by = NULL "
							  "   WHERE id = $7 RETURNING 1) "
							  "SELECT (SELECT count(*) FROM ver), (SELECT count(*) FROM img), (SELECT count(*) FROM job)",
							  7, types, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: could not mark image %lld ready", (long long) job->image_id);

	if (job->derive_master)
	{
		/* what the edit (or revert) made, now that it is stored */
		Oid			dtypes[9] = {INT8OID, INT4OID, TEXTOID, TEXTOID, INT4OID, INT4OID, INT4OID, FLOAT8OID, FLOAT8OID};
		Datum		dvalues[9];
		char		dnulls[9];

		memset(dnulls, ' ', sizeof(dnulls));
		dvalues[0] = Int64GetDatum(job->image_id);
		dvalues[1] = Int32GetDatum(job->version);
		dvalues[2] = CStringGetTextDatum(job->master_sha256);
		dvalues[3] = strcmp(job->origin, "edit") == 0
			? CStringGetTextDatum(img_master_method_name(job->derived_method)) : (Datum) 0;
		dnulls[3] = strcmp(job->origin, "edit") == 0 ? ' ' : 'n';
		dvalues[4] = Int32GetDatum((int32) job->source_len);
		dvalues[5] = Int32GetDatum((int32) job->derived_width);
		dvalues[6] = Int32GetDatum((int32) job->derived_height);
		dvalues[7] = Float8GetDatum(job->focus_x);
		dvalues[8] = Float8GetDatum(job->focus_y);
		dnulls[7] = dnulls[8] = job->has_focus ? ' ' : 'n';
		if (SPI_execute_with_args("UPDATE imgmod.image_versions SET master_sha256 = $3, "
								  "       master_method = coalesce($4, master_method), staged_bytes = $5, "
								  "       width = $6, height = $7, focus_x = $8, focus_y = $9 "
								  " WHERE image_id = $1 AND version = $2",
								  9, dtypes, dvalues, dnulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "imgmod: could not record the master of version %d", job->version);
	}

	if (deleted || previous > job->version)
	{
		/*
		 * Overtaken while it was rendered: a newer version became current
		 * (this one is superseded at once, kept for the retention), or
		 * imgmod.delete() ran and a purge of this version may already have
		 * run (what was just stored is purged, again, at once).  Either
		 * way it announces no ready.
		 */
		supersede(job, job->version, deleted ? 0 : imgmod_superseded_retention_s);
		imgmod_bg_commit_tx();
		return;
	}

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

	/* The version this one replaces is now obsolete. */
	if (previous != 0 && previous < job->version)
		supersede(job, previous, imgmod_superseded_retention_s);
	imgmod_bg_commit_tx();
}


void
imgmod_render_job(const imgmod_job *queued)
{
	claimed_job job;
	stored_object hires;
	stored_object master;
	stored_object *variants;

	memset(&job, 0, sizeof(job));
	memset(&hires, 0, sizeof(hires));
	memset(&master, 0, sizeof(master));
	job.job_id = queued->job_id;
	job.image_id = queued->image_id;
	job.version = queued->version;
	job.attempt = queued->attempt;
	job.job_context = CurrentMemoryContext;

	if (!prepare_render(&job, job.job_context))
		return;
	variants = palloc0(sizeof(stored_object) * (job.npresets + 1));
	if (job.derive_master)
		derive_master(&job);
	else
		load_source(&job);
	render_and_store(&job, &hires, &master, variants);
	register_result(&job, &hires, &master, variants);
	drop_superseded_cache(&job);
}
