/*
 * imgmod.h — declarations shared by the extension's backend functions and
 * its background workers.
 */
#ifndef IMGMOD_H
#define IMGMOD_H

#include "postgres.h"

#include "imgcore.h"
#include "fmgr.h"

/* ------------------------------------------------------------- settings */

extern char *imgmod_database;
extern int	imgmod_worker_count;
extern int	imgmod_max_bytes_kb;
extern double imgmod_max_megapixels;
extern int	imgmod_max_side;
extern int	imgmod_max_frames;
extern int	imgmod_max_scans;
extern int	imgmod_max_metadata_kb;
extern int	imgmod_master_quality;
extern int	imgmod_compressed_master_quality;
extern int	imgmod_compressed_master_max_side;
extern int	imgmod_mismatch_policy;
extern char *imgmod_background;
extern char *imgmod_storage_dir;
extern char *imgmod_hires_storage_dir;
extern int	imgmod_max_attempts;
extern int	imgmod_retry_base_delay_ms;
extern int	imgmod_retry_max_delay_ms;
extern int	imgmod_poll_interval_ms;
extern char *imgmod_s3_endpoint;
extern char *imgmod_s3_region;
extern char *imgmod_s3_bucket;
extern char *imgmod_s3_access_key;
extern char *imgmod_s3_secret_key;
extern char *imgmod_hires_s3_endpoint;
extern char *imgmod_hires_s3_region;
extern char *imgmod_hires_s3_bucket;
extern char *imgmod_hires_s3_access_key;
extern char *imgmod_hires_s3_secret_key;
extern bool imgmod_s3_virtual_host;
extern int	imgmod_s3_connect_timeout_ms;
extern int	imgmod_s3_timeout_ms;
extern int	imgmod_s3_retries;
extern char *imgmod_redis_url;
extern int	imgmod_redis_ttl_s;
extern int	imgmod_redis_timeout_ms;
extern char *imgmod_kafka_brokers;
extern char *imgmod_kafka_status_topic;
extern char *imgmod_kafka_retry_topic;
extern char *imgmod_kafka_security_protocol;
extern char *imgmod_kafka_sasl_mechanism;
extern char *imgmod_kafka_sasl_username;
extern char *imgmod_kafka_sasl_password;
extern char *imgmod_kafka_ssl_ca_location;
extern int	imgmod_outbox_retention_s;
extern int	imgmod_idempotency_retention_s;
extern int	imgmod_superseded_retention_s;

typedef enum imgmod_mismatch
{
	IMGMOD_MISMATCH_WARN = 0,
	IMGMOD_MISMATCH_REJECT,
} imgmod_mismatch;

void		imgmod_define_settings(void);
void		imgmod_current_limits(img_limits *limits);
void		imgmod_background_rgb(uint8_t rgb[3]);

/*
 * Route the image core's allocations into the current memory context, and
 * let a pending cancel, statement timeout or termination stop it.
 */
void		imgmod_install_core_hooks(void);

/* --------------------------------------------------------- shared state */

#define IMGMOD_MAX_WORKERS 32

void		imgmod_request_shmem(void);
void		imgmod_shmem_startup(void);
/* A worker announces itself so committing uploads can wake it. */
void		imgmod_worker_attach(int slot);
void		imgmod_worker_detach(int slot);
/* Set every attached worker's latch; returns how many. */
int			imgmod_wake_all_workers(void);
/* The publisher announces itself too; it is woken with the workers. */
void		imgmod_publisher_attach(void);
/* For background processes: has CREATE EXTENSION imgmod run in this database? */
bool		imgmod_extension_installed(void);
/* Workers currently attached. */
int			imgmod_attached_worker_count(void);
/*
 * A background process's short transaction (SPI connected, snapshot
 * pushed, activity named in pg_stat_activity unless NULL); the commit
 * returns to the memory context the caller was in.
 */
void		imgmod_bg_begin_tx(const char *activity);
void		imgmod_bg_commit_tx(void);
void		imgmod_pin_search_path(void);

/* Idempotency keys of upload() and replace() (idempotency.c). */
typedef struct imgmod_idempotency
{
	const char *function_name;	/* for messages */
	const char *operation;		/* upload or replace */
	int64		target_image;	/* replace: the image; upload: 0 */
	char	   *key;			/* NULL: the call has none */
	char	   *role_name;		/* the caller, outside SECURITY DEFINER */
	bool		replayed;		/* seen before: the result is below */
	int64		result_image;
	int32		result_version;
} imgmod_idempotency;

/* Reads and checks argument n (NULL or absent: no key). */
void		imgmod_idempotency_from_arg(FunctionCallInfo fcinfo, int n, const char *function_name,
										const char *operation, int64 target_image,
										imgmod_idempotency *out);
/*
 * Claims the key for this request; false when an earlier call with the same
 * key and request committed (its result is in *idem).  A different request
 * under the same key is an error.
 */
bool		imgmod_idempotency_claim(imgmod_idempotency *idem, const char *request_sha256);
void		imgmod_idempotency_record(const imgmod_idempotency *idem, int64 image_id, int32 version);
/* Wake workers when the current transaction commits (never on abort). */
void		imgmod_wake_workers_at_commit(void);

