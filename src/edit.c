/*
 * edit.c — imgmod.edit() and imgmod.revert(): a new version made from an
 * existing one, registered in the caller's transaction.
 *
 * As with replace(), nothing here touches pixels, the network or a store:
 * the call checks everything it can (the ops' shapes, the base version,
 * and with img_edit_plan() the geometry against the base's size and the
 * limits), then inserts the version, its job and its event.  A worker makes
 * the new master from the base version's full-resolution master after
 * COMMIT (bgworker/render_job.c), so a rolled-back edit leaves nothing.
 */
#include "imgmod.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

/* What the new version is made from. */
typedef struct base_version
{
	int32		version;
	char	   *status;
	int32		width;
	int32		height;
	bool		has_master;		/* its master exists (an edit's is made by the worker) */
	char	   *master_method;
	char	   *master_sha256;
	int32		staged_bytes;
	bool		has_focus;
	double		focus_x;
	double		focus_y;
} base_version;

/*
 * The core names an op "edit op <i> (<kind>): "; the caller's index is
 * another one (the chain has inherited ops first): keep the reason only.
 */
static const char *
strip_op_prefix(const char *message)
{
	const char *kind = strncmp(message, "edit op ", 8) == 0 ? strchr(message, '(') : NULL;

	return kind ? kind : message;
}

static char *
text_column(int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);

	return v ? pstrdup(v) : NULL;
}

/* The base version (0: the newest), checked to still have a master to work from. */
static void
read_base(const char *fn, int64 image_id, int32 version, base_version *base)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	bool		isnull;
	TupleDesc	desc;
	HeapTuple	row;

	values[0] = Int64GetDatum(image_id);
	values[1] = Int32GetDatum(version);
	if (SPI_execute_with_args("SELECT version, status, width, height, master_sha256 IS NOT NULL, master_method, "
							  "       master_sha256, staged_bytes, focus_x, focus_y "
							  "FROM imgmod.image_versions WHERE image_id = $1 "
							  "  AND (version = $2 OR $2 = 0) ORDER BY version DESC LIMIT 1",
							  2, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: could not read the versions of image %lld", (long long) image_id);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: image %lld has no version %d", fn, (long long) image_id, version),
				 errhint("SELECT version, status FROM imgmod.history(%lld) lists them.", (long long) image_id)));
	desc = SPI_tuptable->tupdesc;
	row = SPI_tuptable->vals[0];
	base->version = DatumGetInt32(SPI_getbinval(row, desc, 1, &isnull));
	base->status = text_column(2);
	base->width = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
	base->height = DatumGetInt32(SPI_getbinval(row, desc, 4, &isnull));
	base->has_master = DatumGetBool(SPI_getbinval(row, desc, 5, &isnull));
	base->master_method = text_column(6);
	base->master_sha256 = text_column(7);
	base->staged_bytes = DatumGetInt32(SPI_getbinval(row, desc, 8, &isnull));
	base->focus_x = DatumGetFloat8(SPI_getbinval(row, desc, 9, &isnull));
	base->has_focus = !isnull;
	base->focus_y = DatumGetFloat8(SPI_getbinval(row, desc, 10, &isnull));
	base->has_focus = base->has_focus && !isnull;

	if (strcmp(base->status, "purged") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: version %d of image %lld was purged: its master is gone", fn, base->version,
						(long long) image_id),
				 errhint("Superseded versions are kept for imgmod.superseded_retention; use a later version.")));
	if (!base->has_master && strcmp(base->status, "pending") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: version %d of image %lld has no master: the edit that made it %s", fn,
						base->version, (long long) image_id,
						strcmp(base->status, "failed") == 0 ? "failed" : "did not finish"),
				 errhint("Use another version, or imgmod.retry() the image.")));
}

/*
 * The version row, its job, the image's status and the received event,
 * together.  For a revert the master is known already (the base's); for an
 * edit the worker fills it in.
 */
