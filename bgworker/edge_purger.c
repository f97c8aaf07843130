/*
 * edge_purger.c — the "imgmod edge purger" background worker: keeps every
 * CDN edge in imgmod.cdn_purge_urls exact.
 *
 * It reads the events outbox, not NOTIFY: each edge has a durable cursor in
 * imgmod.cdn_edges, and the events after it whose change makes something
 * an edge may hold wrong (imgmod.cdn_purge_keys: a version became current,
 * a superseded version was purged, an image was deleted) are sent to that
 * edge as one surrogate-key purge.  The cursor moves only when the edge
 * answered 200, so an edge that is down, refusing or restarted gets the
 * purge when it is back (the wait between attempts doubles up to
 * imgmod.cdn_purge_max_backoff), and a PostgreSQL restart loses nothing.
 *
 * Events are read in (txid, id) order and only from transactions older
 * than every transaction still running: ids come from a sequence when the
 * event is written, so a transaction can commit an event whose id is below
 * one already read; ordering by the writing transaction and waiting for the
 * snapshot's xmin to pass it means the cursor never steps over an event
 * that becomes visible later.
 *
 * An edge that misses a purged object fetches it again from imgmod-origin,
 * which learns of the same change from NOTIFY.  Should the origin not have
 * dropped its entry yet when the edge's fetch arrives, the edge would hold
 * the old bytes, so each delivered purge is sent once more after
 * SETTLE_DELAY_MS; that repeat is kept in memory only (the durable purge
 * was already acknowledged).
 *
 * No transaction is open while a request is on the wire.
 */
#include "imgmod.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "io/imgio.h"

PGDLLEXPORT void imgmod_edge_purger_main(Datum main_arg);

#define MAX_EDGES 16
#define MAX_URL_LENGTH 512
/* Events read per purge request; their keys must fit one header. */
#define EVENTS_PER_PURGE 64
/* How often the outbox is looked at while edges are configured. */
#define POLL_INTERVAL_MS 100
/* When a delivered purge is sent again (see the header comment). */
#define SETTLE_DELAY_MS 500
#define MAX_SETTLE_PURGES 256

bool
imgmod_cdn_purge_urls_valid(const char *list, char *why, size_t whylen)
{
	int			n = 0;
	const char *p = list;

	if (list == NULL)
		return true;
	while (*p)
	{
		const char *start;
		const char *end;
		size_t		len;

		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && end[-1] == ' ')
			end--;
		len = end - start;
		if (++n > MAX_EDGES)
		{
			snprintf(why, whylen, "at most %d edges may be listed", MAX_EDGES);
			return false;
		}
		if (len > MAX_URL_LENGTH)
		{
			snprintf(why, whylen, "edge %d: a URL is at most %d characters", n, MAX_URL_LENGTH);
			return false;
		}
		if (!(len > 7 && strncmp(start, "http://", 7) == 0) && !(len > 8 && strncmp(start, "https://", 8) == 0))
		{
			snprintf(why, whylen, "edge %d: \"%.*s\" is not an http:// or https:// URL", n,
					 (int) Min(len, 80), start);
			return false;
		}
		for (const char *c = start; c < end; c++)
		{
			/* purges are authorised by address; a URL carries no credentials */
			if (*c == '@' || (unsigned char) *c <= ' ' || *c == 0x7f)
			{
				snprintf(why, whylen, "edge %d: a purge URL may not contain %s", n,
						 *c == '@' ? "credentials (@)" : "spaces or control characters");
				return false;
			}
		}
	}
	return true;
}

/* One edge as read at the start of a round. */
typedef struct edge_state
{
	char	   *url;
	char	   *cursor_txid;
	int64		cursor_event;
	int			failures_in_row;
} edge_state;

/* A delivered purge to be sent once more. */
typedef struct settle_purge
{
	char		url[MAX_URL_LENGTH + 1];
	char		keys[IMGIO_PURGE_KEYS_MAX + 1];
	TimestampTz due;
} settle_purge;

static settle_purge *settle_queue = NULL;
static int	settle_count = 0;