/* ---------------------------------------------------------------- audit */

typedef struct imgmod_audit_input
{
	bool		rejected;		/* false: accepted with a warning */
	img_status	status;
	const char *message;
	const char *claimed_name;
	const char *claimed_type;
	img_format	detected;
	int64		bytes;
	const char *sha256_hex;		/* may be NULL */
} imgmod_audit_input;

/* Backend side: queue an audit row in shared memory (survives rollback). */
void		imgmod_audit_record(const imgmod_audit_input *input);
/* Worker side: move queued rows into imgmod.rejections; returns how many. */
int			imgmod_audit_flush(void);

/* ---------------------------------------------------------------- errors */

/* SQLSTATE (as a MAKE_SQLSTATE code) for a core status. */
int			imgmod_sqlstate_for(img_status status);
/* The five-character SQLSTATE text of a status. */
const char *imgmod_sqlstate_text(img_status status);
/* What a user can do about a rejection, for errhint. */
const char *imgmod_hint_for(img_status status);
/*
 * After a core call: when it returned IMG_ERR_INTERRUPTED, raise the
 * pending cancel / timeout / termination error (never returns); otherwise
 * nothing.  An interruption is not a rejection and is never audited.
 */
void		imgmod_core_interrupted(img_status status);

/* -------------------------------------------------------------- hashing */

/* Lowercase hex SHA-256 of data into out[65]. */
void		imgmod_sha256_hex(const uint8_t *data, size_t len, char out[65]);
/* Lowercase hex MD5 of data into out[33]. */
void		imgmod_md5_hex(const uint8_t *data, size_t len, char out[33]);

/* --------------------------------------------------------------- storage */

typedef enum imgmod_store
{
	IMGMOD_STORE_MAIN = 0,		/* compressed masters and variants */
	IMGMOD_STORE_HIRES,			/* full-resolution masters */
	IMGMOD_STORE_COUNT
} imgmod_store;

typedef enum imgmod_verb
{
	IMGMOD_VERB_PUT = 0,
	IMGMOD_VERB_GET,
	IMGMOD_VERB_DELETE,
	IMGMOD_VERB_COUNT
} imgmod_verb;

const char *imgmod_store_name(imgmod_store store);
const char *imgmod_verb_name(imgmod_verb verb);
/* "s3" when the store has an endpoint configured, else "local". */
const char *imgmod_store_backend(imgmod_store store);

/* Object keys contain only [a-z0-9/._-]. */
void		imgmod_variant_key(char *buf, size_t size, int64 image_id, int version,
							   const char *preset);
void		imgmod_master_key(char *buf, size_t size, int64 image_id, int version);
void		imgmod_hires_key(char *buf, size_t size, int64 image_id, int version);
bool		imgmod_key_is_safe(const char *key);

/* One object of a batch written with imgmod_store_put_many(). */
typedef struct imgmod_put_item
{
	imgmod_store store;
	const char *key;
	const uint8_t *data;
	size_t		len;
	const char *content_type;
	const char *cache_control;
	bool		ok;				/* out */
	char		etag[33];		/* out: MD5 hex the store reported, or "" */
	char		error[1024];	/* out, when !ok */
} imgmod_put_item;

/*
 * Store objects: one PUT each to S3 when the store has an endpoint, all in
 * parallel and each retried like a single request; else an atomic file
 * write (temp file, fsync, rename, fsync directory).  Returns how many
 * failed; each item says whether it was stored and, if not, why.  Never
 * ereports, so a worker can record the failure on the job.  Each request
 * is counted in shared memory.
 */
int			imgmod_store_put_many(imgmod_put_item *items, int n);
/*
 * Read an object whose size the database recorded as expected_bytes;
 * palloc'd bytea, or NULL with errbuf filled.  An object of another size is
 * refused (a larger one without reading more than expected_bytes of it):
 * the stores are not trusted to hold what imgmod wrote.
 */
bytea	   *imgmod_store_get(imgmod_store store, const char *key, size_t expected_bytes,
							 char *errbuf, size_t errsize);
/*
 * Remove an object.  An object that is already gone counts as removed, so
 * a purge that is interrupted and run again succeeds.
 */
bool		imgmod_store_delete(imgmod_store store, const char *key, char *errbuf, size_t errsize);

/* Backends (storage_local.c, storage_s3.c); same contracts as above. */
bool		imgmod_local_put(imgmod_store store, const char *key, const uint8_t *data,
							 size_t len, char *errbuf, size_t errsize);
bytea	   *imgmod_local_get(imgmod_store store, const char *key, size_t expected_bytes,
							 char *errbuf, size_t errsize);
bool		imgmod_local_delete(imgmod_store store, const char *key, char *errbuf, size_t errsize);

typedef struct imgmod_s3_target
{
	const char *endpoint;		/* http(s)://host[:port] */
	const char *region;
	const char *bucket;
	const char *access_key;
	const char *secret_key;
	bool		virtual_host;	/* bucket.host/key instead of host/bucket/key */
} imgmod_s3_target;

