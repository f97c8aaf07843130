/*
 * imgio.h — imgmod's object-store and cache I/O, without PostgreSQL.
 *
 * The same code serves the extension's workers and backends and the CDN
 * origin (a plain multi-threaded C daemon): S3 over libcurl with SigV4, the
 * local-directory store, Redis through hiredis, the object-key rules and
 * the digests that caches are checked against.
 *
 * Conventions, as in the image core (src/core/imgcore.h): plain C11, no
 * PostgreSQL header; a failing call returns false (or a failure count) and
 * describes itself in an imgio_error; memory, counters, "should I stop"
 * and warnings go through the caller's hooks.  Connection state lives in
 * client objects (imgio_store_client, imgio_cache_client), never in hidden
 * statics: a threaded program gives each thread its own clients.
 * Configuration is passed in structs whose strings are borrowed for the
 * duration of a call, so a caller may change settings between calls.
 */
#ifndef IMGIO_H
#define IMGIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ----------------------------------------------------------------- errors */

#define IMGIO_ERROR_MESSAGE_MAX 1024

typedef struct imgio_error
{
	bool		interrupted;	/* the should_abort hook stopped the operation */
	char		message[IMGIO_ERROR_MESSAGE_MAX];
} imgio_error;

/* ------------------------------------------------------------------ hooks */

typedef enum imgio_verb
{
	IMGIO_VERB_PUT = 0,
	IMGIO_VERB_GET,
	IMGIO_VERB_DELETE,
	IMGIO_VERB_COUNT
} imgio_verb;

/* "PUT", "GET", "DELETE". */
const char *imgio_verb_name(imgio_verb verb);

typedef enum imgio_cache_counter
{
	IMGIO_CACHE_WRITE = 0,		/* keys stored */
	IMGIO_CACHE_HIT,			/* read and verified */
	IMGIO_CACHE_MISS,
	IMGIO_CACHE_SKIPPED_WRITE,	/* Redis down or slow: write skipped */
	IMGIO_CACHE_SKIPPED_READ,	/* Redis down or slow: read skipped */
	IMGIO_CACHE_DELETE,			/* keys removed */
	IMGIO_CACHE_SKIPPED_DELETE, /* Redis down or slow: removal skipped (the TTL ends them) */
	IMGIO_CACHE_POISONED,		/* read bytes that did not match the expected digest */
	IMGIO_CACHE_COUNTER_COUNT
} imgio_cache_counter;

typedef struct imgio_store_config imgio_store_config;

/*
 * What the library asks of its caller.  Any member may be NULL: memory
 * then comes from malloc/free, nothing is counted, nothing stops a
 * transfer early and warnings are dropped.  The hooks are called on the
 * thread that called the library, never from another thread, and must not
 * longjmp (a curl or hiredis handle would be left mid-operation).
 */
typedef struct imgio_hooks
{
	void	   *(*alloc) (size_t size, void *ctx);	/* NULL when out of memory */
	void		(*free) (void *ptr, void *ctx);
	/* Asked during transfers and backoff sleeps; true aborts the operation. */
	bool		(*should_abort) (void *ctx);
	/* One call per request made (retries included in "retries"). */
	void		(*count_request) (const imgio_store_config *store, imgio_verb verb, bool ok,
								  int retries, void *ctx);
	void		(*count_cache) (imgio_cache_counter counter, int n, void *ctx);
	/* Something worth a log line that is not the failure of a call. */
	void		(*warn) (const char *message, void *ctx);
	void	   *ctx;
} imgio_hooks;

/* Once per process, before any thread starts (libcurl's global set-up). */
void		imgio_global_init(void);

/* ------------------------------------------------------------ object keys */

/*
 * Object keys are built by imgmod from [a-z0-9/._-] only, so they can be
 * signed verbatim and never climb out of a local store.  Each returns
 * false when the key did not fit in size bytes.
 */
bool		imgio_variant_key(char *buf, size_t size, int64_t image_id, int version,
							  const char *preset);
bool		imgio_master_key(char *buf, size_t size, int64_t image_id, int version);
bool		imgio_hires_key(char *buf, size_t size, int64_t image_id, int version);
bool		imgio_key_is_safe(const char *key);

/* Redis: imgmod:{namespace}:{image}:v{version}:{what} (namespace: the installation). */
bool		imgio_cache_key(char *buf, size_t size, const char *cache_namespace,
							int64_t image_id, int version, const char *what);

/* ---------------------------------------------------------------- digests */

typedef enum imgio_digest_kind
{
	IMGIO_DIGEST_SHA256,		/* 64 hex digits */
	IMGIO_DIGEST_MD5			/* 32 hex digits: an S3 single-PUT ETag */
} imgio_digest_kind;

