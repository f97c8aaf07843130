/*
 * shared_state.h — layout of imgmod's shared memory (internal).
 */
#ifndef IMGMOD_SHARED_STATE_H
#define IMGMOD_SHARED_STATE_H

#include "imgmod.h"

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/lwlock.h"

/* Audit rows waiting for a worker to insert them. */
#define IMGMOD_AUDIT_CAPACITY 256

typedef struct imgmod_audit_entry
{
	bool		rejected;
	int			status;
	char		message[IMG_ERROR_MESSAGE_MAX];
	char		claimed_name[256];
	char		claimed_type[128];
	char		detected[32];
	int64		bytes;
	char		sha256[65];
	char		role_name[NAMEDATALEN];
	char		application_name[NAMEDATALEN];
	char		client_addr[64];
	int			backend_pid;
	TimestampTz occurred_at;
} imgmod_audit_entry;

typedef struct imgmod_worker_slot
{
	pid_t		pid;
	int			pgprocno;
} imgmod_worker_slot;

typedef struct imgmod_shared
{
	LWLock	   *lock;
	imgmod_worker_slot workers[IMGMOD_MAX_WORKERS];
	imgmod_worker_slot publisher;

	/* ring buffer: head is the oldest entry, count how many follow it */
	int			audit_head;
	int			audit_count;
	imgmod_audit_entry audit[IMGMOD_AUDIT_CAPACITY];
	pg_atomic_uint64 audit_dropped;
	pg_atomic_uint64 rejections_by_status[IMG_STATUS_COUNT];

	/* object-store requests by store and verb (imgmod.stats) */
	pg_atomic_uint64 requests[IMGMOD_STORE_COUNT][IMGIO_VERB_COUNT];
	pg_atomic_uint64 request_failures[IMGMOD_STORE_COUNT][IMGIO_VERB_COUNT];
	pg_atomic_uint64 request_retries[IMGMOD_STORE_COUNT][IMGIO_VERB_COUNT];

	/* Redis cache operations (imgmod.cache_stats) */
	pg_atomic_uint64 cache[IMGIO_CACHE_COUNTER_COUNT];

	/* messages on the Kafka retry topic by outcome (imgmod.retry_request_stats) */
	pg_atomic_uint64 retry_requests[IMGMOD_RETRY_OUTCOME_COUNT];

	/* renders by the most threads they used, [1..IMGMOD_RENDER_THREADS_MAX] (imgmod.render_stats) */
	pg_atomic_uint64 renders_by_threads[IMGMOD_RENDER_THREADS_MAX + 1];
} imgmod_shared;

extern imgmod_shared *imgmod_state;

#endif
