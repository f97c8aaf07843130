/*
 * fetch.c — imgmod.fetch(): a variant's bytes, as a CDN origin asks for
 * them.  The variants table says which object holds (image, version,
 * preset); the bytes come from the main store.
 */
#include "imgmod.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(imgmod_fetch);
Datum
imgmod_fetch(PG_FUNCTION_ARGS)
{
	static const char *lookup =
		"SELECT i.current_version, i.status, v.version, v.object_key, "
		"       (SELECT iv.status FROM imgmod.image_versions iv "
		"         WHERE iv.image_id = i.id AND iv.version = coalesce($3, i.current_version)) "
		"FROM imgmod.images i "
		"LEFT JOIN imgmod.variants v ON v.image_id = i.id AND v.preset = $2 "
		" AND v.version = coalesce($3, i.current_version) "
		"WHERE i.id = $1";
	Oid			types[3] = {INT8OID, TEXTOID, INT4OID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	int64		image_id;
	char	   *preset;
	bool		isnull;
	char	   *key;
	char	   *status;
	char	   *version_status;
	bytea	   *result;
	bytea	   *copy;
	char		errbuf[1024];
	MemoryContext caller = CurrentMemoryContext;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	image_id = PG_GETARG_INT64(0);
	preset = text_to_cstring(PG_GETARG_TEXT_PP(1));
	values[0] = Int64GetDatum(image_id);
	values[1] = CStringGetTextDatum(preset);
	values[2] = PG_ARGISNULL(2) ? (Datum) 0 : Int32GetDatum(PG_GETARG_INT32(2));
	nulls[2] = PG_ARGISNULL(2) ? 'n' : ' ';

	SPI_connect();
	if (SPI_execute_with_args(lookup, 3, types, values, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "imgmod: variant lookup failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("imgmod: image %lld does not exist", (long long) image_id)));
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
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
	result = imgmod_store_get(IMGMOD_STORE_MAIN, key, errbuf, sizeof(errbuf));
	if (result == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("imgmod: could not read variant \"%s\" of image %lld: %s",
						preset, (long long) image_id, errbuf)));
	/* The bytes were read in SPI's context; hand back a copy in the caller's. */
	copy = MemoryContextAlloc(caller, VARSIZE(result));
	memcpy(copy, result, VARSIZE(result));
	SPI_finish();
	PG_RETURN_BYTEA_P(copy);
}