/* The configured S3 target of a store, or false when it has none. */
bool		imgmod_s3_target_for(imgmod_store store, imgmod_s3_target *target);
void		imgmod_s3_global_init(void);
bytea	   *imgmod_s3_get(const imgmod_s3_target *t, imgmod_store store, const char *key,
						  size_t expected_bytes, char *errbuf, size_t errsize);
int			imgmod_s3_put_many(const imgmod_s3_target *targets, imgmod_put_item *items, int n);
bool		imgmod_s3_delete(const imgmod_s3_target *t, imgmod_store store, const char *key,
							 char *errbuf, size_t errsize);

/* Request accounting (shared_state.c), read by imgmod.stats. */
void		imgmod_count_request(imgmod_store store, imgmod_verb verb, bool ok, int retries);

/* ----------------------------------------------------------------- cache */

typedef enum imgmod_cache_counter
{
	IMGMOD_CACHE_WRITE = 0,		/* keys stored */
	IMGMOD_CACHE_HIT,
	IMGMOD_CACHE_MISS,
	IMGMOD_CACHE_SKIPPED_WRITE, /* Redis down or slow: write skipped */
	IMGMOD_CACHE_SKIPPED_READ,	/* Redis down or slow: read skipped */
	IMGMOD_CACHE_DELETE,		/* keys of superseded versions removed */
	IMGMOD_CACHE_SKIPPED_DELETE,	/* Redis down or slow: removal skipped (the TTL ends them) */
	IMGMOD_CACHE_POISONED,		/* read bytes that did not match Postgres's digest: discarded */
	IMGMOD_CACHE_COUNTER_COUNT
} imgmod_cache_counter;

bool		imgmod_cache_enabled(void);
/* imgmod:{installation}:{image}:v{version}:{what} */
void		imgmod_cache_set_namespace(const char *installation_id);
void		imgmod_cache_key(char *buf, size_t size, int64 image_id, int version, const char *what);
int			imgmod_cache_put_many(int n, const char *const *keys, const uint8_t *const *values,
								  const size_t *lens);
/* The digest Postgres holds for a cached object. */
typedef enum imgmod_digest_kind
{
	IMGMOD_DIGEST_SHA256,		/* image_versions.master_sha256 */
	IMGMOD_DIGEST_MD5			/* variants.etag, unquoted */
} imgmod_digest_kind;

/*
 * GET a key into palloc'd memory, returned only when it hashes to the
 * expected digest; a mismatch is counted as poisoned and the key deleted.
 * NULL on a miss, a mismatch, an error, or when the cache is off.
 */
uint8_t    *imgmod_cache_get_verified(const char *key, imgmod_digest_kind kind,
									  const char *expected_hex, size_t *len);
/* The unquoted MD5 hex of a variants.etag, or false when it is not a plain MD5. */
bool		imgmod_etag_md5(const char *etag, char out[33]);
/* DEL the keys in one round trip; returns how many existed.  Never errors. */
int			imgmod_cache_delete_many(int n, const char *const *keys);
/* Drop every key of one image version: its source and the named presets. */
int			imgmod_cache_drop_version(int64 image_id, int version, int npresets,
									  char *const *presets);
void		imgmod_count_cache(imgmod_cache_counter counter, int n);

/* --------------------------------------------------------- retry topic */

/* Largest retry request read; anything longer is refused unread. */
#define IMGMOD_RETRY_REQUEST_MAX_BYTES 1024

/* What became of one message on the retry topic (imgmod.retry_request_stats). */
typedef enum imgmod_retry_outcome
{
	IMGMOD_RETRY_REQUEUED = 0,	/* valid, and imgmod.retry() re-queued jobs */
	IMGMOD_RETRY_NOTHING_TO_RETRY,	/* valid, the image had no failed or dead job */
	IMGMOD_RETRY_UNKNOWN_IMAGE,
	IMGMOD_RETRY_UNKNOWN_VERSION,
	IMGMOD_RETRY_MALFORMED,		/* not JSON */
	IMGMOD_RETRY_WRONG_TYPE,	/* not an object or number; a field not a whole number */
	IMGMOD_RETRY_NOT_POSITIVE,
	IMGMOD_RETRY_OVERFLOW,
	IMGMOD_RETRY_MISSING_IMAGE_ID,
	IMGMOD_RETRY_UNKNOWN_FIELD,
	IMGMOD_RETRY_DUPLICATE_FIELD,
	IMGMOD_RETRY_TOO_LARGE,
	IMGMOD_RETRY_FAILED,		/* the database step failed; the message is read again */
	IMGMOD_RETRY_OUTCOME_COUNT
} imgmod_retry_outcome;

/*
 * Parse a retry request; IMGMOD_RETRY_REQUEUED means valid, with *version 0
 * when the message names none.  Anything else is the reason it is refused.
 */
imgmod_retry_outcome imgmod_parse_retry_request(const char *data, size_t len,
												int64 *image_id, int32 *version);
const char *imgmod_retry_outcome_name(imgmod_retry_outcome outcome);
void		imgmod_count_retry_request(imgmod_retry_outcome outcome);

#endif							/* IMGMOD_H */
