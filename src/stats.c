/*
 * stats.c — imgmod.store_counters(): object-store requests counted in
 * shared memory since the server started, by store and verb.  This is the
 * number behind "rendering never reads object storage": after N uploads the
 * main store shows GET 0 (unless someone called imgmod.fetch()) and PUT
 * equal to the objects written.
 */
#include "imgmod.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "shared_state.h"

PG_FUNCTION_INFO_V1(imgmod_store_counters);
Datum
imgmod_store_counters(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int st = 0; st < IMGMOD_STORE_COUNT; st++)
	{
		for (int v = 0; v < IMGIO_VERB_COUNT; v++)
		{
			Datum		values[6];
			bool		nulls[6] = {false, false, false, false, false, false};

			values[0] = CStringGetTextDatum(imgmod_store_name((imgmod_store) st));
			values[1] = CStringGetTextDatum(imgmod_store_backend((imgmod_store) st));
			values[2] = CStringGetTextDatum(imgio_verb_name((imgio_verb) v));
			values[3] = Int64GetDatum(imgmod_state ? (int64) pg_atomic_read_u64(&imgmod_state->requests[st][v]) : 0);
			values[4] = Int64GetDatum(imgmod_state ? (int64) pg_atomic_read_u64(&imgmod_state->request_failures[st][v]) : 0);
			values[5] = Int64GetDatum(imgmod_state ? (int64) pg_atomic_read_u64(&imgmod_state->request_retries[st][v]) : 0);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/* One (name, total) row per counter of a shared-memory array. */
static void
return_named_counters(FunctionCallInfo fcinfo, const char *const *names,
					  pg_atomic_uint64 *counters, int n)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < n; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(names[i]);
		values[1] = Int64GetDatum(counters ? (int64) pg_atomic_read_u64(&counters[i]) : 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

PG_FUNCTION_INFO_V1(imgmod_cache_counters);
Datum
imgmod_cache_counters(PG_FUNCTION_ARGS)
{
	static const char *const names[IMGIO_CACHE_COUNTER_COUNT] = {
		[IMGIO_CACHE_WRITE] = "written",
		[IMGIO_CACHE_HIT] = "hit",
		[IMGIO_CACHE_MISS] = "miss",
		[IMGIO_CACHE_SKIPPED_WRITE] = "skipped_write",
		[IMGIO_CACHE_SKIPPED_READ] = "skipped_read",
		[IMGIO_CACHE_DELETE] = "deleted",
		[IMGIO_CACHE_SKIPPED_DELETE] = "skipped_delete",
		[IMGIO_CACHE_POISONED] = "poisoned",
	};

	return_named_counters(fcinfo, names, imgmod_state ? imgmod_state->cache : NULL,
						  IMGIO_CACHE_COUNTER_COUNT);
	return (Datum) 0;
}

/*
 * imgmod.retry_request_counters(): messages read from the Kafka retry topic
 * since server start, by what became of them.
 */
PG_FUNCTION_INFO_V1(imgmod_retry_request_counters);
Datum
imgmod_retry_request_counters(PG_FUNCTION_ARGS)
{
	const char *names[IMGMOD_RETRY_OUTCOME_COUNT];

	for (int i = 0; i < IMGMOD_RETRY_OUTCOME_COUNT; i++)
		names[i] = imgmod_retry_outcome_name((imgmod_retry_outcome) i);
	return_named_counters(fcinfo, names, imgmod_state ? imgmod_state->retry_requests : NULL,
						  IMGMOD_RETRY_OUTCOME_COUNT);
	return (Datum) 0;
}

/*
 * imgmod.render_counters(): renders since server start by the most threads
 * they were given (imgmod.render_threads, lowered to the idle cores).
 */
PG_FUNCTION_INFO_V1(imgmod_render_counters);
Datum
imgmod_render_counters(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int t = 1; t <= IMGMOD_RENDER_THREADS_MAX; t++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = Int32GetDatum(t);
		values[1] = Int64GetDatum(imgmod_state ? (int64) pg_atomic_read_u64(&imgmod_state->renders_by_threads[t]) : 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