#define IMGIO_DIGEST_HEX_MAX 65

/*
 * Lowercase hex digest of data into out (IMGIO_DIGEST_HEX_MAX bytes), via
 * OpenSSL; on failure err holds "could not compute SHA-256: <reason>".
 */
bool		imgio_digest_hex(imgio_digest_kind kind, const uint8_t *data, size_t len,
							 char out[IMGIO_DIGEST_HEX_MAX], imgio_error *err);
/* "SHA-256" or "MD5". */
const char *imgio_digest_name(imgio_digest_kind kind);
/* The unquoted MD5 hex of an ETag "<32 hex>", or false (multipart, SSE-KMS). */
bool		imgio_etag_md5(const char *etag, char out[33]);

/* ----------------------------------------------------------------- stores */

typedef struct imgio_s3_config
{
	const char *endpoint;		/* http(s)://host[:port]; NULL or "": not S3 */
	const char *region;			/* NULL or "": us-east-1 */
	const char *bucket;
	const char *access_key;
	const char *secret_key;
	bool		virtual_host;	/* bucket.host/key instead of host/bucket/key */
	int			connect_timeout_ms;
	int			timeout_ms;		/* a whole request */
	int			retries;		/* extra attempts after a retryable failure */
	/* Named in the error when the bucket is empty (e.g. "imgmod.s3_bucket"). */
	const char *bucket_setting_name;
} imgio_s3_config;

struct imgio_store_config
{
	const char *name;			/* for messages: "main", "hires" */
	int			id;				/* the caller's number for it, for count_request */
	const char *local_dir;		/* the directory used when s3.endpoint is empty */
	imgio_s3_config s3;
};

/* "s3" when the store has an S3 endpoint, else "local". */
const char *imgio_store_backend(const imgio_store_config *store);

/* Kept-alive connections and the hooks; one per thread. */
typedef struct imgio_store_client imgio_store_client;

imgio_store_client *imgio_store_client_create(const imgio_hooks *hooks);	/* NULL: out of memory */
void		imgio_store_client_free(imgio_store_client *client);

/* One object of a batch written with imgio_store_put_many(). */
typedef struct imgio_put_item
{
	const imgio_store_config *store;
	const char *key;
	const uint8_t *data;
	size_t		len;
	const char *content_type;
	const char *cache_control;
	bool		ok;				/* out */
	char		etag[33];		/* out: MD5 hex the store reported, or "" */
	char		error[IMGIO_ERROR_MESSAGE_MAX]; /* out, when !ok */
} imgio_put_item;

/*
 * Store objects: to S3 all in parallel, each retried like a single request
 * (jittered exponential backoff on 5xx, 408, 429, timeouts and connection
 * errors); to a local directory by an atomic file write (temp file, fsync,
 * rename, fsync directory).  Returns how many failed; each item says
 * whether it was stored and, if not, why.  When the should_abort hook
 * stopped the batch, interrupted->interrupted is set.
 */
int			imgio_store_put_many(imgio_store_client *client, imgio_put_item *items, int n,
								 imgio_error *interrupted);

/*
 * How many bytes a GET of an object recorded as expected_bytes needs in
 * dest: the object, or room for an S3 error document when that is larger.
 */
size_t		imgio_store_get_capacity(size_t expected_bytes);

/*
 * Read an object whose size the caller recorded as expected_bytes into
 * dest (imgio_store_get_capacity(expected_bytes) bytes, allocated by the
 * caller before the transfer: a store answering with more is cut off
 * there); *got is its length.  An object of another size is refused: the
 * stores are not trusted to hold what imgmod wrote.
 */
bool		imgio_store_get(imgio_store_client *client, const imgio_store_config *store,
							const char *key, size_t expected_bytes, uint8_t *dest,
							size_t capacity, size_t *got, imgio_error *err);

/*
 * Is the store there, cheaply (for a health check)?  S3: one signed HEAD of
 * the bucket, not retried, timeout_ms for connecting and for the whole
 * request (a 403 or 404 is a failure too: the store is unusable); a local
 * store: its directory exists and can be read.  Not counted by
 * count_request.  err says why not; it names the endpoint or directory,
 * so it is for logs, not for an HTTP client.
 */
bool		imgio_store_probe(imgio_store_client *client, const imgio_store_config *store,
							  int timeout_ms, imgio_error *err);

/* Remove an object; one already gone counts as removed. */
bool		imgio_store_delete(imgio_store_client *client, const imgio_store_config *store,
							   const char *key, imgio_error *err);

