/*
 * audit.c — the record of refused input that outlives the refusal.
 *
 * upload() raises an error on bad input, which rolls back everything the
 * caller's transaction wrote.  So the audit row is not written there: it is
 * queued in shared memory before the error is raised, and the first worker
 * inserts it into imgmod.rejections in a transaction of its own.  Counters
 * per reason are kept in shared memory too, so a flood of bad input stays
 * visible even when the bounded queue overflows.
 */
#include "imgmod.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/libpq-be.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "common/ip.h"

#include "shared_state.h"

/*
 * Copy text into a fixed-size audit field, cut on a character boundary of
 * the database encoding: a multibyte name cut in the middle of a character
 * would make an invalid text value in imgmod.rejections.
 */
static void
copy_text(char *dst, size_t size, const char *src)
{
	int			len;

	if (src == NULL)
	{
		dst[0] = '\0';
		return;
	}
	len = strlen(src);
	if ((size_t) len >= size)
		len = pg_mbcliplen(src, len, (int) size - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

void
imgmod_audit_record(const imgmod_audit_input *input)
{
	imgmod_audit_entry entry;
	const char *role;

	if (imgmod_state == NULL)
	{
		ereport(WARNING,
				(errmsg("imgmod: this %s is not audited because imgmod is not in shared_preload_libraries",
						input->rejected ? "rejection" : "type mismatch"),
				 errhint("Add imgmod to shared_preload_libraries and restart the server.")));
		return;
	}
	if (input->rejected)
		pg_atomic_fetch_add_u64(&imgmod_state->rejections_by_status[input->status], 1);

	memset(&entry, 0, sizeof(entry));
	entry.rejected = input->rejected;
	entry.status = input->status;
	copy_text(entry.message, sizeof(entry.message), input->message);
	copy_text(entry.claimed_name, sizeof(entry.claimed_name), input->claimed_name);
	copy_text(entry.claimed_type, sizeof(entry.claimed_type), input->claimed_type);
	copy_text(entry.detected, sizeof(entry.detected), img_format_name(input->detected));
	entry.bytes = input->bytes;
	copy_text(entry.sha256, sizeof(entry.sha256), input->sha256_hex);
	/*
	 * upload() runs as the extension owner (SECURITY DEFINER): the caller is
	 * the role outside that, not the current user.
	 */
	role = GetUserNameFromId(GetOuterUserId(), true);
	copy_text(entry.role_name, sizeof(entry.role_name), role);
	copy_text(entry.application_name, sizeof(entry.application_name), application_name);
	if (MyProcPort != NULL && MyProcPort->raddr.addr.ss_family != AF_UNIX)
	{
		char		host[NI_MAXHOST];

		if (pg_getnameinfo_all(&MyProcPort->raddr.addr, MyProcPort->raddr.salen,
							   host, sizeof(host), NULL, 0, NI_NUMERICHOST) == 0)
			copy_text(entry.client_addr, sizeof(entry.client_addr), host);
	}
	entry.backend_pid = MyProcPid;
	entry.occurred_at = GetCurrentTimestamp();

	LWLockAcquire(imgmod_state->lock, LW_EXCLUSIVE);
	if (imgmod_state->audit_count < IMGMOD_AUDIT_CAPACITY)
	{
		int			tail = (imgmod_state->audit_head + imgmod_state->audit_count) % IMGMOD_AUDIT_CAPACITY;

		imgmod_state->audit[tail] = entry;
		imgmod_state->audit_count++;
	}
	else
		pg_atomic_fetch_add_u64(&imgmod_state->audit_dropped, 1);
	LWLockRelease(imgmod_state->lock);

	imgmod_wake_all_workers();
}

/* SPI argument i: the text, or NULL for an empty string. */
static void
set_text_arg(Datum *values, char *nulls, int i, const char *s)
{
	bool		isnull = (s == NULL || s[0] == '\0');

	values[i] = isnull ? (Datum) 0 : CStringGetTextDatum(s);
	nulls[i] = isnull ? 'n' : ' ';
}

/*
 * Insert queued entries, oldest first, then drop them from the queue once
 * the insert committed.  Only worker 0 calls this, so the head is ours.
 */
int
imgmod_audit_flush(void)
{
	static const char *sql =
		"INSERT INTO imgmod.rejections (outcome, reason, sqlstate, message, claimed_name, "
		"claimed_type, detected_format, bytes, sha256, role_name, application_name, "
		"client_addr, backend_pid, occurred_at) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::inet, $13, $14)";
	Oid			types[14] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID};
	imgmod_audit_entry *batch;
	int			n;

	if (imgmod_state == NULL)
		return 0;
	LWLockAcquire(imgmod_state->lock, LW_SHARED);
	n = imgmod_state->audit_count;
	LWLockRelease(imgmod_state->lock);
	if (n == 0)
		return 0;
	if (n > 64)
		n = 64;

	batch = palloc(sizeof(imgmod_audit_entry) * n);
	LWLockAcquire(imgmod_state->lock, LW_SHARED);
	for (int i = 0; i < n; i++)
		batch[i] = imgmod_state->audit[(imgmod_state->audit_head + i) % IMGMOD_AUDIT_CAPACITY];
	LWLockRelease(imgmod_state->lock);

	imgmod_bg_begin_tx(NULL);
	for (int i = 0; i < n; i++)
	{
		imgmod_audit_entry *e = &batch[i];
		Datum		values[14];
		char		nulls[14];

		memset(nulls, ' ', sizeof(nulls));
		values[0] = CStringGetTextDatum(e->rejected ? "rejected" : "accepted");
		values[1] = CStringGetTextDatum(img_status_name((img_status) e->status));
		values[2] = CStringGetTextDatum(imgmod_sqlstate_text((img_status) e->status));
		values[3] = CStringGetTextDatum(e->message);
		set_text_arg(values, nulls, 4, e->claimed_name);
		set_text_arg(values, nulls, 5, e->claimed_type);
		set_text_arg(values, nulls, 6, e->detected);
		values[7] = Int64GetDatum(e->bytes);
		set_text_arg(values, nulls, 8, e->sha256);
		set_text_arg(values, nulls, 9, e->role_name);
		set_text_arg(values, nulls, 10, e->application_name);
		set_text_arg(values, nulls, 11, e->client_addr);
		values[12] = Int32GetDatum(e->backend_pid);
		values[13] = TimestampTzGetDatum(e->occurred_at);
		if (SPI_execute_with_args(sql, 14, types, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "imgmod: could not record a rejection");
	}
	imgmod_bg_commit_tx();

	LWLockAcquire(imgmod_state->lock, LW_EXCLUSIVE);
	imgmod_state->audit_head = (imgmod_state->audit_head + n) % IMGMOD_AUDIT_CAPACITY;
	imgmod_state->audit_count -= n;
	LWLockRelease(imgmod_state->lock);
	pfree(batch);
	return n;
}

PG_FUNCTION_INFO_V1(imgmod_rejection_counters);
Datum
imgmod_rejection_counters(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int s = 1; s < IMG_STATUS_COUNT; s++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		uint64		total;

		if (s == IMG_ERR_INTERRUPTED)
			continue;			/* a cancelled statement, never a rejection */
		total = imgmod_state ? pg_atomic_read_u64(&imgmod_state->rejections_by_status[s]) : 0;

		values[0] = CStringGetTextDatum(img_status_name((img_status) s));
		values[1] = CStringGetTextDatum(imgmod_sqlstate_text((img_status) s));
		values[2] = Int64GetDatum((int64) total);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(imgmod_audit_queue);
Datum
imgmod_audit_queue(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	int			queued = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (imgmod_state != NULL)
	{
		LWLockAcquire(imgmod_state->lock, LW_SHARED);
		queued = imgmod_state->audit_count;
		LWLockRelease(imgmod_state->lock);
	}
	values[0] = Int32GetDatum(queued);
	values[1] = Int32GetDatum(IMGMOD_AUDIT_CAPACITY);
	values[2] = Int64GetDatum(imgmod_state ? (int64) pg_atomic_read_u64(&imgmod_state->audit_dropped) : 0);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
