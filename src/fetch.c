/*
 * fetch.c — imgmod.fetch(): a variant's bytes, as a CDN origin asks for
 * them, or one of the version's two masters.  The variants table says which
 * object holds (image, version, preset) and image_versions where the
 * masters are; variants and the compressed master ('master') come from the
 * main store, the full-resolution master ('original') from the hi-res store.
 */
#include "imgmod.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

static void
report_deleted(int64 image_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("imgmod: image %lld was deleted", (long long) image_id)));
}

/* Column column of the looked-up row: the object's size as the database recorded it. */
static size_t
recorded_size(int column)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &isnull);

	if (isnull)
		elog(ERROR, "imgmod: the stored object has no recorded size");
	return (size_t) DatumGetInt32(d);
}

/*
 * The object of a master of (image, version or current) and its recorded
 * size, with errors that say why not; *sha256 is the digest of the
 * full-resolution master.
 */
static char *
master_key(int64 image_id, bool original, FunctionCallInfo fcinfo, size_t *bytes, char **sha256)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	char	   *key;
	char	   *status;

	values[0] = Int64GetDatum(image_id);
	values[1] = PG_ARGISNULL(2) ? (Datum) 0 : Int32GetDatum(PG_GETARG_INT32(2));
	nulls[1] = PG_ARGISNULL(2) ? 'n' : ' ';
	if (SPI_execute_with_args(original ?
							  "SELECT v.hires_key, v.status, i.status, v.master_sha256, v.hires_bytes FROM imgmod.images i "
							  "LEFT JOIN imgmod.image_versions v ON v.image_id = i.id "
							  " AND v.version = coalesce($2, i.current_version) WHERE i.id = $1" :
							  "SELECT v.master_key, v.status, i.status, v.master_sha256, v.master_bytes FROM imgmod.images i "
							  "LEFT JOIN imgmod.image_versions v ON v.image_id = i.id "
							  " AND v.version = coalesce($2, i.current_version) WHERE i.id = $1",
							  2, types, values, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: master lookup failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("imgmod: image %lld does not exist", (long long) image_id)));
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3), "deleted") == 0)
		report_deleted(image_id);
	key = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	*sha256 = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	if (status != NULL && strcmp(status, "purged") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("imgmod: version %d of image %lld was superseded and its objects deleted",
						PG_GETARG_INT32(2), (long long) image_id)));
	if (key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("imgmod: image %lld has no stored %s master %s (status %s)",
						(long long) image_id, original ? "full-resolution" : "compressed",
						PG_ARGISNULL(2) ? "yet" : "in that version",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3)),
				 errhint("Masters are stored by the worker; wait with SELECT imgmod.wait(%lld).",
						 (long long) image_id)));
	*bytes = recorded_size(5);
	return key;
}

/*
 * The object of variant (image, preset, version or current) and its
 * recorded size, with errors that say why not; *version and *etag say which
 * bytes it must hold.
 */
static char *
variant_key(int64 image_id, const char *preset, FunctionCallInfo fcinfo, size_t *bytes, int32 *version,
			char **etag)
{
	static const char *lookup =
		"SELECT i.current_version, i.status, v.version, v.object_key, "
		"       (SELECT iv.status FROM imgmod.image_versions iv "
		"         WHERE iv.image_id = i.id AND iv.version = coalesce($3, i.current_version)), "
		"       v.etag, v.bytes "
		"FROM imgmod.images i "
		"LEFT JOIN imgmod.variants v ON v.image_id = i.id AND v.preset = $2 "
		" AND v.version = coalesce($3, i.current_version) "
		"WHERE i.id = $1";
	Oid			types[3] = {INT8OID, TEXTOID, INT4OID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;
	char	   *key;
	char	   *status;
	char	   *version_status;

	values[0] = Int64GetDatum(image_id);
	values[1] = CStringGetTextDatum(preset);
	values[2] = PG_ARGISNULL(2) ? (Datum) 0 : Int32GetDatum(PG_GETARG_INT32(2));
	nulls[2] = PG_ARGISNULL(2) ? 'n' : ' ';
	if (SPI_execute_with_args(lookup, 3, types, values, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: variant lookup failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("imgmod: image %lld does not exist", (long long) image_id)));
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (strcmp(status, "deleted") == 0)
		report_deleted(image_id);
	key = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	version_status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5);
	if (key == NULL && version_status != NULL && strcmp(version_status, "purged") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("imgmod: version %d of image %lld was superseded and its objects deleted",
						PG_GETARG_INT32(2), (long long) image_id),
				 errhint("Fetch the current version: imgmod.fetch(%lld, '%s').", (long long) image_id, preset)));
	if (key == NULL)
	{
		(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull && PG_ARGISNULL(2))
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("imgmod: image %lld has no ready version yet (status %s)",
							(long long) image_id, status),
					 errhint("Wait for it with SELECT imgmod.wait(%lld).", (long long) image_id)));
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("imgmod: image %lld has no variant \"%s\"%s",
						(long long) image_id, preset,
						PG_ARGISNULL(2) ? " in its current version" : " in that version"),
				 errhint("SELECT preset, version FROM imgmod.variants WHERE image_id = %lld lists what exists.",
						 (long long) image_id)));
	}
	*version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	*etag = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6);
	*bytes = recorded_size(7);
	return key;
}