/* Make imgmod.cdn_edges hold exactly the configured URLs (new ones start at now). */
static void
sync_edges(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	imgmod_bg_begin_tx(NULL);
	values[0] = CStringGetTextDatum(imgmod_cdn_purge_urls ? imgmod_cdn_purge_urls : "");
	if (SPI_execute_with_args("WITH wanted AS ("
							  "  SELECT DISTINCT pg_catalog.btrim(u) AS url "
							  "    FROM pg_catalog.unnest(pg_catalog.string_to_array($1, ',')) u "
							  "   WHERE pg_catalog.btrim(u) <> ''), "
							  "gone AS (DELETE FROM imgmod.cdn_edges c "
							  "  WHERE NOT EXISTS (SELECT 1 FROM wanted w WHERE w.url = c.purge_url)) "
							  "INSERT INTO imgmod.cdn_edges (purge_url, cursor_txid, cursor_event) "
							  "SELECT url, pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()), 0 FROM wanted "
							  "ON CONFLICT (purge_url) DO NOTHING",
							  1, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "imgmod edge purger: could not record the configured edges");
	imgmod_bg_commit_tx();
}

/* Repeats queued by an earlier run of this process are gone with it: counted as done. */
static void
forget_repeats(void)
{
	imgmod_bg_begin_tx(NULL);
	if (SPI_execute("UPDATE imgmod.cdn_edges SET purges_repeated = purges_acknowledged "
					"WHERE purges_repeated <> purges_acknowledged", false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "imgmod edge purger: could not reset the repeat counters");
	imgmod_bg_commit_tx();
}

/* The edges whose next attempt is due. */
static int
due_edges(edge_state *edges)
{
	MemoryContext outer = CurrentMemoryContext;
	int			n;

	imgmod_bg_begin_tx(NULL);
	if (SPI_execute("SELECT purge_url, cursor_txid::pg_catalog.text, cursor_event, failures_in_row "
					"FROM imgmod.cdn_edges WHERE next_attempt_at <= pg_catalog.now() "
					"ORDER BY purge_url LIMIT " CppAsString2(MAX_EDGES), true, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod edge purger: could not read imgmod.cdn_edges");
	n = (int) SPI_processed;
	for (int i = 0; i < n; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		edges[i].url = MemoryContextStrdup(outer, SPI_getvalue(row, desc, 1));
		edges[i].cursor_txid = MemoryContextStrdup(outer, SPI_getvalue(row, desc, 2));
		edges[i].cursor_event = DatumGetInt64(SPI_getbinval(row, desc, 3, &isnull));
		edges[i].failures_in_row = DatumGetInt32(SPI_getbinval(row, desc, 4, &isnull));
	}
	imgmod_bg_commit_tx();
	return n;
}

/*
 * The next events after an edge's cursor, as one purge: the keys to send
 * (empty when none of the events changes anything served), how many events
 * need a purge, and where the cursor goes once the edge acknowledged.
 * False when there is nothing after the cursor.
 */
static bool
next_batch(const edge_state *edge, StringInfo keys, int *events, char **to_txid, int64 *to_event)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2];
	MemoryContext outer = CurrentMemoryContext;
	uint64		n;

	imgmod_bg_begin_tx(NULL);
	values[0] = CStringGetTextDatum(edge->cursor_txid);
	values[1] = Int64GetDatum(edge->cursor_event);
	if (SPI_execute_with_args("SELECT e.txid::pg_catalog.text, e.id, "
							  "       pg_catalog.array_to_string(imgmod.cdn_purge_keys(e.image_id, e.version, e.status), ' ') "
							  "  FROM imgmod.events e "
							  " WHERE (e.txid, e.id) > ($1::pg_catalog.xid8, $2) "
							  "   AND e.txid < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) "
							  " ORDER BY e.txid, e.id LIMIT " CppAsString2(EVENTS_PER_PURGE),
							  2, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod edge purger: could not read the outbox");
	n = SPI_processed;
	*events = 0;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *k = SPI_getvalue(row, desc, 3);
		bool		isnull;

		if (k != NULL && k[0] != '\0')
		{
			/* the rest waits for the next request rather than overflow this one */
			if (keys->len + 1 + (int) strlen(k) > IMGIO_PURGE_KEYS_MAX)
				break;
			if (keys->len > 0)
				appendStringInfoChar(keys, ' ');
			appendStringInfoString(keys, k);
			(*events)++;
		}
		*to_txid = MemoryContextStrdup(outer, SPI_getvalue(row, desc, 1));
		*to_event = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
	}
	imgmod_bg_commit_tx();
	return n > 0;
}

static void
record_delivery(const edge_state *edge, bool sent, bool ok, int events, const char *to_txid,
				int64 to_event, const char *error)
{
	Oid			types[7] = {TEXTOID, TEXTOID, INT8OID, BOOLOID, INT4OID, TEXTOID, INT4OID};
	Datum		values[7];
	char		nulls[7] = "       ";

	imgmod_bg_begin_tx(NULL);
	values[0] = CStringGetTextDatum(edge->url);
	values[1] = CStringGetTextDatum(to_txid ? to_txid : "0");
	values[2] = Int64GetDatum(to_event);
	values[3] = BoolGetDatum(sent);
	values[4] = Int32GetDatum(events);
	if (error)
		values[5] = CStringGetTextDatum(error);
	else
		nulls[5] = 'n';
	values[6] = Int32GetDatum(imgmod_cdn_purge_max_backoff_ms);
	if (ok)
	{
		/* the cursor moves only from where this round read it */
		if (SPI_execute_with_args("UPDATE imgmod.cdn_edges SET cursor_txid = $2::pg_catalog.xid8, cursor_event = $3, "
								  "  purges_sent = purges_sent + $4::int, "
								  "  purges_acknowledged = purges_acknowledged + $4::int, "
								  "  purges_retried = purges_retried + ($4 AND failures_in_row > 0)::int, "
								  "  events_delivered = events_delivered + $5, failures_in_row = 0, "
								  "  last_error = NULL, next_attempt_at = pg_catalog.now(), "
								  "  last_acknowledged_at = CASE WHEN $4 THEN pg_catalog.now() ELSE last_acknowledged_at END "
								  "WHERE purge_url = $1",
								  7, types, values, nulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "imgmod edge purger: could not move an edge's cursor");
	}
	else if (SPI_execute_with_args("UPDATE imgmod.cdn_edges SET purges_sent = purges_sent + 1, "
								   "  purges_retried = purges_retried + (failures_in_row > 0)::int, "
								   "  failures_in_row = failures_in_row + 1, last_error = $6, "
								   "  next_attempt_at = pg_catalog.now() + pg_catalog.make_interval(secs => "
								   "    LEAST($7::float8, 250 * pg_catalog.power(2, LEAST(failures_in_row, 20)))"
								   "    * (0.8 + 0.4 * pg_catalog.random()) / 1000) "
								   "WHERE purge_url = $1",
								   7, types, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "imgmod edge purger: could not record a failed purge");
	imgmod_bg_commit_tx();
}

static void
count_repeat(const char *url)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	imgmod_bg_begin_tx(NULL);
	values[0] = CStringGetTextDatum(url);
	if (SPI_execute_with_args("UPDATE imgmod.cdn_edges SET purges_repeated = purges_repeated + 1 WHERE purge_url = $1",
							  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "imgmod edge purger: could not count a repeated purge");
	imgmod_bg_commit_tx();
}

static void
queue_settle_purge(const char *url, const char *keys)
{
	settle_purge *s;

	if (settle_count >= MAX_SETTLE_PURGES)
	{
		/* a repeat is a safety net; the durable purge was delivered */
		count_repeat(url);
		return;
	}
	s = &settle_queue[settle_count++];
	strlcpy(s->url, url, sizeof(s->url));
	strlcpy(s->keys, keys, sizeof(s->keys));
	s->due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SETTLE_DELAY_MS);
}

/* Send the repeats that are due; returns the milliseconds until the next one (-1: none). */
static long
send_settle_purges(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		next = -1;
	int			kept = 0;

	for (int i = 0; i < settle_count; i++)
	{
		settle_purge *s = &settle_queue[i];

		if (s->due <= now)
		{
			imgio_error err = {0};
			long		status;

			if (!imgio_edge_purge(s->url, s->keys, imgmod_cdn_purge_timeout_ms, &status, &err))
				ereport(LOG, (errmsg("imgmod edge purger: repeated purge to %s failed: %s", s->url, err.message)));
			count_repeat(s->url);
			continue;
		}
		if (next < 0 || s->due - now < next * 1000)
			next = (long) ((s->due - now) / 1000);
		if (kept != i)
			settle_queue[kept] = *s;
		kept++;
	}
	settle_count = kept;
	return next;
}

/* One request to one edge; true when there may be more to send at once. */
static bool
deliver_to_edge(const edge_state *edge)
{
	StringInfoData keys;
	int			events = 0;
	char	   *to_txid = NULL;
	int64		to_event = 0;
	imgio_error err = {0};
	long		status;
	bool		ok;

	initStringInfo(&keys);
	if (!next_batch(edge, &keys, &events, &to_txid, &to_event))
		return false;
	if (keys.len == 0)
	{
		/* nothing an edge holds changed: just move past these events */
		record_delivery(edge, false, true, 0, to_txid, to_event, NULL);
		return true;
	}

	pgstat_report_activity(STATE_RUNNING, "imgmod: purging an edge");
	ok = imgio_edge_purge(edge->url, keys.data, imgmod_cdn_purge_timeout_ms, &status, &err);
	if (ok)
	{
		record_delivery(edge, true, true, events, to_txid, to_event, NULL);
		if (edge->failures_in_row > 0)
			ereport(LOG, (errmsg("imgmod edge purger: %s acknowledges purges again after %d failed attempts",
								 edge->url, edge->failures_in_row)));
		queue_settle_purge(edge->url, keys.data);
		return true;
	}
	record_delivery(edge, true, false, events, to_txid, to_event, err.message);
	/* the first failure of a streak is worth a warning; the rest are in cdn_purge_status */
	ereport(edge->failures_in_row == 0 ? WARNING : DEBUG1,
			(errmsg("imgmod edge purger: purge to %s not delivered: %s", edge->url, err.message),
			 errhint("It is sent again with backoff; SELECT * FROM imgmod.cdn_purge_status shows what is pending.")));
	return false;
}

void
imgmod_edge_purger_main(Datum main_arg)
{
	MemoryContext loop_context;
	char	   *volatile synced_urls = NULL;

	(void) main_arg;
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(imgmod_database, NULL, 0);
	imgmod_pin_search_path();

	settle_queue = MemoryContextAlloc(TopMemoryContext, sizeof(settle_purge) * MAX_SETTLE_PURGES);
	loop_context = AllocSetContextCreate(TopMemoryContext, "imgmod edge purger loop",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		volatile bool busy = false;
		volatile long wait_ms;
		bool		configured = imgmod_cdn_purge_urls != NULL && imgmod_cdn_purge_urls[0] != '\0';

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			configured = imgmod_cdn_purge_urls != NULL && imgmod_cdn_purge_urls[0] != '\0';
		}
		wait_ms = configured ? POLL_INTERVAL_MS : imgmod_poll_interval_ms;
		MemoryContextSwitchTo(loop_context);
		PG_TRY();
		{
			if (imgmod_extension_installed())
			{
				edge_state edges[MAX_EDGES];
				int			n;
				long		settle_ms;

				/* the table follows the setting, also when it was emptied */
				if (synced_urls == NULL)
					forget_repeats();
				if (synced_urls == NULL || strcmp(synced_urls, imgmod_cdn_purge_urls ? imgmod_cdn_purge_urls : "") != 0)
				{
					sync_edges();
					if (synced_urls)
						pfree(synced_urls);
					synced_urls = MemoryContextStrdup(TopMemoryContext,
													  imgmod_cdn_purge_urls ? imgmod_cdn_purge_urls : "");
				}
				n = configured ? due_edges(edges) : 0;
				for (int i = 0; i < n; i++)
					busy |= deliver_to_edge(&edges[i]);
				settle_ms = send_settle_purges();
				if (settle_ms >= 0 && settle_ms < wait_ms)
					wait_ms = Max(settle_ms, 1);
				pgstat_report_activity(STATE_IDLE, NULL);
			}
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(loop_context);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			busy = false;
			/* a failing round is not retried in a tight loop */
			wait_ms = Max(wait_ms, 1000);
		}
		PG_END_TRY();
		MemoryContextReset(loop_context);
		pgstat_report_stat(true);

		if (!busy)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}
