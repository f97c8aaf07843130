/*
 * publisher.c — the "imgmod publisher" background worker: the outbox's
 * other end.
 *
 * Status events are written to imgmod.events in the same transaction as
 * the change they describe (and sent on NOTIFY imgmod_status at commit).
 * With imgmod.kafka_brokers set, this worker sends them to the status topic
 * with librdkafka's idempotent producer (acks=all), keyed by image id so one
 * image's events stay ordered.  An event counts as published only when the
 * broker acknowledged it (delivery report); anything not acknowledged stays
 * unpublished and is sent again later, so consumers de-duplicate on
 * event_id.  The same worker consumes retry requests from the retry topic
 * (retry_request.c says what a valid one is) and calls imgmod.retry() for
 * the image each names; a message's offset is committed only after the
 * transaction that re-queued its jobs committed, so a crash in between
 * reads it again.  Published events are trimmed after
 * imgmod.outbox_retention.  While Kafka is configured an unpublished event
 * is never trimmed, even when no Kafka client could be created; with no
 * Kafka configured, NOTIFY is the only delivery and events are trimmed
 * after the same retention.
 *
 * Every statement names its schema, and the search_path is pinned to
 * pg_catalog, pg_temp when the worker connects, so nothing a user creates
 * can stand in for what the publisher calls.
 *
 * librdkafka runs its own threads; they never touch PostgreSQL: delivery
 * reports are served by rd_kafka_poll() on this process's main thread, and
 * signals are blocked while librdkafka creates its threads so that
 * PostgreSQL's handlers only ever run on the main thread.
 */
#include "imgmod.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PGDLLEXPORT void imgmod_publisher_main(Datum main_arg);

#define PUBLISH_BATCH 500

static rd_kafka_t *producer = NULL;
static rd_kafka_t *consumer = NULL;
/* The settings the clients were made with (secrets included; never logged). */
static char *connected_settings = NULL;

/*
 * Settings with which no client could be made, and when: they are tried
 * again only after CLIENT_RETRY_INTERVAL_MS (or once they change), so a bad
 * setting gives one warning every few seconds, not one per loop.
 */
#define CLIENT_RETRY_INTERVAL_MS 10000
static char *failed_settings = NULL;
static TimestampTz failed_at = 0;

/* Event ids acknowledged by the broker since the last UPDATE. */
static int64 *acked = NULL;
static int	nacked = 0;
static int	acked_cap = 0;
static int	failed_deliveries = 0;
static char last_delivery_error[256];

static void
delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	(void) rk;
	(void) opaque;
	/* Runs inside rd_kafka_poll() on the main thread: no PostgreSQL calls. */
	if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		if (nacked < acked_cap)
			acked[nacked++] = (int64) (intptr_t) msg->_private;
	}
	else
	{
		failed_deliveries++;
		snprintf(last_delivery_error, sizeof(last_delivery_error), "%s",
				 rd_kafka_err2str(msg->err));
	}
}

/*
 * Set one librdkafka property.  A refused secret is reported by name only:
 * librdkafka's message may quote the value.
 */
