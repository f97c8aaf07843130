/*
 * upload.c — imgmod.upload() and imgmod.replace(): validate, normalise and
 * register an image, or a new version of one, in the caller's transaction.
 *
 * Nothing here touches the network or the object store: the normalised
 * master is staged in imgmod.image_versions, a render job and a status
 * event are inserted, and the workers are woken only if the transaction
 * commits.  A rejection is queued for the audit table in shared memory
 * before the error is raised, so it survives the rollback.
 */
#include "imgmod.h"

#include "access/detoast.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

typedef struct upload_claim
{
	const char *filename;
	const char *content_type;
	img_format	claimed;		/* from content type, else file name */
	img_format	claimed_by_name;
	img_format	claimed_by_type;
} upload_claim;

/*
 * Longest claimed file name and content type accepted, in bytes.  The claim
 * is only compared with the bytes and recorded; nothing legitimate comes
 * near these, and refusing more keeps hostile names out of the tables.
 */
#define IMGMOD_MAX_FILENAME_BYTES 1024
#define IMGMOD_MAX_CONTENT_TYPE_BYTES 255

/* Text argument n, or NULL; refused when longer than max_bytes. */
static char *
optional_text_arg(FunctionCallInfo fcinfo, int n, const char *function_name,
				  const char *what, int max_bytes)
{
	text	   *value;

	if (PG_NARGS() <= n || PG_ARGISNULL(n))
		return NULL;
	value = PG_GETARG_TEXT_PP(n);
	if (VARSIZE_ANY_EXHDR(value) > (size_t) max_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s is %d bytes long, over the limit of %d bytes",
						function_name, what, (int) VARSIZE_ANY_EXHDR(value), max_bytes),
				 errhint("The claimed name and type are only kept to detect mismatches: pass the file's base name and a MIME type such as image/jpeg.")));
	return text_to_cstring(value);
}

static void
reject(img_status status, const char *message, const upload_claim *claim,
	   img_format detected, int64 bytes, const char *sha256)
{
	imgmod_audit_input audit = {
		.rejected = true,
		.status = status,
		.message = message,
		.claimed_name = claim->filename,
		.claimed_type = claim->content_type,
		.detected = detected,
		.bytes = bytes,
		.sha256_hex = sha256,
	};
	const char *hint = imgmod_hint_for(status);

	imgmod_audit_record(&audit);
	ereport(ERROR,
			(errcode(imgmod_sqlstate_for(status)),
			 errmsg("imgmod: upload rejected (%s): %s", img_status_name(status), message),
			 errdetail("claimed name: %s; claimed type: %s; detected: %s; %lld bytes",
					   claim->filename ? claim->filename : "(none)",
					   claim->content_type ? claim->content_type : "(none)",
					   img_format_name(detected), (long long) bytes),
			 hint ? errhint("%s", hint) : 0));
}

/* HEIF and AVIF share a container; a name claiming either is not a lie. */
static bool
claim_agrees(img_format claimed, img_format detected)
{
	if (claimed == IMG_FORMAT_UNKNOWN || claimed == detected)
		return true;
	return (claimed == IMG_FORMAT_HEIF && detected == IMG_FORMAT_AVIF) ||
		(claimed == IMG_FORMAT_AVIF && detected == IMG_FORMAT_HEIF);
}

