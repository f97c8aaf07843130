/*
 * upload.c — imgmod.upload(): validate, normalise and register an image in
 * the caller's transaction.
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

static char *
optional_text_arg(FunctionCallInfo fcinfo, int n)
{
	if (PG_NARGS() <= n || PG_ARGISNULL(n))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
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
			   int64 source_bytes, const char *sha256)
{
	static const char *insert_image =
		"INSERT INTO imgmod.images (original_name, claimed_type, detected_format, type_mismatch, "
		"source_width, source_height, source_bytes, sha256, width, height) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";
	static const char *insert_version =
		"WITH v AS (INSERT INTO imgmod.image_versions (image_id, version, width, height, "
		"master_method, staged, staged_bytes) VALUES ($1, 1, $2, $3, $4, $5, $6) "
		"RETURNING image_id, version), "
		"j AS (INSERT INTO imgmod.jobs (image_id, version) SELECT image_id, version FROM v RETURNING 1) "
		"SELECT imgmod._emit($1, 1, 'received', 'upload', NULL, NULL) FROM j";
	Oid			image_types[10] = {TEXTOID, TEXTOID, TEXTOID, BOOLOID, INT4OID, INT4OID,
	INT8OID, TEXTOID, INT4OID, INT4OID};
	Datum		image_values[10];
	char		image_nulls[10];
	Oid			version_types[6] = {INT8OID, INT4OID, INT4OID, TEXTOID, BYTEAOID, INT4OID};
	Datum		version_values[6];
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
	if (SPI_execute_with_args(insert_version, 6, version_types, version_values, NULL,
							  false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "imgmod: could not queue the image's render job");
	/* staged lived in SPI's context and goes with it */
	SPI_finish();
	return id;
}

PG_FUNCTION_INFO_V1(imgmod_upload);
Datum
imgmod_upload(PG_FUNCTION_ARGS)
{
	upload_claim claim;
	img_limits	limits;
	img_normalise_options options;
	img_normalised norm;
	img_error	err;
	img_status	st;
	img_format	detected;
	bytea	   *data;
	const uint8_t *bytes;
	int64		len;
	char		sha256[65];
	bool		mismatch = false;
	int64		id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("imgmod.upload: data must not be NULL")));

	memset(&claim, 0, sizeof(claim));
	claim.filename = optional_text_arg(fcinfo, 1);
	claim.content_type = optional_text_arg(fcinfo, 2);
	claim.claimed_by_name = img_format_from_name(claim.filename);
	claim.claimed_by_type = img_format_from_mime(claim.content_type);
	imgmod_current_limits(&limits);

	/* Refuse an oversized value before detoasting it. */
	len = (int64) toast_raw_datum_size(PG_GETARG_DATUM(0)) - VARHDRSZ;
	if (len > (int64) limits.max_bytes)
	{
		char		msg[IMG_ERROR_MESSAGE_MAX];
		/* The first bytes are enough to name the format for the audit. */
		bytea	   *head = PG_GETARG_BYTEA_P_SLICE(0, 0, 64);
		img_format	head_format = img_sniff((const uint8_t *) VARDATA(head), VARSIZE(head) - VARHDRSZ);

		snprintf(msg, sizeof(msg), "the data is %lld bytes, over the limit of %zu bytes (imgmod.max_bytes)",
				 (long long) len, limits.max_bytes);
		reject(IMG_ERR_TOO_MANY_BYTES, msg, &claim, head_format, len, NULL);
	}
	data = PG_GETARG_BYTEA_PP(0);
	bytes = (const uint8_t *) VARDATA_ANY(data);
	len = VARSIZE_ANY_EXHDR(data);
	imgmod_sha256_hex(bytes, (size_t) len, sha256);
	detected = img_sniff(bytes, (size_t) len);

	/* Magic numbers decide; the claim is only compared with them. */
	if (img_format_is_accepted(detected) &&
		(!claim_agrees(claim.claimed_by_name, detected) || !claim_agrees(claim.claimed_by_type, detected)))
	{
		char		msg[IMG_ERROR_MESSAGE_MAX];
		img_format	claimed = !claim_agrees(claim.claimed_by_type, detected) ?
			claim.claimed_by_type : claim.claimed_by_name;

		snprintf(msg, sizeof(msg), "the bytes are %s but the upload claims %s",
				 img_format_name(detected), img_format_name(claimed));
		if (imgmod_mismatch_policy == IMGMOD_MISMATCH_REJECT)
			reject(IMG_ERR_TYPE_MISMATCH, msg, &claim, detected, len, sha256);
		else
		{
			imgmod_audit_input audit = {
				.rejected = false, .status = IMG_ERR_TYPE_MISMATCH, .message = msg,
				.claimed_name = claim.filename, .claimed_type = claim.content_type,
				.detected = detected, .bytes = len, .sha256_hex = sha256,
			};

			imgmod_audit_record(&audit);
			mismatch = true;
			ereport(WARNING,
					(errcode(imgmod_sqlstate_for(IMG_ERR_TYPE_MISMATCH)),
					 errmsg("imgmod: %s; accepted and recorded as a mismatch", msg),
					 errhint("Set imgmod.mismatch_policy = reject to refuse such uploads.")));
		}
	}

	options.master_quality = imgmod_master_quality;
	imgmod_background_rgb(options.background);
	memset(&err, 0, sizeof(err));
	st = img_normalise(bytes, (size_t) len, &limits, &options, &norm, &err);
	if (st != IMG_OK)
		reject(st, err.message, &claim, detected, len, sha256);

	id = register_image(&claim, &norm, mismatch, len, sha256);
	img_normalised_free(&norm);
	imgmod_wake_workers_at_commit();
	PG_RETURN_INT64(id);
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
