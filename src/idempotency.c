/*
 * idempotency.c — idempotency keys of upload() and replace().
 *
 * A client whose connection dropped after its upload committed cannot know
 * that it did; it retries.  With a key, the retry finds the first call's
 * row in imgmod.idempotency_keys and returns its result instead of
 * registering the image again.
 *
 * The key is claimed with INSERT ... ON CONFLICT DO NOTHING in the caller's
 * transaction, before any decoding: a second call with the same key while
 * the first is still open waits on the unique index until the first
 * commits (then it returns the first's result) or rolls back (then it goes
 * ahead itself).  A rolled-back call leaves no key.  Keys belong to the
 * calling role, so two applications never see each other's.
 */
#include "imgmod.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#define IMGMOD_MAX_IDEMPOTENCY_KEY_CHARS 200

void
imgmod_idempotency_from_arg(FunctionCallInfo fcinfo, int n, const char *function_name,
							const char *operation, int64 target_image, imgmod_idempotency *out)
{
	text	   *t;
	int			chars;

	memset(out, 0, sizeof(*out));
	out->function_name = function_name;
	out->operation = operation;
	out->target_image = target_image;
	if (PG_NARGS() <= n || PG_ARGISNULL(n))
		return;
	t = PG_GETARG_TEXT_PP(n);
	chars = pg_mbstrlen_with_len(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	if (chars < 1 || chars > IMGMOD_MAX_IDEMPOTENCY_KEY_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: an idempotency key has 1 to %d characters, this one %d",
						function_name, IMGMOD_MAX_IDEMPOTENCY_KEY_CHARS, chars),
				 errhint("Generate one key per user action, for example a UUID, and send it with every retry of that action.")));
	out->key = text_to_cstring(t);
	out->role_name = GetUserNameFromId(GetOuterUserId(), false);
}

bool
imgmod_idempotency_claim(imgmod_idempotency *idem, const char *request_sha256)
{
	Oid			types[5] = {NAMEOID, TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	bool		same;
	bool		claimed;

	if (idem->key == NULL)
		return true;
	values[0] = DirectFunctionCall1(namein, CStringGetDatum(idem->role_name));
	values[1] = CStringGetTextDatum(idem->key);
	values[2] = CStringGetTextDatum(idem->operation);
	values[3] = CStringGetTextDatum(request_sha256);
	values[4] = Int64GetDatum(idem->target_image);
	nulls[4] = idem->target_image != 0 ? ' ' : 'n';
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "imgmod: SPI_connect failed");

	/* Waits here while another open transaction holds the same key. */
	if (SPI_execute_with_args("INSERT INTO imgmod.idempotency_keys (role_name, key, operation, request_sha256, image_id) "
							  "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (role_name, key) DO NOTHING",
							  5, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "imgmod: could not record the idempotency key");
	claimed = SPI_processed == 1;
	if (claimed)
	{
		SPI_finish();
		return true;
	}

	if (SPI_execute_with_args("SELECT k.operation = $3 AND k.request_sha256 = $4 "
							  "       AND (k.operation <> 'replace' OR k.image_id = $5), "
							  "       k.image_id, k.version, "
							  "       to_char(k.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', "
							  "       k.operation "
							  "FROM imgmod.idempotency_keys k WHERE k.role_name = $1 AND k.key = $2",
							  /* not read-only: a fresh snapshot sees the row of the
							   * transaction the insert waited for */
							  5, types, values, nulls, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "imgmod: the idempotency key vanished while it was read");
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	same = DatumGetBool(SPI_getbinval(row, desc, 1, &isnull)) && !isnull;
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: idempotency key \"%s\" was first used at %s for a different request",
						idem->function_name, idem->key, SPI_getvalue(row, desc, 4)),
				 errdetail("That call was %s with other bytes or another image; a retry must repeat the call exactly.",
						   SPI_getvalue(row, desc, 5)),
				 errhint("Use a new key for each user action, and the same key only to retry that action.")));
	idem->replayed = true;
	idem->result_image = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
	idem->result_version = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
	SPI_finish();
	return false;
}

void
imgmod_idempotency_record(const imgmod_idempotency *idem, int64 image_id, int32 version)
{
	Oid			types[4] = {NAMEOID, TEXTOID, INT8OID, INT4OID};
	Datum		values[4];

	if (idem->key == NULL)
		return;
	values[0] = DirectFunctionCall1(namein, CStringGetDatum(idem->role_name));
	values[1] = CStringGetTextDatum(idem->key);
	values[2] = Int64GetDatum(image_id);
	values[3] = Int32GetDatum(version);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "imgmod: SPI_connect failed");
	if (SPI_execute_with_args("UPDATE imgmod.idempotency_keys SET image_id = $3, version = $4 "
							  "WHERE role_name = $1 AND key = $2",
							  4, types, values, NULL, false, 0) != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "imgmod: could not record the result of idempotency key \"%s\"", idem->key);
	SPI_finish();
}