static int64
register_image(const upload_claim *claim, const img_normalised *norm, bool mismatch,
			   int64 source_bytes, const char *sha256, const char *master_sha256)
{
	static const char *insert_image =
		"INSERT INTO imgmod.images (original_name, claimed_type, detected_format, type_mismatch, "
		"source_width, source_height, source_bytes, sha256, width, height) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";
	static const char *insert_version =
		"WITH v AS (INSERT INTO imgmod.image_versions (image_id, version, width, height, "
		"master_method, staged, staged_bytes, master_sha256) VALUES ($1, 1, $2, $3, $4, $5, $6, $7) "
		"RETURNING image_id, version), "
		"j AS (INSERT INTO imgmod.jobs (image_id, version) SELECT image_id, version FROM v RETURNING 1) "
		"SELECT imgmod._emit($1, 1, 'received', 'upload', NULL, NULL) FROM j";
	Oid			image_types[10] = {TEXTOID, TEXTOID, TEXTOID, BOOLOID, INT4OID, INT4OID,
	INT8OID, TEXTOID, INT4OID, INT4OID};
	Datum		image_values[10];
	char		image_nulls[10];
	Oid			version_types[7] = {INT8OID, INT4OID, INT4OID, TEXTOID, BYTEAOID, INT4OID, TEXTOID};
	Datum		version_values[7];
	bytea	   *staged;
	bool		isnull;
	int64		id;

	memset(image_nulls, ' ', sizeof(image_nulls));
	image_values[0] = claim->filename ? CStringGetTextDatum(claim->filename) : (Datum) 0;
	image_nulls[0] = claim->filename ? ' ' : 'n';
	image_values[1] = claim->content_type ? CStringGetTextDatum(claim->content_type) : (Datum) 0;
	image_nulls[1] = claim->content_type ? ' ' : 'n';
	image_values[2] = CStringGetTextDatum(img_format_name(norm->info.format));
	image_values[3] = BoolGetDatum(mismatch);
	image_values[4] = Int32GetDatum((int32) norm->info.width);
	image_values[5] = Int32GetDatum((int32) norm->info.height);
	image_values[6] = Int64GetDatum(source_bytes);
	image_values[7] = CStringGetTextDatum(sha256);
	image_values[8] = Int32GetDatum((int32) norm->width);
	image_values[9] = Int32GetDatum((int32) norm->height);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "imgmod: SPI_connect failed");
	if (SPI_execute_with_args(insert_image, 10, image_types, image_values, image_nulls,
							  false, 1) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "imgmod: could not register the image");
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	staged = palloc(VARHDRSZ + norm->master.len);
	SET_VARSIZE(staged, VARHDRSZ + norm->master.len);
	memcpy(VARDATA(staged), norm->master.data, norm->master.len);

	version_values[0] = Int64GetDatum(id);
	version_values[1] = Int32GetDatum((int32) norm->width);
	version_values[2] = Int32GetDatum((int32) norm->height);
	version_values[3] = CStringGetTextDatum(img_master_method_name(norm->method));
	version_values[4] = PointerGetDatum(staged);
	version_values[5] = Int32GetDatum((int32) norm->master.len);
	version_values[6] = CStringGetTextDatum(master_sha256);
	if (SPI_execute_with_args(insert_version, 7, version_types, version_values, NULL,
							  false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "imgmod: could not queue the image's render job");
	/* staged lived in SPI's context and goes with it */
	SPI_finish();
	return id;
}

/*
 * The checks and the normalisation shared by upload() and replace(): the
 * bytes are argument data_arg, the claimed name and type the two after it.
 * Raises (and audits) on bad input; on success fills *norm.
 */
typedef struct accepted_upload
{
	upload_claim claim;
	img_normalised norm;
	bool		mismatch;
	int64		bytes;
	char		sha256[65];		/* of the uploaded bytes */
	char		master_sha256[65];	/* of the normalised master: what caches are checked against */
} accepted_upload;