/*
 * The variant from Redis, if the worker warmed it and it still hashes to the
 * ETag recorded for it; NULL otherwise (the caller reads the store).
 */
static bytea *
variant_from_cache(int64 image_id, int32 version, const char *preset, const char *etag)
{
	char		md5[33];
	char		key[256];

	if (imgmod_redis_url == NULL || imgmod_redis_url[0] == '\0' || !imgio_etag_md5(etag, md5))
		return NULL;
	if (SPI_execute("SELECT id::text FROM imgmod.installation", true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		return NULL;
	imgmod_cache_set_namespace(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	imgmod_cache_key(key, sizeof(key), image_id, version, preset);
	return imgmod_cache_get_verified(key, IMGIO_DIGEST_MD5, md5);
}

PG_FUNCTION_INFO_V1(imgmod_fetch);
Datum
imgmod_fetch(PG_FUNCTION_ARGS)
{
	int64		image_id;
	char	   *preset;
	char	   *key;
	char	   *sha256 = NULL;
	char	   *etag = NULL;
	int32		version = 0;
	size_t		bytes;
	imgmod_store store = IMGMOD_STORE_MAIN;
	bytea	   *result = NULL;
	bytea	   *copy;
	char		errbuf[1024];
	MemoryContext caller = CurrentMemoryContext;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	image_id = PG_GETARG_INT64(0);
	preset = text_to_cstring(PG_GETARG_TEXT_PP(1));

	SPI_connect();
	if (strcmp(preset, "original") == 0)
	{
		key = master_key(image_id, true, fcinfo, &bytes, &sha256);
		store = IMGMOD_STORE_HIRES;
	}
	else if (strcmp(preset, "master") == 0)
		key = master_key(image_id, false, fcinfo, &bytes, &sha256);
	else
	{
		key = variant_key(image_id, preset, fcinfo, &bytes, &version, &etag);
		result = variant_from_cache(image_id, version, preset, etag);
	}

	if (result == NULL)
		result = imgmod_store_get(store, key, bytes, errbuf, sizeof(errbuf));
	if (result == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("imgmod: could not read \"%s\" of image %lld from the %s store: %s",
						preset, (long long) image_id, imgmod_store_name(store), errbuf)));
	if (store == IMGMOD_STORE_HIRES)
	{
		char		actual[65];

		/*
		 * The original is handed out only as imgmod's normaliser made it:
		 * whatever else the hi-res store holds under the key (an object
		 * written by someone else, one left from before a restore) is not.
		 */
		imgmod_sha256_hex((const uint8_t *) VARDATA_ANY(result), VARSIZE_ANY_EXHDR(result), actual);
		if (sha256 == NULL || strcmp(actual, sha256) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("imgmod: the full-resolution master of image %lld in the hi-res store is not the one imgmod stored",
							(long long) image_id),
					 errdetail("Object \"%s\" has SHA-256 %s; imgmod.image_versions records %s.",
							   key, actual, sha256 ? sha256 : "(none)"),
					 errhint("Something other than imgmod wrote that object. Re-upload the image with imgmod.replace().")));
	}
	/* The bytes were read in SPI's context; hand back a copy in the caller's. */
	copy = MemoryContextAlloc(caller, VARSIZE(result));
	memcpy(copy, result, VARSIZE(result));
	SPI_finish();
	PG_RETURN_BYTEA_P(copy);
}