/* ------------------------------------------------------------------ cache */

typedef struct imgio_cache_config
{
	const char *url;			/* redis://[:password@]host[:port][/db]; NULL or "": off */
	const char *url_setting_name;	/* named in the warning about a bad URL */
	const char *cache_namespace;	/* the installation; "" keeps the cache off */
	int			timeout_ms;		/* connect and every command */
	int			ttl_s;			/* of every key written */
} imgio_cache_config;

/*
 * A Redis connection with its reconnect backoff (250 ms doubling to 5 s
 * after a failure, during which operations are skipped and counted).  One
 * per thread.
 */
typedef struct imgio_cache_client imgio_cache_client;

imgio_cache_client *imgio_cache_client_create(const imgio_hooks *hooks);	/* NULL: out of memory */
void		imgio_cache_client_free(imgio_cache_client *client);

/* URL and namespace set: the operations below talk to Redis. */
bool		imgio_cache_enabled(const imgio_cache_config *config);

/* SET each key with the TTL in one pipelined round trip; returns how many were stored. */
int			imgio_cache_put_many(imgio_cache_client *client, const imgio_cache_config *config,
								 int n, const char *const *keys, const uint8_t *const *values,
								 const size_t *lens);

typedef enum imgio_cache_read
{
	IMGIO_CACHE_READ_HIT,		/* *bytes (from the alloc hook) hash to the expected digest */
	IMGIO_CACHE_READ_MISS,		/* absent, Redis down, or the cache is off */
	IMGIO_CACHE_READ_POISONED,	/* *len bytes that did not match: discarded, key deleted */
	IMGIO_CACHE_READ_FAILED		/* the bytes could not be hashed: err says why */
} imgio_cache_read;

/*
 * GET a key and keep it only when it hashes to expected_hex: a cache is
 * never trusted.
 */
imgio_cache_read imgio_cache_get_verified(imgio_cache_client *client,
										  const imgio_cache_config *config, const char *key,
										  imgio_digest_kind kind, const char *expected_hex,
										  uint8_t **bytes, size_t *len, imgio_error *err);

/* DEL the keys in one round trip; returns how many existed.  Never fails loudly. */
int			imgio_cache_delete_many(imgio_cache_client *client, const imgio_cache_config *config,
									int n, const char *const *keys);

/* Drop every key of one image version: its source and the named presets. */
int			imgio_cache_drop_version(imgio_cache_client *client, const imgio_cache_config *config,
									 int64_t image_id, int version, int npresets,
									 const char *const *presets);

/* ------------------------------------------------------------ CDN edges */

/* Longest surrogate-key list one purge request carries. */
#define IMGIO_PURGE_KEYS_MAX 4096

/* Keys are space-separated words of [A-Za-z0-9._-], at most IMGIO_PURGE_KEYS_MAX long. */
bool		imgio_purge_keys_valid(const char *keys);

/*
 * Send "PURGE url" with "xkey-purge: keys" and wait at most timeout_ms.
 * True only when the edge answered 200; otherwise err says why (the edge's
 * status and the first line of its answer, or why it could not be reached)
 * and *http_status is the status (0 when there was no answer).
 */
bool		imgio_edge_purge(const char *url, const char *keys, long timeout_ms, long *http_status,
							 imgio_error *err);

/* ------------------------------------------------ idle cores (cpu_budget.c) */

/*
 * Tasks runnable at this instant, from /proc/loadavg's text
 * ("0.10 0.20 0.30 2/345 6789" gives 2); -1 when the text is not that.
 */
int			imgio_runnable_tasks(const char *loadavg);

/*
 * From /proc/self/cgroup's text, the path of this process's cgroup v2
 * cpu.max ("0::/a/b" gives /sys/fs/cgroup/a/b/cpu.max); false without a v2
 * line, or for a group name with "..", or when path is too small.
 */
bool		imgio_cgroup_v2_cpu_max_path(const char *proc_self_cgroup, char *path, size_t size);

/*
 * Whole cores a cgroup v2 cpu.max allows ("150000 100000" gives 2, rounded
 * up); 0 for "max ..." (no quota) or anything unexpected.
 */
int			imgio_quota_cores(const char *cpu_max);

/*
 * Threads a render may use now: 1, plus one per core idle (of cores, or of
 * quota_cores when that is lower and above 0) with `runnable` tasks
 * runnable, the caller included; at most cap.  Unknowns (runnable < 1)
 * give 1.
 */
unsigned	imgio_idle_core_budget(int cores, int quota_cores, int runnable, unsigned cap);

#endif							/* IMGIO_H */