static void
register_derived(int64 image_id, int32 version, const char *origin, const base_version *base,
				 uint32 width, uint32 height, Jsonb *ops)
{
	static const char *sql =
		"WITH v AS (INSERT INTO imgmod.image_versions (image_id, version, width, height, origin, base_version, "
		"           ops, master_method, master_sha256, staged_bytes, focus_x, focus_y) "
		"   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING image_id, version), "
		"j AS (INSERT INTO imgmod.jobs (image_id, version) SELECT image_id, version FROM v RETURNING 1), "
		"i AS (UPDATE imgmod.images SET status = 'received', width = $3, height = $4, last_error = NULL, "
		"      updated_at = now() WHERE id = $1 RETURNING 1) "
		"SELECT imgmod._emit($1, $2, 'received', $5, NULL, NULL) FROM j, i";
	Oid			types[12] = {INT8OID, INT4OID, INT4OID, INT4OID, TEXTOID, INT4OID, JSONBOID, TEXTOID,
	TEXTOID, INT4OID, FLOAT8OID, FLOAT8OID};
	Datum		values[12];
	char		nulls[12];
	bool		revert = ops == NULL;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(image_id);
	values[1] = Int32GetDatum(version);
	values[2] = Int32GetDatum((int32) width);
	values[3] = Int32GetDatum((int32) height);
	values[4] = CStringGetTextDatum(origin);
	values[5] = Int32GetDatum(base->version);
	values[6] = revert ? (Datum) 0 : JsonbPGetDatum(ops);
	nulls[6] = revert ? 'n' : ' ';
	/* an edit's master is the worker's to make */
	values[7] = revert ? CStringGetTextDatum(base->master_method) : (Datum) 0;
	values[8] = revert ? CStringGetTextDatum(base->master_sha256) : (Datum) 0;
	values[9] = Int32GetDatum(base->staged_bytes);
	values[10] = Float8GetDatum(base->focus_x);
	values[11] = Float8GetDatum(base->focus_y);
	nulls[7] = nulls[8] = nulls[9] = revert ? ' ' : 'n';
	/* an edit's focal point is where the worker's ops move it */
	nulls[10] = nulls[11] = (revert && base->has_focus) ? ' ' : 'n';
	if (SPI_execute_with_args(sql, 12, types, values, nulls, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "imgmod: could not register version %d of image %lld", version, (long long) image_id);
}

PG_FUNCTION_INFO_V1(imgmod_edit);
Datum
imgmod_edit(PG_FUNCTION_ARGS)
{
	const char *fn = "imgmod.edit";
	int64		image_id;
	Jsonb	   *ops;
	int32		base_arg;
	img_edit_op *parsed;
	img_edit_op *chain;
	int			nops;
	int			prefix;
	base_version base;
	imgmod_edit_source source;
	img_limits	limits;
	img_error	err;
	img_status	st;
	uint32		width,
				height;
	int			bad = -1;
	int32		version;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: image_id and ops must not be NULL", fn)));
	image_id = PG_GETARG_INT64(0);
	ops = PG_GETARG_JSONB_P(1);
	base_arg = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2);
	if (!PG_ARGISNULL(2) && base_arg < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: base_version must be a version number (1 or more), or NULL for the newest", fn)));

	/* the ops' shapes first: nothing is read or locked for a malformed call */
	nops = imgmod_parse_edit_ops(fn, ops, IMGMOD_EDIT_MAX_OPS, &parsed);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "imgmod: SPI_connect failed");
	version = imgmod_lock_image_for_new_version(fn, image_id, true);
	read_base(fn, image_id, base_arg, &base);
	if (!imgmod_read_edit_source(image_id, base.version, nops, CurrentMemoryContext, &source))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: version %d of image %lld has no master left to edit from", fn, base.version,
						(long long) image_id),
				 errhint("Edit a version listed as ready by imgmod.history(%lld).", (long long) image_id)));

	/*
	 * Planned as the worker will apply it: the ops on the oldest master the
	 * chain still has, after the edits since (see imgmod._edit_source).
	 */
	prefix = imgmod_edit_chain(fn, &source, parsed, nops, &chain);
	imgmod_current_limits(&limits);
	memset(&err, 0, sizeof(err));
	st = img_edit_plan((uint32) source.width, (uint32) source.height, chain, (size_t) (prefix + nops), &limits,
					   &width, &height, &bad, &err);
	if (st != IMG_OK && bad >= prefix)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: ops[%d] %s", fn, bad - prefix, strip_op_prefix(err.message)),
				 errdetail("Version %d of image %lld, the base, is %d x %d pixels (upright).", base.version,
						   (long long) image_id, base.width, base.height)));
	if (st != IMG_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: the edits that made version %d no longer apply: %s", fn, base.version, err.message),
				 errhint("The limits (imgmod.max_side, imgmod.max_megapixels) may have been lowered since.")));

	register_derived(image_id, version, "edit", &base, width, height, ops);
	SPI_finish();
	imgmod_wake_workers_at_commit();
	PG_RETURN_INT32(version);
}

PG_FUNCTION_INFO_V1(imgmod_revert);
Datum
imgmod_revert(PG_FUNCTION_ARGS)
{
	const char *fn = "imgmod.revert";
	int64		image_id;
	int32		to;
	base_version base;
	int32		version;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: image_id and version must not be NULL", fn)));
	image_id = PG_GETARG_INT64(0);
	to = PG_GETARG_INT32(1);
	if (to < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: version must be a version number (1 or more)", fn)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "imgmod: SPI_connect failed");
	version = imgmod_lock_image_for_new_version(fn, image_id, true);
	read_base(fn, image_id, to, &base);
	if (!base.has_master)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s: version %d of image %lld is an edit still being made", fn, to, (long long) image_id),
				 errhint("Wait for it with SELECT imgmod.wait(%lld), then revert.", (long long) image_id)));
	register_derived(image_id, version, "revert", &base, (uint32) base.width, (uint32) base.height, NULL);
	SPI_finish();
	imgmod_wake_workers_at_commit();
	PG_RETURN_INT32(version);
}
