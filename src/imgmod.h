/*
 * imgmod.h — declarations shared by the extension's backend functions and
 * its background workers.
 */
#ifndef IMGMOD_H
#define IMGMOD_H

#include "postgres.h"

#include "imgcore.h"
#include "imgio.h"
#include "fmgr.h"
#include "utils/jsonb.h"

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
extern int	imgmod_render_threads;

/* imgmod.render_threads' upper bound (the image core's IMG_MAX_THREADS). */
#define IMGMOD_RENDER_THREADS_MAX 8
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
extern char *imgmod_cdn_purge_urls;
extern int	imgmod_cdn_purge_timeout_ms;
extern int	imgmod_cdn_purge_max_backoff_ms;

/* Edge purger (bgworker/edge_purger.c): is this a valid imgmod.cdn_purge_urls? */
bool		imgmod_cdn_purge_urls_valid(const char *list, char *why, size_t whylen);

typedef enum imgmod_mismatch
{
	IMGMOD_MISMATCH_WARN = 0,
	IMGMOD_MISMATCH_REJECT,
} imgmod_mismatch;

void		imgmod_define_settings(void);
void		imgmod_current_limits(img_limits *limits);
void		imgmod_background_rgb(uint8_t rgb[3]);
/*
 * Within SPI: refuse a missing or deleted image (messages name fn), lock
 * its row when asked, and return its next version number (upload.c).
 */
int32		imgmod_lock_image_for_new_version(const char *fn, int64 image_id, bool lock);

/* "#rrggbb" into rgb; false when it is not one. */
bool		imgmod_parse_colour(const char *s, uint8_t rgb[3]);

/*
 * imgmod.edit()'s ops (a jsonb array) as the image core's operations
 * (edit_ops.c); any mistake is an invalid_parameter_value naming ops[i].
 * fn names the function in messages.  Returns how many.
 */
int			imgmod_parse_edit_ops(const char *fn, Jsonb *ops, int max_ops, img_edit_op **out);

/* Ops one imgmod.edit() call may give. */
#define IMGMOD_EDIT_MAX_OPS 16

/*
 * What an edit is made from (imgmod._edit_source): the oldest version up
 * its chain whose master still exists, and the ops of the edits since.
 */
typedef struct imgmod_edit_source
{
	int32		version;
	Jsonb	   *inherited_ops;	/* applied before the edit's own */
	int32		width;
	int32		height;
	bool		has_focus;
	double		focus_x;
	double		focus_y;
	char		master_sha256[65];
	char	   *hires_key;
	int32		hires_bytes;
	bool		has_staged;
} imgmod_edit_source;

/* Within SPI, results in keep: false when the chain has no master left to edit from. */
bool		imgmod_read_edit_source(int64 image_id, int32 base, int nops, MemoryContext keep,
									imgmod_edit_source *out);

/*
 * The ops to apply to the source's master: its focal point, the inherited
 * ops, then ops.  Returns how many come before ops (to name ops[i] in
 * errors).
 */
int			imgmod_edit_chain(const char *fn, const imgmod_edit_source *source, const img_edit_op *ops,
							  int nops, img_edit_op **chain);

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

/* Lowercase hex SHA-256 of data into out[65]; an ERROR when it cannot be computed. */
void		imgmod_sha256_hex(const uint8_t *data, size_t len, char out[65]);
/* Lowercase hex MD5 of data into out[33]; an ERROR when it cannot be computed. */
void		imgmod_md5_hex(const uint8_t *data, size_t len, char out[33]);

/* ------------------------------------------------------------ imgio glue */

/*
 * The extension's hooks for the I/O library (io_hooks.c): memory from a
 * long-lived "imgmod I/O" context, transfers stopped by a pending cancel or
 * termination, requests and cache operations counted in shared memory,
 * warnings logged.
 */
const imgio_hooks *imgmod_io_hooks(void);

/* --------------------------------------------------------------- storage */

/*
 * Storage adapter (storage.c): the settings become imgio store
 * configurations, the library's errors the callers' messages.
 */
typedef enum imgmod_store
{
	IMGMOD_STORE_MAIN = 0,		/* compressed masters and variants */
	IMGMOD_STORE_HIRES,			/* full-resolution masters */
	IMGMOD_STORE_COUNT
} imgmod_store;

const char *imgmod_store_name(imgmod_store store);
/* "s3" when the store has an endpoint configured, else "local". */
const char *imgmod_store_backend(imgmod_store store);
/* A store's configuration as the settings say now (valid until the next call for it). */
const imgio_store_config *imgmod_store_config(imgmod_store store);

/*
 * Store objects (items' store from imgmod_store_config()): see
 * imgio_store_put_many().  Returns how many failed, each item saying why;
 * a pending cancel or termination that stopped the batch is raised.
 */
int			imgmod_store_put_many(imgio_put_item *items, int n);
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

/* Request accounting (shared_state.c), read by imgmod.stats. */
void		imgmod_count_request(imgmod_store store, imgio_verb verb, bool ok, int retries);

/* ----------------------------------------------------------------- cache */

/* Cache adapter (cache_redis.c): imgmod.redis_* settings and the installation's namespace. */
bool		imgmod_cache_enabled(void);
/* imgmod:{installation}:{image}:v{version}:{what} */
void		imgmod_cache_set_namespace(const char *installation_id);
void		imgmod_cache_key(char *buf, size_t size, int64 image_id, int version, const char *what);
int			imgmod_cache_put_many(int n, const char *const *keys, const uint8_t *const *values,
								  const size_t *lens);

/*
 * GET a key into palloc'd memory, returned only when it hashes to the
 * expected digest (image_versions.master_sha256, or a variant's unquoted
 * etag); a mismatch is counted as poisoned, logged and the key deleted.
 * The bytes come as a bytea in the caller's memory context, ready to be
 * returned or read in place.  NULL on a miss, a mismatch, an error, or when
 * the cache is off.
 */
bytea	   *imgmod_cache_get_verified(const char *key, imgio_digest_kind kind,
									  const char *expected_hex);
/* DEL the keys in one round trip; returns how many existed.  Never errors. */
int			imgmod_cache_delete_many(int n, const char *const *keys);
/* Drop every key of one image version: its source and the named presets. */
int			imgmod_cache_drop_version(int64 image_id, int version, int npresets,
									  char *const *presets);
void		imgmod_count_cache(imgio_cache_counter counter, int n);

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

/* A render finished on this many threads at most (imgmod.render_stats). */
void		imgmod_count_render(unsigned threads);

/*
 * img_thread_budget for renders in workers (bgworker/render_threads.c):
 * this thread, plus one per core idle right now, up to imgmod.render_threads.
 */
unsigned	imgmod_idle_core_budget(void *ctx);

#endif							/* IMGMOD_H */