static bool
accept_upload(FunctionCallInfo fcinfo, int data_arg, const char *function_name,
			  imgmod_idempotency *idem, accepted_upload *up)
{
	upload_claim *claim = &up->claim;
	img_limits	limits;
	img_normalise_options options;
	img_error	err;
	img_status	st;
	img_format	detected;
	bytea	   *data;
	const uint8_t *bytes;
	int64		len;

	if (PG_ARGISNULL(data_arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: data must not be NULL", function_name)));

	memset(up, 0, sizeof(*up));
	claim->filename = optional_text_arg(fcinfo, data_arg + 1, function_name, "filename",
										IMGMOD_MAX_FILENAME_BYTES);
	claim->content_type = optional_text_arg(fcinfo, data_arg + 2, function_name, "content_type",
											IMGMOD_MAX_CONTENT_TYPE_BYTES);
	claim->claimed_by_name = img_format_from_name(claim->filename);
	claim->claimed_by_type = img_format_from_mime(claim->content_type);
	imgmod_current_limits(&limits);

	/* Refuse an oversized value before detoasting it. */
	len = (int64) toast_raw_datum_size(PG_GETARG_DATUM(data_arg)) - VARHDRSZ;
	if (len > (int64) limits.max_bytes)
	{
		char		msg[IMG_ERROR_MESSAGE_MAX];
		/* The first bytes are enough to name the format for the audit. */
		bytea	   *head = PG_GETARG_BYTEA_P_SLICE(data_arg, 0, 64);
		img_format	head_format = img_sniff((const uint8_t *) VARDATA(head), VARSIZE(head) - VARHDRSZ);

		snprintf(msg, sizeof(msg), "the data is %lld bytes, over the limit of %zu bytes (imgmod.max_bytes)",
				 (long long) len, limits.max_bytes);
		reject(IMG_ERR_TOO_MANY_BYTES, msg, claim, head_format, len, NULL);
	}
	data = PG_GETARG_BYTEA_PP(data_arg);
	bytes = (const uint8_t *) VARDATA_ANY(data);
	len = VARSIZE_ANY_EXHDR(data);
	up->bytes = len;
	imgmod_sha256_hex(bytes, (size_t) len, up->sha256);
	/* A retry of a call that committed: nothing to decode or register. */
	if (!imgmod_idempotency_claim(idem, up->sha256))
		return false;
	detected = img_sniff(bytes, (size_t) len);

	/* Magic numbers decide; the claim is only compared with them. */
	if (img_format_is_accepted(detected) &&
		(!claim_agrees(claim->claimed_by_name, detected) || !claim_agrees(claim->claimed_by_type, detected)))
	{
		char		msg[IMG_ERROR_MESSAGE_MAX];
		img_format	claimed = !claim_agrees(claim->claimed_by_type, detected) ?
			claim->claimed_by_type : claim->claimed_by_name;

		snprintf(msg, sizeof(msg), "the bytes are %s but the upload claims %s",
				 img_format_name(detected), img_format_name(claimed));
		if (imgmod_mismatch_policy == IMGMOD_MISMATCH_REJECT)
			reject(IMG_ERR_TYPE_MISMATCH, msg, claim, detected, len, up->sha256);
		else
		{
			imgmod_audit_input audit = {
				.rejected = false, .status = IMG_ERR_TYPE_MISMATCH, .message = msg,
				.claimed_name = claim->filename, .claimed_type = claim->content_type,
				.detected = detected, .bytes = len, .sha256_hex = up->sha256,
			};

			imgmod_audit_record(&audit);
			up->mismatch = true;
			ereport(WARNING,
					(errcode(imgmod_sqlstate_for(IMG_ERR_TYPE_MISMATCH)),
					 errmsg("imgmod: %s; accepted and recorded as a mismatch", msg),
					 errhint("Set imgmod.mismatch_policy = reject to refuse such uploads.")));
		}
	}

	options.master_quality = imgmod_master_quality;
	imgmod_background_rgb(options.background);
	memset(&err, 0, sizeof(err));
	st = img_normalise(bytes, (size_t) len, &limits, &options, &up->norm, &err);
	imgmod_core_interrupted(st);
	if (st != IMG_OK)
		reject(st, err.message, claim, detected, len, up->sha256);
	imgmod_sha256_hex(up->norm.master.data, up->norm.master.len, up->master_sha256);
	return true;
}

PG_FUNCTION_INFO_V1(imgmod_upload);
Datum
imgmod_upload(PG_FUNCTION_ARGS)
{
	accepted_upload up;
	imgmod_idempotency idem;
	int64		id;

	imgmod_idempotency_from_arg(fcinfo, 3, "imgmod.upload", "upload", 0, &idem);
	if (!accept_upload(fcinfo, 0, "imgmod.upload", &idem, &up))
		PG_RETURN_INT64(idem.result_image);
	id = register_image(&up.claim, &up.norm, up.mismatch, up.bytes, up.sha256, up.master_sha256);
	imgmod_idempotency_record(&idem, id, 1);
	img_normalised_free(&up.norm);
	imgmod_wake_workers_at_commit();
	PG_RETURN_INT64(id);
}

/*
 * Check that the image exists and is not deleted; with lock, lock its row
 * (two calls that make versions of one image get consecutive numbers).
 * Returns its next version number.  fn names the caller in messages.
 */
int32
imgmod_lock_image_for_new_version(const char *fn, int64 image_id, bool lock)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	int32		next;

	values[0] = Int64GetDatum(image_id);
	if (SPI_execute_with_args(lock ? "SELECT status = 'deleted' FROM imgmod.images WHERE id = $1 FOR UPDATE" :
							  "SELECT status = 'deleted' FROM imgmod.images WHERE id = $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: could not lock image %lld", (long long) image_id);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("%s: image %lld does not exist", fn, (long long) image_id),
				 errhint("Create it with imgmod.upload(), which returns the image id.")));
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s: image %lld was deleted", fn, (long long) image_id),
				 errhint("Upload the bytes as a new image with imgmod.upload().")));
	if (SPI_execute_with_args("SELECT coalesce(max(version), 0) + 1 FROM imgmod.image_versions WHERE image_id = $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "imgmod: could not number the new version of image %lld", (long long) image_id);
	next = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return next;
}

static void
register_version(int64 image_id, int32 version, const accepted_upload *up)
{
	static const char *update_image =
		"UPDATE imgmod.images SET original_name = $2, claimed_type = $3, detected_format = $4, "
		"type_mismatch = $5, source_width = $6, source_height = $7, source_bytes = $8, sha256 = $9, "
		"width = $10, height = $11, status = 'received', last_error = NULL, updated_at = now() "
		"WHERE id = $1";
	static const char *insert_version =
		"WITH v AS (INSERT INTO imgmod.image_versions (image_id, version, width, height, "
		"master_method, staged, staged_bytes, master_sha256, origin) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'replace') "
		"RETURNING image_id, version), "
		"j AS (INSERT INTO imgmod.jobs (image_id, version) SELECT image_id, version FROM v RETURNING 1) "
		"SELECT imgmod._emit($1, $2, 'received', 'upload', NULL, NULL) FROM j";
	Oid			image_types[11] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, INT4OID, INT4OID,
	INT8OID, TEXTOID, INT4OID, INT4OID};
	Datum		image_values[11];
	char		image_nulls[11];
	Oid			version_types[8] = {INT8OID, INT4OID, INT4OID, INT4OID, TEXTOID, BYTEAOID, INT4OID, TEXTOID};
	Datum		version_values[8];
	const img_normalised *norm = &up->norm;
	bytea	   *staged;

	memset(image_nulls, ' ', sizeof(image_nulls));
	image_values[0] = Int64GetDatum(image_id);
	image_values[1] = up->claim.filename ? CStringGetTextDatum(up->claim.filename) : (Datum) 0;
	image_nulls[1] = up->claim.filename ? ' ' : 'n';
	image_values[2] = up->claim.content_type ? CStringGetTextDatum(up->claim.content_type) : (Datum) 0;
	image_nulls[2] = up->claim.content_type ? ' ' : 'n';
	image_values[3] = CStringGetTextDatum(img_format_name(norm->info.format));
	image_values[4] = BoolGetDatum(up->mismatch);
	image_values[5] = Int32GetDatum((int32) norm->info.width);
	image_values[6] = Int32GetDatum((int32) norm->info.height);
	image_values[7] = Int64GetDatum(up->bytes);
	image_values[8] = CStringGetTextDatum(up->sha256);
	image_values[9] = Int32GetDatum((int32) norm->width);
	image_values[10] = Int32GetDatum((int32) norm->height);
	if (SPI_execute_with_args(update_image, 11, image_types, image_values, image_nulls,
							  false, 0) != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "imgmod: could not update image %lld", (long long) image_id);

	staged = palloc(VARHDRSZ + norm->master.len);
	SET_VARSIZE(staged, VARHDRSZ + norm->master.len);
	memcpy(VARDATA(staged), norm->master.data, norm->master.len);
	version_values[0] = Int64GetDatum(image_id);
	version_values[1] = Int32GetDatum(version);
	version_values[2] = Int32GetDatum((int32) norm->width);
	version_values[3] = Int32GetDatum((int32) norm->height);
	version_values[4] = CStringGetTextDatum(img_master_method_name(norm->method));
	version_values[5] = PointerGetDatum(staged);
	version_values[6] = Int32GetDatum((int32) norm->master.len);
	version_values[7] = CStringGetTextDatum(up->master_sha256);
	if (SPI_execute_with_args(insert_version, 8, version_types, version_values, NULL,
							  false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "imgmod: could not queue the render job of image %lld version %d",
			 (long long) image_id, version);
}

PG_FUNCTION_INFO_V1(imgmod_replace);
Datum
imgmod_replace(PG_FUNCTION_ARGS)
{
	accepted_upload up;
	imgmod_idempotency idem;
	int64		image_id;
	int32		version;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("imgmod.replace: image_id must not be NULL")));
	image_id = PG_GETARG_INT64(0);

	/*
	 * A missing or deleted image is reported before the bytes are decoded,
	 * but the row is locked only after: a long decode must not hold up the
	 * workers registering this image's other versions.
	 */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "imgmod: SPI_connect failed");
	(void) imgmod_lock_image_for_new_version("imgmod.replace", image_id, false);
	SPI_finish();

	imgmod_idempotency_from_arg(fcinfo, 4, "imgmod.replace", "replace", image_id, &idem);
	if (!accept_upload(fcinfo, 1, "imgmod.replace", &idem, &up))
		PG_RETURN_INT32(idem.result_version);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "imgmod: SPI_connect failed");
	version = imgmod_lock_image_for_new_version("imgmod.replace", image_id, true);
	register_version(image_id, version, &up);
	SPI_finish();
	imgmod_idempotency_record(&idem, image_id, version);
	img_normalised_free(&up.norm);
	imgmod_wake_workers_at_commit();
	PG_RETURN_INT32(version);
}

PG_FUNCTION_INFO_V1(imgmod_wake_workers);
Datum
imgmod_wake_workers(PG_FUNCTION_ARGS)
{
	(void) fcinfo;
	/* Every call runs inside a transaction, implicit or not: wake on its commit. */
	imgmod_wake_workers_at_commit();
	PG_RETURN_INT32(imgmod_attached_worker_count());
}