static bool
set_kafka_property(rd_kafka_conf_t *conf, const char *property, const char *value, bool secret)
{
	char		errstr[512];

	if (rd_kafka_conf_set(conf, property, value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
		return true;
	ereport(WARNING,
			(errmsg("imgmod publisher: Kafka setting %s: %s", property,
					secret ? "refused (the value is not shown)" : errstr)));
	return false;
}

/* Optional settings: an empty one keeps librdkafka's default. */
static bool
set_optional_kafka_property(rd_kafka_conf_t *conf, const char *property, const char *value,
							bool secret)
{
	if (value == NULL || value[0] == '\0')
		return true;
	return set_kafka_property(conf, property, value, secret);
}

/* Security settings, the same for the producer and the retry consumer. */
static bool
set_security_properties(rd_kafka_conf_t *conf)
{
	return set_optional_kafka_property(conf, "security.protocol", imgmod_kafka_security_protocol, false) &&
		set_optional_kafka_property(conf, "sasl.mechanisms", imgmod_kafka_sasl_mechanism, false) &&
		set_optional_kafka_property(conf, "sasl.username", imgmod_kafka_sasl_username, true) &&
		set_optional_kafka_property(conf, "sasl.password", imgmod_kafka_sasl_password, true) &&
		set_optional_kafka_property(conf, "ssl.ca.location", imgmod_kafka_ssl_ca_location, false);
}

static rd_kafka_t *
make_client(rd_kafka_type_t type, const char *brokers)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		errstr[512];
	rd_kafka_t *rk;
	sigset_t	all;
	sigset_t	saved;

#define SET(k, v) \
	if (!set_kafka_property(conf, k, v, false)) \
	{ \
		rd_kafka_conf_destroy(conf); \
		return NULL; \
	}
	SET("bootstrap.servers", brokers);
	SET("client.id", "imgmod");
	SET("socket.timeout.ms", "10000");
	SET("reconnect.backoff.ms", "100");
	SET("reconnect.backoff.max.ms", "5000");
	if (type == RD_KAFKA_PRODUCER)
	{
		SET("enable.idempotence", "true");
		SET("acks", "all");
		SET("linger.ms", "5");
		/* Give up on a message after 30 s; it stays unpublished and is sent again. */
		SET("message.timeout.ms", "30000");
		rd_kafka_conf_set_dr_msg_cb(conf, delivery_report);
	}
	else
	{
		SET("group.id", "imgmod-retry");
		SET("auto.offset.reset", "earliest");
		/* Offsets are committed by hand, once the re-queue has committed. */
		SET("enable.auto.commit", "false");
		SET("enable.auto.offset.store", "false");
	}
#undef SET
	if (!set_security_properties(conf))
	{
		rd_kafka_conf_destroy(conf);
		return NULL;
	}

	/* librdkafka's threads inherit this mask: keep every signal off them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (rk == NULL)
	{
		ereport(WARNING, (errmsg("imgmod publisher: cannot create a Kafka client: %s", errstr)));
		return NULL;
	}
	return rk;
}

/*
 * Bounded even when the broker is gone (a shutdown must not hang): give
 * acknowledgements two seconds, then drop what is still queued — those
 * events are still unpublished in the outbox and will be sent again — and
 * leave the consumer group without waiting for the broker.
 */
static void
disconnect(void)
{
	if (producer)
	{
		rd_kafka_flush(producer, 2000);
		rd_kafka_purge(producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(producer, 0);
		rd_kafka_destroy(producer);
		producer = NULL;
	}
	if (consumer)
	{
		rd_kafka_destroy_flags(consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
		consumer = NULL;
	}
	if (connected_settings)
		pfree(connected_settings);
	connected_settings = NULL;
}

static void
on_exit_disconnect(int code, Datum arg)
{
	(void) code;
	(void) arg;
	disconnect();
}

static bool
kafka_configured(void)
{
	return imgmod_kafka_brokers != NULL && imgmod_kafka_brokers[0] != '\0';
}

/* Every setting the clients are made from, as one string to compare. */
static char *
client_settings(void)
{
	return psprintf("%s\n%s\n%s\n%s\n%s\n%s\n%s",
					imgmod_kafka_brokers, imgmod_kafka_retry_topic,
					imgmod_kafka_security_protocol, imgmod_kafka_sasl_mechanism,
					imgmod_kafka_sasl_username, imgmod_kafka_sasl_password,
					imgmod_kafka_ssl_ca_location);
}

/* (Re)connect when the settings changed; true when Kafka is in use. */
static bool
ensure_clients(void)
{
	bool		wanted = kafka_configured();
	char	   *settings = client_settings();

	if (connected_settings && (!wanted || strcmp(connected_settings, settings) != 0))
		disconnect();
	if (!wanted)
		return false;
	if (producer != NULL)
		return true;
	if (failed_settings != NULL && strcmp(failed_settings, settings) == 0 &&
		!TimestampDifferenceExceeds(failed_at, GetCurrentTimestamp(), CLIENT_RETRY_INTERVAL_MS))
		return false;

	producer = make_client(RD_KAFKA_PRODUCER, imgmod_kafka_brokers);
	if (producer == NULL)
	{
		if (failed_settings)
			pfree(failed_settings);
		failed_settings = MemoryContextStrdup(TopMemoryContext, settings);
		failed_at = GetCurrentTimestamp();
		return false;
	}
	consumer = make_client(RD_KAFKA_CONSUMER, imgmod_kafka_brokers);
	if (consumer != NULL)
	{
		rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);

		rd_kafka_poll_set_consumer(consumer);
		rd_kafka_topic_partition_list_add(topics, imgmod_kafka_retry_topic, RD_KAFKA_PARTITION_UA);
		if (rd_kafka_subscribe(consumer, topics) != RD_KAFKA_RESP_ERR_NO_ERROR)
			ereport(WARNING, (errmsg("imgmod publisher: cannot subscribe to %s", imgmod_kafka_retry_topic)));
		rd_kafka_topic_partition_list_destroy(topics);
	}
	connected_settings = MemoryContextStrdup(TopMemoryContext, settings);
	elog(LOG, "imgmod publisher: sending status events to Kafka topic \"%s\" at %s, retry requests from \"%s\"",
		 imgmod_kafka_status_topic, imgmod_kafka_brokers, imgmod_kafka_retry_topic);
	return true;
}

static void
mark_published(void)
{
	Datum	   *ids;
	ArrayType  *arr;
	Oid			types[1] = {INT8ARRAYOID};
	Datum		values[1];

	if (nacked == 0)
		return;
	imgmod_bg_begin_tx(NULL);
	ids = palloc(sizeof(Datum) * nacked);
	for (int i = 0; i < nacked; i++)
		ids[i] = Int64GetDatum(acked[i]);
	arr = construct_array(ids, nacked, INT8OID, 8, true, TYPALIGN_DOUBLE);
	values[0] = PointerGetDatum(arr);
	if (SPI_execute_with_args("UPDATE imgmod.events SET published_at = pg_catalog.now() WHERE id = ANY($1) AND published_at IS NULL",
							  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "imgmod publisher: could not mark events published");
	imgmod_bg_commit_tx();
	nacked = 0;
}

/*
 * Send the oldest unpublished events and wait (bounded) for their delivery
 * reports.  Returns true when a full batch went out, so the caller loops.
 */
static bool
publish_batch(void)
{
	uint64		n;
	int			produced = 0;
	MemoryContext loop = CurrentMemoryContext;
	int64	   *ids;
	int64	   *keys;
	char	  **payloads;

	/* Still delivering the previous batch (broker down): do not resend it yet. */
	if (rd_kafka_outq_len(producer) > 0)
	{
		rd_kafka_poll(producer, 100);
		mark_published();
		return false;
	}

	imgmod_bg_begin_tx(NULL);
	if (SPI_execute("SELECT id, image_id, payload::pg_catalog.text FROM imgmod.events "
					"WHERE published_at IS NULL ORDER BY id LIMIT " CppAsString2(PUBLISH_BATCH),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod publisher: could not read the outbox");
	n = SPI_processed;
	ids = MemoryContextAlloc(loop, sizeof(int64) * (n + 1));
	keys = MemoryContextAlloc(loop, sizeof(int64) * (n + 1));
	payloads = MemoryContextAlloc(loop, sizeof(char *) * (n + 1));
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *p;

		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		keys[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		p = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
		payloads[i] = MemoryContextStrdup(loop, p);
	}
	imgmod_bg_commit_tx();
	if (n == 0)
		return false;

	if (acked_cap < (int) n)
	{
		acked = acked ? repalloc(acked, sizeof(int64) * n) : MemoryContextAlloc(TopMemoryContext, sizeof(int64) * n);
		acked_cap = (int) n;
	}
	failed_deliveries = 0;
	for (uint64 i = 0; i < n; i++)
	{
		char		key[32];
		rd_kafka_resp_err_t err;

		snprintf(key, sizeof(key), "%lld", (long long) keys[i]);
		err = rd_kafka_producev(producer,
								RD_KAFKA_V_TOPIC(imgmod_kafka_status_topic),
								RD_KAFKA_V_KEY(key, strlen(key)),
								RD_KAFKA_V_VALUE(payloads[i], strlen(payloads[i])),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_OPAQUE((void *) (intptr_t) ids[i]),
								RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			/* Local queue full or similar: stop here, the rest waits for the next round. */
			break;
		}
		produced++;
	}
	/* Wait a bounded time for acknowledgements, staying responsive. */
	for (int waited = 0; waited < 100 && rd_kafka_outq_len(producer) > 0; waited++)
	{
		rd_kafka_poll(producer, 50);
		CHECK_FOR_INTERRUPTS();
	}
	rd_kafka_poll(producer, 0);
	if (failed_deliveries > 0)
		elog(LOG, "imgmod publisher: %d event(s) not acknowledged (%s); they will be sent again",
			 failed_deliveries, last_delivery_error);
	mark_published();
	return produced == PUBLISH_BATCH;
}

/*
 * Re-queue what one valid retry request names, in a transaction of its
 * own; returns what became of it.  A version, when given, must exist.
 */
static imgmod_retry_outcome
requeue(int64 image_id, int32 version)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(image_id), Int32GetDatum(version)};
	char		nulls[2] = {' ', version > 0 ? ' ' : 'n'};
	imgmod_retry_outcome outcome;
	bool		isnull;
	Datum		requeued;

	imgmod_bg_begin_tx("imgmod: retry request");
	if (SPI_execute_with_args("SELECT CASE WHEN $2 IS NULL OR EXISTS "
							  "  (SELECT 1 FROM imgmod.image_versions v WHERE v.image_id = i.id AND v.version = $2) "
							  "  THEN imgmod.retry(i.id) END "
							  "FROM imgmod.images i WHERE i.id = $1",
							  2, types, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "imgmod publisher: retry of image %lld failed", (long long) image_id);
	if (SPI_processed == 0)
		outcome = IMGMOD_RETRY_UNKNOWN_IMAGE;
	else
	{
		requeued = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
			outcome = IMGMOD_RETRY_UNKNOWN_VERSION;
		else
			outcome = DatumGetInt32(requeued) > 0 ? IMGMOD_RETRY_REQUEUED : IMGMOD_RETRY_NOTHING_TO_RETRY;
	}
	imgmod_bg_commit_tx();
	return outcome;
}

/*
 * Retry requests, oldest first.  Each message is parsed, acted on, counted
 * and then its offset committed.  When the database step fails, the
 * consumer is moved back to that message, which is read again on the next
 * round; nothing after it is committed before it.
 */
static bool
consume_retry_requests(void)
{
	volatile bool any = false;

	for (int i = 0; i < 100; i++)
	{
		rd_kafka_message_t *volatile msg = rd_kafka_consumer_poll(consumer, 0);
		volatile imgmod_retry_outcome outcome;
		int64		image_id;
		int32		version;
		volatile bool failed = false;

		if (msg == NULL)
			break;
		if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				elog(LOG, "imgmod publisher: reading the retry topic: %s", rd_kafka_message_errstr(msg));
			rd_kafka_message_destroy(msg);
			continue;
		}
		outcome = imgmod_parse_retry_request(msg->payload, msg->len, &image_id, &version);
		if (outcome == IMGMOD_RETRY_REQUEUED)
		{
			PG_TRY();
			{
				outcome = requeue(image_id, version);
			}
			PG_CATCH();
			{
				EmitErrorReport();
				FlushErrorState();
				AbortCurrentTransaction();
				failed = true;
			}
			PG_END_TRY();
		}
		if (failed)
		{
			imgmod_count_retry_request(IMGMOD_RETRY_FAILED);
			elog(LOG, "imgmod publisher: retry request at offset %lld of \"%s\" [%d] will be read again",
				 (long long) msg->offset, rd_kafka_topic_name(msg->rkt), (int) msg->partition);
			rd_kafka_seek(msg->rkt, msg->partition, msg->offset, 0);
			rd_kafka_message_destroy(msg);
			break;
		}
		imgmod_count_retry_request(outcome);
		if (outcome == IMGMOD_RETRY_REQUEUED || outcome == IMGMOD_RETRY_NOTHING_TO_RETRY)
			elog(DEBUG1, "imgmod publisher: retry request for image %lld: %s",
				 (long long) image_id, imgmod_retry_outcome_name(outcome));
		else
			/* The reason and the size only: the bytes are whatever anyone sent. */
			elog(LOG, "imgmod publisher: ignoring retry request at offset %lld of \"%s\" [%d] (%zu bytes): %s",
				 (long long) msg->offset, rd_kafka_topic_name(msg->rkt), (int) msg->partition,
				 msg->len, imgmod_retry_outcome_name(outcome));
		any = true;
		/* Asynchronous: ordered after the commit above, without waiting on the broker. */
		rd_kafka_commit_message(consumer, msg, 1);
		rd_kafka_message_destroy(msg);
	}
	return any;
}

/*
 * Trim old events.  While Kafka is configured only acknowledged ones go,
 * whether or not a client could be made; without Kafka, NOTIFY was the
 * only delivery and every event goes after the retention.
 */
static void
trim_outbox(void)
{
	Oid			types[2] = {INT4OID, BOOLOID};
	Datum		values[2];

	imgmod_bg_begin_tx(NULL);
	values[0] = Int32GetDatum(imgmod_outbox_retention_s);
	values[1] = BoolGetDatum(kafka_configured());
	if (SPI_execute_with_args("DELETE FROM imgmod.events "
							  "WHERE created_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1) "
							  "AND (published_at IS NOT NULL OR NOT $2)",
							  2, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "imgmod publisher: could not trim the outbox");
	/* Idempotency keys are kept long enough for a client's retries, no longer. */
	values[0] = Int32GetDatum(imgmod_idempotency_retention_s);
	if (SPI_execute_with_args("DELETE FROM imgmod.idempotency_keys "
							  "WHERE created_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)",
							  1, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "imgmod publisher: could not trim the idempotency keys");
	imgmod_bg_commit_tx();
}

void
imgmod_publisher_main(Datum main_arg)
{
	MemoryContext loop_context;
	volatile TimestampTz last_trim = 0;

	(void) main_arg;
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(imgmod_database, NULL, 0);
	imgmod_pin_search_path();
	on_proc_exit(on_exit_disconnect, (Datum) 0);
	imgmod_publisher_attach();

	loop_context = AllocSetContextCreate(TopMemoryContext, "imgmod publisher loop",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		volatile bool busy = false;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(loop_context);
		PG_TRY();
		{
			if (imgmod_extension_installed())
			{
				bool		kafka = ensure_clients();
				TimestampTz now = GetCurrentTimestamp();

				pgstat_report_activity(STATE_RUNNING, "imgmod: publishing");
				if (kafka)
				{
					busy = publish_batch();
					if (consumer)
						busy |= consume_retry_requests();
				}
				/* at least once a minute, and as often as the retention asks */
				if (TimestampDifferenceExceeds(last_trim, now,
											   Min(60, Min(imgmod_outbox_retention_s, imgmod_idempotency_retention_s)) * 1000))
				{
					last_trim = now;
					trim_outbox();
				}
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
		}
		PG_END_TRY();
		MemoryContextReset(loop_context);
		pgstat_report_stat(true);

		if (!busy)
		{
			/* Woken by committing status changes; poll Kafka at least this often. */
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 producer ? 100 : imgmod_poll_interval_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			if (producer)
				rd_kafka_poll(producer, 0);
		}
	}
}
